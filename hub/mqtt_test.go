package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

func startServer(t *testing.T, mod func(*ServerConfig)) *Server {
	t.Helper()
	cfg := ServerConfig{Hub: Config{HostName: "test.azure-devices.net", GroupKey: groupKey, KeepBodies: true}, MetricsPort: -1}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("closing the emulator: %v", err)
		}
	})
	return s
}

type mqttDevice struct {
	id     iothub.Identity
	client paho.Client
	lost   chan error
	msgs   chan paho.Message
}

type deviceOpts struct {
	password  string
	clean     bool
	keepAlive time.Duration
	ws        bool
	dial      func(ctx context.Context) (net.Conn, error)
	will      string
}

func dialDevice(t *testing.T, s *Server, id iothub.Identity, o deviceOpts) (*mqttDevice, error) {
	t.Helper()
	d := &mqttDevice{id: id, lost: make(chan error, 1), msgs: make(chan paho.Message, 64)}
	opts := paho.NewClientOptions()
	if o.ws {
		opts.AddBroker(fmt.Sprintf("wss://127.0.0.1:%d%s", s.HTTPSPort(), WebSocketPath))
	} else {
		opts.AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", s.MQTTPort()))
	}
	if o.dial != nil {
		opts.SetCustomOpenConnectionFn(func(_ *url.URL, po paho.ClientOptions) (net.Conn, error) {
			c, err := o.dial(context.Background())
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, po.TLSConfig)
			return tc, tc.Handshake()
		})
	}
	opts.SetTLSConfig(&tls.Config{RootCAs: s.Chain().CertPool(), ServerName: "test.azure-devices.net"})
	opts.SetClientID(id.ClientID())
	opts.SetUsername(iothub.FormatUsername("test.azure-devices.net", id, iothub.APIVersion, "catmsim-test", ""))
	pw := o.password
	if pw == "" {
		pw = sas.Sign(sas.DeviceResource("test.azure-devices.net", id.DeviceID, id.ModuleID), sas.DeriveKey(groupKey, id.DeviceID), "", time.Now().Add(time.Hour))
	}
	opts.SetPassword(pw)
	opts.SetCleanSession(o.clean)
	opts.SetProtocolVersion(4)
	opts.SetAutoReconnect(false)
	opts.SetConnectTimeout(5 * time.Second)
	if o.keepAlive > 0 {
		opts.SetKeepAlive(o.keepAlive)
	}
	if o.will != "" {
		opts.SetWill(iothub.TelemetryTopic(id, &iothub.Message{}, true), o.will, 1, false)
	}
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { d.msgs <- m })
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) { d.lost <- err })
	d.client = paho.NewClient(opts)
	tok := d.client.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { d.client.Disconnect(0) })
	return d, nil
}

