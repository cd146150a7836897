// Package mqttconn owns one MQTT 3.1.1 connection of a device-side client:
// paho dialled over the device's metered link (TLS, or TLS and WebSocket),
// CONNECT with its refusals classified, publishes and subscriptions that wait
// on a context and notice a dropped connection, and a graceful DISCONNECT. It
// is shared by the IoT Hub and the generic broker clients; neither reconnects
// on its own.
package mqttconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
	"github.com/catmsim/catmsim/protocols"
)

// Options describe one connection.
type Options struct {
	Dialer *network.Dialer
	// Addr is host:port of the broker (TLS) or of the WebSocket endpoint.
	Addr string
	TLS  *tls.Config
	// WebSocketPath, when set, carries MQTT in binary WebSocket frames to
	// wss://Addr/WebSocketPath with subprotocol "mqtt".
	WebSocketPath string
	// Classifier makes the MQTT classifier of a new connection; it is wrapped in
	// a WebSocket classifier when WebSocketPath is set.
	Classifier func() network.Classifier
	// Reason, when set, tells the dialer why the connection is opened.
	Reason    network.ConnReason
	HasReason bool

	ClientID, Username, Password string
	KeepAlive                    time.Duration // 0: no keep-alive
	CleanSession                 bool
	// ConnectTimeout bounds the dial, TLS and CONNACK when ctx has no deadline.
	ConnectTimeout time.Duration

	// OnMessage receives every publish from the broker on paho's router
	// goroutine; acknowledge with m.Ack() (QoS 1). It should hand the message on
	// rather than block.
	OnMessage func(m paho.Message)
	// OnLost hears once that the connection ended without Close.
	OnLost func(err error)
}

// Conn is one live MQTT connection.
type Conn struct {
	cli            paho.Client
	sessionPresent bool
	lost           chan struct{}
	lostOnce       sync.Once
	lostErr        error

	mu       sync.Mutex
	wsCancel context.CancelFunc
	netConn  net.Conn // what open returned, closed to abandon a CONNECT
}

// websocketSubprotocol is the WebSocket subprotocol of MQTT (IoT Hub and
// every broker that serves MQTT over WebSockets).
const websocketSubprotocol = "mqtt"

// DefaultConnectTimeout bounds a connect whose context has no deadline.
const DefaultConnectTimeout = 30 * time.Second

// quiesce is how long a graceful close waits for its DISCONNECT to be written.
const quiesce = 2000

// Dial connects and returns the connection after a successful CONNACK. A
// refused CONNECT comes back as a *protocols.Error: unauthorized for return
// codes 4 and 5, throttled for 3 (server unavailable, which IoT Hub uses when
// it is busy).
func Dial(ctx context.Context, o Options) (*Conn, error) {
	c := &Conn{lost: make(chan struct{})}
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, protocols.Wrap("connect", context.DeadlineExceeded)
		}
	}
	dialCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if o.HasReason {
		dialCtx = network.WithConnReason(dialCtx, o.Reason)
	}

	opts := paho.NewClientOptions()
	opts.AddBroker("tcp://" + o.Addr)
	opts.SetClientID(o.ClientID)
	opts.SetUsername(o.Username)
	opts.SetPassword(o.Password)
	opts.SetCleanSession(o.CleanSession)
	opts.SetKeepAlive(o.KeepAlive)
	// Explicit, so that paho does not retry a refused CONNECT as MQTT 3.1.
	opts.SetProtocolVersion(4)
	opts.SetAutoReconnect(false)
	opts.SetConnectRetry(false)
	opts.SetConnectTimeout(timeout)
	opts.SetOrderMatters(true)
	opts.SetAutoAckDisabled(true)
	opts.SetStore(paho.NewMemoryStore())
	if o.OnMessage != nil {
		opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { o.OnMessage(m) })
	}
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		c.markLost(err)
		if o.OnLost != nil {
			o.OnLost(err)
		}
	})
	opts.SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
		nc, err := c.open(dialCtx, o)
		if err == nil {
			c.mu.Lock()
			c.netConn = nc
			c.mu.Unlock()
		}
		return nc, err
	})
	c.cli = paho.NewClient(opts)
	tok := c.cli.Connect()
	select {
	case <-tok.Done():
	case <-dialCtx.Done():
		// The dial watches dialCtx; a CONNECT already sent waits for its
		// CONNACK, so close the connection under it. Then wait for paho so
		// nothing is left running.
		c.mu.Lock()
		if c.netConn != nil {
			_ = c.netConn.Close()
		}
		c.mu.Unlock()
		<-tok.Done()
	}
	if err := tok.Error(); err != nil {
		c.closeWS()
		return nil, connectError(ctx, tok, err)
	}
	c.sessionPresent = tok.(*paho.ConnectToken).SessionPresent()
	return c, nil
}

// open dials the network connection paho runs over.
func (c *Conn) open(ctx context.Context, o Options) (net.Conn, error) {
	newCl := func() network.Classifier {
		if o.Classifier == nil {
			return nil
		}
		return o.Classifier()
	}
	if o.WebSocketPath == "" {
		return o.Dialer.DialTLS(ctx, "tcp", o.Addr, o.TLS, newCl())
	}
	tr := o.Dialer.HTTPTransport(o.TLS, func() network.Classifier { return classify.NewWebSocket(newCl()) })
	hc := &http.Client{Transport: tr}
	ws, _, err := websocket.Dial(ctx, "wss://"+o.Addr+o.WebSocketPath, &websocket.DialOptions{
		HTTPClient:   hc,
		Subprotocols: []string{websocketSubprotocol},
	})
	tr.CloseIdleConnections()
	if err != nil {
		return nil, fmt.Errorf("opening the MQTT WebSocket to %s: %w", o.Addr, err)
	}
	if ws.Subprotocol() != websocketSubprotocol {
		_ = ws.Close(websocket.StatusProtocolError, "subprotocol mqtt required")
		return nil, fmt.Errorf("the server at %s did not accept the WebSocket subprotocol %q", o.Addr, websocketSubprotocol)
	}
	// The NetConn's context bounds the connection's life, not the dial's.
	wctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.wsCancel = cancel
	c.mu.Unlock()
	return websocket.NetConn(wctx, ws, websocket.MessageBinary), nil
}

