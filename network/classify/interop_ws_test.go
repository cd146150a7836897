package classify

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/catmsim/catmsim/network"
)

// TestWebSocketWithCoderWebsocket classifies MQTT over frames that an
// independent WebSocket implementation (github.com/coder/websocket) writes:
// random client masking keys, a message split over a frame and its
// continuation, ping and pong, and the close handshake.
func TestWebSocketWithCoderWebsocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The server answers like a minimal broker: CONNACK, PUBACK for QoS 1, and
	// a twin response for a twin GET.
	serverDone := make(chan error, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}})
		if err != nil {
			serverDone <- err
			return
		}
		defer c.CloseNow()
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
					err = nil
				}
				serverDone <- err
				return
			}
			var reply []byte
			switch {
			case p[0]>>4 == mqttConnect:
				reply = mqttConnackPkt()
			case p[0] == 0x32: // PUBLISH QoS 1: the packet id follows the topic
				i := 1
				for p[i]&0x80 != 0 { // remaining length
					i++
				}
				tl := int(p[i+1])<<8 | int(p[i+2])
				reply = mqttPacket(mqttPuback<<4, p[i+3+tl:i+5+tl])
			case p[0] == 0x30:
				reply = mqttPublishPkt("$iothub/twin/res/200/?$rid=1", 0, 0, []byte(`{"desired":{},"reported":{}}`))
			}
			if reply != nil {
				if err := c.Write(ctx, websocket.MessageBinary, reply); err != nil {
					serverDone <- err
					return
				}
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on loopback: %v", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		if err := <-serveDone; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving: %v", err)
		}
	}()

	var mu sync.Mutex
	var segs []seg
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return recConn{c, &mu, &segs}, err
		},
	}}
	var w want = want{network.Up: {}, network.Down: {}}
	mark := func() int { mu.Lock(); defer mu.Unlock(); return len(segs) }
	// charge attributes everything recorded since start to c.
	charge := func(start int, c network.Class) {
		mu.Lock()
		defer mu.Unlock()
		if start == len(segs) {
			t.Fatalf("no bytes recorded for the %s step", c)
		}
		for _, s := range segs[start:] {
			w[s.dir][c] += len(s.b)
		}
	}

	start := mark()
	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/$iothub/websocket",
		&websocket.DialOptions{HTTPClient: client, Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatalf("dialling: %v", err)
	}
	defer c.CloseNow()
	charge(start, network.ClassConnect)

	// A reader goroutine lets Ping see its pong; it ends when the connection
	// closes.
	msgs := make(chan []byte)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				return
			}
			msgs <- p
		}
	}()
	recv := func() []byte {
		select {
		case p := <-msgs:
			return p
		case <-ctx.Done():
			t.Fatalf("waiting for the server's answer: %v", ctx.Err())
			return nil
		}
	}

	start = mark()
	if err := c.Write(ctx, websocket.MessageBinary, mqttConnectPkt("d1", "hub/d1/?api-version=2021-04-12", "sas")); err != nil {
		t.Fatal(err)
	}
	if p := recv(); p[0] != 0x20 {
		t.Fatalf("expected CONNACK, got % x", p)
	}
	charge(start, network.ClassConnect)

	start = mark()
	tele := mqttPublishPkt("devices/d1/messages/events/", 1, 42, bytes.Repeat([]byte("t"), 300))
	wr, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	// Two writes make a frame and a continuation; the first ends mid-topic.
	if _, err := wr.Write(tele[:10]); err != nil {
		t.Fatal(err)
	}
	if _, err := wr.Write(tele[10:]); err != nil {
		t.Fatal(err)
	}
	if err := wr.Close(); err != nil {
		t.Fatal(err)
	}
	if p := recv(); p[0] != 0x40 {
		t.Fatalf("expected PUBACK, got % x", p)
	}
	charge(start, network.ClassTelemetry)

	start = mark()
	if err := c.Write(ctx, websocket.MessageBinary, mqttPublishPkt("$iothub/twin/GET/?$rid=1", 0, 0, nil)); err != nil {
		t.Fatal(err)
	}
	recv()
	charge(start, network.ClassTwin)

	start = mark()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	charge(start, network.ClassKeepAlive)

	start = mark()
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("closing: %v", err)
	}
	<-readDone
	if err := <-serverDone; err != nil {
		t.Fatalf("server: %v", err)
	}
	charge(start, network.ClassConnect)

	mu.Lock()
	recorded := slicesClone(segs)
	mu.Unlock()
	var upStream []byte
	for _, s := range recorded {
		if s.dir == network.Up {
			upStream = append(upStream, s.b...)
		}
	}
	if bytes.Contains(upStream, []byte("devices/d1/messages/events")) {
		t.Fatalf("the client's frames are not masked; the test lost its point")
	}
	checkSplits(t, newWSPender(func() network.Classifier { return NewMQTT() }), recorded, w)
}