func (d *mqttDevice) sub(t *testing.T, filters ...string) {
	t.Helper()
	for _, f := range filters {
		tok := d.client.Subscribe(f, 1, nil)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
}

func (d *mqttDevice) pub(t *testing.T, topic string, qos byte, payload []byte) paho.Token {
	t.Helper()
	return d.client.Publish(topic, qos, false, payload)
}

func (d *mqttDevice) next(t *testing.T) paho.Message {
	t.Helper()
	select {
	case m := <-d.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing published to the device")
		return nil
	}
}

func (d *mqttDevice) waitLost(t *testing.T) {
	t.Helper()
	select {
	case <-d.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the emulator did not close the connection")
	}
}

func TestMQTTDeviceLifecycle(t *testing.T) {
	for _, ws := range []bool{false, true} {
		t.Run(map[bool]string{false: "tls", true: "websocket"}[ws], func(t *testing.T) {
			s := startServer(t, nil)
			h := s.Hub
			id := iothub.Identity{DeviceID: "dev1"}
			d, err := dialDevice(t, s, id, deviceOpts{ws: ws})
			if err != nil {
				t.Fatal(err)
			}
			proto := MQTT
			if ws {
				proto = MQTTWebSocket
			}
			d.sub(t, iothub.C2DFilter("dev1"), iothub.MethodsFilter, iothub.TwinResponseFilter, iothub.DesiredFilter)

			// Telemetry with system and application properties.
			m := &iothub.Message{MessageID: "m-1", ContentType: "application/json", ContentEncoding: "utf-8", Properties: []iothub.Property{{Name: "alert", Value: "a/b c"}}}
			tok := d.pub(t, iothub.TelemetryTopic(id, m, true), 1, []byte(`{"t":21.5}`))
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
			// The PUBACK came after the store recorded the message.
			got := h.Store().For(id)
			if len(got) != 1 || got[0].Protocol != proto || got[0].Message.MessageID != "m-1" || got[0].Message.ContentType != "application/json" ||
				string(got[0].Message.Body) != `{"t":21.5}` {
				t.Fatalf("stored %+v", got)
			}
			if v, _ := got[0].Message.Get("alert"); v != "a/b c" {
				t.Fatalf("property alert = %q", v)
			}

			// C2D at QoS 1; paho's PUBACK completes it.
			if _, err := h.SendC2D("dev1", iothub.Message{Body: []byte("hello"), MessageID: "c-1", Properties: []iothub.Property{{Name: "k", Value: "v/w"}}}, C2DOptions{Ack: "full"}); err != nil {
				t.Fatal(err)
			}
			c2d := d.next(t)
			hp, err := iothub.ParseHubPublish(c2d.Topic())
			if err != nil || hp.Kind != iothub.HubTopicC2D || string(c2d.Payload()) != "hello" || c2d.Qos() != 1 {
				t.Fatalf("C2D publish %q %q qos %d: %v", c2d.Topic(), c2d.Payload(), c2d.Qos(), err)
			}
			// Node and Python take the fifth topic part as the bag.
			if parts := strings.Split(c2d.Topic(), "/"); len(parts) != 5 {
				t.Fatalf("C2D topic has a raw '/': %q", c2d.Topic())
			}
			var cm iothub.Message
			if err := iothub.DecodeBag(hp.Bag, &cm); err != nil || cm.MessageID != "c-1" || cm.To != "/devices/dev1/messages/deviceBound" {
				t.Fatalf("C2D bag %q: %+v %v", hp.Bag, cm, err)
			}
			if v, _ := cm.Get("k"); v != "v/w" {
				t.Fatalf("C2D property k = %q", v)
			}
			if v, _ := cm.Get(iothub.PropAck); v != "full" {
				t.Fatalf("iothub-ack = %q", v)
			}
			waitFor(t, h, func() bool { return h.Stats().C2D["completed"] == 1 })

			// Twin GET, reported PATCH and a desired update.
			d.pub(t, iothub.TwinGetTopic("r1"), 0, nil)
			res := d.next(t)
			if res.Topic() != "$iothub/twin/res/200/?$rid=r1" || string(res.Payload()) != `{"desired":{"$version":1},"reported":{"$version":1}}` {
				t.Fatalf("twin GET answer %q %s", res.Topic(), res.Payload())
			}
			d.pub(t, iothub.ReportedPatchTopic("r2"), 0, []byte(`{"fw":"2.0"}`))
			res = d.next(t)
			if res.Topic() != "$iothub/twin/res/204/?$rid=r2&$version=2" {
				t.Fatalf("PATCH answer %q", res.Topic())
			}
			d.pub(t, iothub.ReportedPatchTopic("r3"), 0, []byte(`not json`))
			if res = d.next(t); !strings.HasPrefix(res.Topic(), "$iothub/twin/res/400/?$rid=r3") {
				t.Fatalf("bad PATCH answer %q", res.Topic())
			}
			if _, err := h.UpdateDesired(id, map[string]any{"interval": 30}); err != nil {
				t.Fatal(err)
			}
			res = d.next(t)
			if res.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=2" || string(res.Payload()) != `{"$version":2,"interval":30}` {
				t.Fatalf("desired update %q %s", res.Topic(), res.Payload())
			}

			// A direct method, answered by the device.
			type result struct {
				r   MethodResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := h.InvokeMethod(context.Background(), id, "reboot", []byte(`{"in":1}`), 10*time.Second, 0)
				done <- result{r, err}
			}()
			req := d.next(t)
			hp, err = iothub.ParseHubPublish(req.Topic())
			if err != nil || hp.Kind != iothub.HubTopicMethodRequest || hp.Method != "reboot" || string(req.Payload()) != `{"in":1}` {
				t.Fatalf("method request %q %s", req.Topic(), req.Payload())
			}
			d.pub(t, iothub.MethodResponseTopic(200, hp.RID), 0, []byte(`{"out":2}`))
			r := <-done
			if r.err != nil || r.r.Status != 200 || string(r.r.Payload) != `{"out":2}` {
				t.Fatalf("method result %+v %v", r.r, r.err)
			}
		})
	}
}

// waitFor re-checks cond after every hub event until it holds or a deadline
// passes.
func waitFor(t *testing.T, h *Hub, cond func() bool) {
	t.Helper()
	ev, stop := h.Subscribe(256)
	defer stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-ev:
		case <-deadline:
			t.Fatal("condition not met in time")
		}
	}
}