func (c *Conn) closeWS() {
	c.mu.Lock()
	cancel := c.wsCancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// connectError classifies a failed connect.
func connectError(ctx context.Context, tok paho.Token, err error) error {
	ct, _ := tok.(*paho.ConnectToken)
	if ct != nil {
		switch ct.ReturnCode() {
		case packets.ErrRefusedBadUsernameOrPassword, packets.ErrRefusedNotAuthorised:
			return &protocols.Error{Kind: protocols.KindUnauthorized, Op: "connect", Err: fmt.Errorf("the broker refused the credentials: %w", err)}
		case packets.ErrRefusedServerUnavailable:
			return &protocols.Error{Kind: protocols.KindThrottled, Op: "connect", Err: fmt.Errorf("the broker is unavailable or busy: %w", err)}
		case packets.ErrRefusedIDRejected, packets.ErrRefusedBadProtocolVersion:
			return &protocols.Error{Kind: protocols.KindOther, Op: "connect", Err: err}
		}
	}
	if certRefused(err) {
		return &protocols.Error{Kind: protocols.KindUnauthorized, Op: "connect", Err: fmt.Errorf("the broker refused the client certificate (or its absence): %w", err)}
	}
	if ctx.Err() != nil {
		return &protocols.Error{Kind: protocols.KindTimeout, Op: "connect", Err: fmt.Errorf("%w: %v", ctx.Err(), err)}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return &protocols.Error{Kind: protocols.KindTimeout, Op: "connect", Err: err}
	}
	return &protocols.Error{Kind: protocols.KindDisconnected, Op: "connect", Err: err}
}

// certRefused reports a TLS alert from the server about the client's
// certificate. crypto/tls reports a received alert only by its text
// ("remote error: tls: certificate required"); the alert type is unexported.
func certRefused(err error) bool {
	msg := err.Error()
	if !strings.Contains(msg, "remote error: tls: ") {
		return false
	}
	for _, a := range []string{"certificate required", "bad certificate", "unknown certificate authority", "expired certificate", "revoked certificate", "unsupported certificate", "unknown certificate"} {
		if strings.Contains(msg, a) {
			return true
		}
	}
	return false
}

// SessionPresent is the CONNACK's session-present flag: the broker kept the
// subscriptions of an earlier persistent session.
func (c *Conn) SessionPresent() bool { return c.sessionPresent }

// Lost is closed when the connection ends without Close.
func (c *Conn) Lost() <-chan struct{} { return c.lost }

func (c *Conn) markLost(err error) {
	c.lostOnce.Do(func() {
		if err == nil {
			err = errors.New("connection closed")
		}
		c.lostErr = err
		close(c.lost)
	})
	c.closeWS()
}

// LostErr is why the connection ended, once Lost is closed.
func (c *Conn) LostErr() error {
	select {
	case <-c.lost:
		return c.lostErr
	default:
		return nil
	}
}

// ErrClosed marks operations on a connection that was lost or closed.
var ErrClosed = errors.New("the MQTT connection is closed")

// wait waits for a paho token, the context, or the end of the connection.
func (c *Conn) wait(ctx context.Context, op string, tok paho.Token) error {
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			// paho fails the tokens of a lost connection with plain errors
			// ("connection lost before Publish completed").
			if errors.Is(err, paho.ErrNotConnected) || strings.HasPrefix(err.Error(), "connection lost") {
				return &protocols.Error{Kind: protocols.KindDisconnected, Op: op, Err: fmt.Errorf("%w: %v", ErrClosed, err)}
			}
			return protocols.Wrap(op, err)
		}
		return nil
	case <-c.lost:
		return &protocols.Error{Kind: protocols.KindDisconnected, Op: op, Err: fmt.Errorf("%w: %v", ErrClosed, c.lostErr)}
	case <-ctx.Done():
		return protocols.Wrap(op, ctx.Err())
	}
}

// Publish sends one message; at QoS 1 it returns after the PUBACK, at QoS 0
// once the packet is written.
func (c *Conn) Publish(ctx context.Context, op, topic string, qos byte, payload []byte) error {
	return c.wait(ctx, op, c.cli.Publish(topic, qos, false, payload))
}

// Subscribe subscribes to filters and checks that the broker granted them.
func (c *Conn) Subscribe(ctx context.Context, filters map[string]byte) error {
	if len(filters) == 0 {
		return nil
	}
	tok := c.cli.SubscribeMultiple(filters, nil)
	if err := c.wait(ctx, "subscribe", tok); err != nil {
		return err
	}
	st, _ := tok.(*paho.SubscribeToken)
	if st == nil {
		return nil
	}
	for f, granted := range st.Result() {
		if granted == 0x80 {
			return &protocols.Error{Kind: protocols.KindUnauthorized, Op: "subscribe", Err: fmt.Errorf("the broker refused the subscription to %q", f)}
		}
	}
	return nil
}

// Close sends DISCONNECT, waiting at most two seconds for it to be written,
// and closes the connection.
func (c *Conn) Close() {
	c.markLost(ErrClosed)
	c.cli.Disconnect(quiesce)
	c.closeWS()
}