func TestMQTTC2DQueuedWhileOfflineArrivesOnReconnect(t *testing.T) {
	s := startServer(t, nil)
	id := iothub.Identity{DeviceID: "dev1"}
	d, err := dialDevice(t, s, id, deviceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	d.sub(t, iothub.C2DFilter("dev1"))
	d.client.Disconnect(0)
	if _, err := s.Hub.SendC2D("dev1", iothub.Message{Body: []byte("while away")}, C2DOptions{}); err != nil {
		t.Fatal(err)
	}
	// CleanSession=0: the subscription persists and the message arrives without
	// a new SUBSCRIBE.
	d2, err := dialDevice(t, s, id, deviceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if m := d2.next(t); string(m.Payload()) != "while away" {
		t.Fatalf("got %q", m.Payload())
	}
}

func TestMQTTRejections(t *testing.T) {
	s := startServer(t, func(c *ServerConfig) { c.ConnectTimeout = 2 * time.Second })
	id := iothub.Identity{DeviceID: "dev1"}
	res := sas.DeviceResource("test.azure-devices.net", "dev1", "")
	key := sas.DeriveKey(groupKey, "dev1")
	connRefused := []struct {
		name, password string
	}{
		{"wrong key", sas.Sign(res, []byte("not the key"), "", time.Now().Add(time.Hour))},
		{"expired token", sas.Sign(res, key, "", time.Now().Add(-time.Minute))},
		{"token for another device", sas.Sign(sas.DeviceResource("test.azure-devices.net", "dev2", ""), sas.DeriveKey(groupKey, "dev2"), "", time.Now().Add(time.Hour))},
	}
	for _, tt := range connRefused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dialDevice(t, s, id, deviceOpts{password: tt.password})
			if err == nil || !strings.Contains(err.Error(), "not Authorized") {
				t.Fatalf("want CONNACK 5 (not authorized), got %v", err)
			}
		})
	}
	closes := []struct {
		name string
		act  func(d *mqttDevice)
	}{
		{"subscribe to another device's C2D", func(d *mqttDevice) { d.client.Subscribe(iothub.C2DFilter("dev2"), 1, nil) }},
		{"subscribe to everything", func(d *mqttDevice) { d.client.Subscribe("#", 1, nil) }},
		{"publish to another device's topic", func(d *mqttDevice) {
			d.client.Publish(iothub.TelemetryTopic(iothub.Identity{DeviceID: "dev2"}, &iothub.Message{}, true), 1, false, "x")
		}},
		{"publish at QoS 2", func(d *mqttDevice) {
			d.client.Publish(iothub.TelemetryTopic(id, &iothub.Message{}, true), 2, false, "x")
		}},
		{"publish to an undocumented topic", func(d *mqttDevice) { d.client.Publish("foo/bar", 0, false, "x") }},
		{"oversize message", func(d *mqttDevice) {
			d.client.Publish(iothub.TelemetryTopic(id, &iothub.Message{}, true), 1, false, make([]byte, iothub.MaxD2CSize+1))
		}},
	}
	for _, tt := range closes {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Hub.Store().Len()
			d, err := dialDevice(t, s, id, deviceOpts{})
			if err != nil {
				t.Fatal(err)
			}
			tt.act(d)
			d.waitLost(t)
			if s.Hub.Store().Len() != before {
				t.Fatal("a refused message was stored")
			}
		})
	}
	t.Run("garbage and silence do not disturb other devices", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", s.MQTTPort())
		garbage, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer garbage.Close()
		if _, err := garbage.Write([]byte("GET / HTTP/1.1\r\n\r\n\x00\xff\x10\x10")); err != nil {
			t.Fatal(err)
		}
		silentRaw, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		silent := tls.Client(silentRaw, &tls.Config{RootCAs: s.Chain().CertPool(), ServerName: "127.0.0.1"})
		defer silent.Close()
		if err := silent.Handshake(); err != nil {
			t.Fatal(err)
		}
		// The emulator closes a TLS connection that never sends CONNECT.
		_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Fatalf("silent connection not closed by the emulator: %v", err)
		}
		// Everyone else is still served.
		d, err := dialDevice(t, s, iothub.Identity{DeviceID: "dev9"}, deviceOpts{})
		if err != nil {
			t.Fatal(err)
		}
		tok := d.pub(t, iothub.TelemetryTopic(iothub.Identity{DeviceID: "dev9"}, &iothub.Message{}, true), 1, []byte("ok"))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	})
	if n := s.Hub.Stats().AuthFailures; n != 3 {
		t.Errorf("auth failures %d, want 3", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestMQTTUsernameAndProtocolChecks(t *testing.T) {
	s := startServer(t, nil)
	tests := []struct {
		name     string
		clientID string
		username string
		code     byte
	}{
		{"username without question mark", "dev1", "test.azure-devices.net/dev1/api-version=2016-11-14", 0},
		{"username for another hub", "dev1", "other.azure-devices.net/dev1/?api-version=2021-04-12", 4},
		{"username for another client id", "dev1", "test.azure-devices.net/dev2/?api-version=2021-04-12", 4},
		{"invalid client id", "dev 1", "test.azure-devices.net/dev 1/?api-version=2021-04-12", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := rawConnect(s, tt.clientID, tt.username, sas.Sign(sas.DeviceResource("test.azure-devices.net", tt.clientID, ""), sas.DeriveKey(groupKey, tt.clientID), "", time.Now().Add(time.Hour)), 4)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("CONNACK %d, want %d", code, tt.code)
			}
		})
	}
	code, err := rawConnect(s, "dev1", "test.azure-devices.net/dev1/?api-version=2021-04-12", "x", 5)
	if err != nil || code != 1 {
		t.Fatalf("MQTT 5 CONNECT: code %d, %v", code, err)
	}
}

// rawConnect sends a hand-made CONNECT and returns the CONNACK return code, so
// the test does not depend on how a client library reports refusals.
func rawConnect(s *Server, clientID, username, password string, level byte) (byte, error) {
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.MQTTPort()), &tls.Config{RootCAs: s.Chain().CertPool(), ServerName: "127.0.0.1"})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	var body []byte
	body = append(body, str("MQTT")...)
	body = append(body, level, 0xC0, 0, 60) // username+password, keep-alive 60
	if level == 5 {
		body = append(body, 0) // no properties
	}
	body = append(body, str(clientID)...)
	body = append(body, str(username)...)
	body = append(body, str(password)...)
	pkt := append([]byte{0x10}, encodeLen(len(body))...)
	if _, err := c.Write(append(pkt, body...)); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	ack := make([]byte, 4)
	if _, err := c.Read(ack); err != nil {
		return 0, err
	}
	if ack[0] != 0x20 {
		return 0, fmt.Errorf("not a CONNACK: % x", ack)
	}
	return ack[3], nil
}

func encodeLen(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

func TestMQTTInMemoryAndWill(t *testing.T) {
	s := startServer(t, func(c *ServerConfig) { c.InMemory = true; c.MQTTPort = -1; c.HTTPSPort = -1 })
	id := iothub.Identity{DeviceID: "dev1"}
	d, err := dialDevice(t, s, id, deviceOpts{will: "gone", dial: func(ctx context.Context) (net.Conn, error) { return s.Dial(ctx, "mqtt") }})
	if err != nil {
		t.Fatal(err)
	}
	tok := d.pub(t, iothub.TelemetryTopic(id, &iothub.Message{}, true), 1, []byte("over memnet"))
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// Replace the connection: the first one ends without DISCONNECT, so its
	// will becomes telemetry marked iothub-MessageType=Will.
	if _, err := dialDevice(t, s, id, deviceOpts{dial: func(ctx context.Context) (net.Conn, error) { return s.Dial(ctx, "mqtt") }}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Hub.Store().WaitFor(ctx, func(msgs []StoredMessage) bool {
		for _, m := range msgs {
			if v, _ := m.Message.Get(iothub.PropMessageType); v == "Will" && string(m.Message.Body) == "gone" {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("no will message stored: %v (%d messages)", err, s.Hub.Store().Len())
	}
	if s.Hub.Store().For(id)[0].Protocol != MQTT {
		t.Fatal("protocol not recorded")
	}
}

// A DISCONNECT ends a connection gracefully: the hub stores no will.
func TestMQTTGracefulDisconnectSendsNoWill(t *testing.T) {
	s := startServer(t, func(c *ServerConfig) { c.InMemory = true; c.MQTTPort = -1; c.HTTPSPort = -1 })
	id := iothub.Identity{DeviceID: "dev1"}
	events, stop := s.Hub.Subscribe(16)
	defer stop()
	d, err := dialDevice(t, s, id, deviceOpts{will: "gone", dial: func(ctx context.Context) (net.Conn, error) { return s.Dial(ctx, "mqtt") }})
	if err != nil {
		t.Fatal(err)
	}
	d.client.Disconnect(250)
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case e := <-events:
			done = e.Kind == EventDisconnected && e.Identity == id
		case <-deadline:
			t.Fatal("the hub saw no disconnect within 10s")
		}
	}
	// The will, had there been one, is stored before the disconnect event.
	for _, m := range s.Hub.Store().For(id) {
		if v, _ := m.Message.Get(iothub.PropMessageType); v == "Will" {
			t.Fatal("a graceful DISCONNECT stored the will")
		}
	}
}
