package genericmqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/mqttconn"
)

// DeviceVar is replaced by the device id in the topic templates.
const DeviceVar = "{device}"

// DefaultKeepAlive applies when Config.KeepAlive is zero; a negative value
// sends none.
const DefaultKeepAlive = 60 * time.Second

// Client is one device's connection to a generic MQTT broker. It implements
// protocols.Client, C2DReceiver and StateNotifier.
type Client struct {
	cfg       protocols.Config
	topicUp   string
	topicDown string
	ledger    *network.Ledger
	rules     []classify.Rule
	tls       *tls.Config // one for the client's life, so resumption can work

	hmu     sync.Mutex
	onC2D   protocols.C2DHandler
	onState protocols.StateHandler

	mu     sync.Mutex
	conn   *mqttconn.Conn
	worker *mqttconn.Worker
	life   context.Context
	cancel context.CancelFunc
}

var (
	_ protocols.Client        = (*Client)(nil)
	_ protocols.C2DReceiver   = (*Client)(nil)
	_ protocols.StateNotifier = (*Client)(nil)
)

// New checks cfg and returns a client. Address is the broker's host:port
// (HostName, when set, is the name its certificate must carry; by default the
// address's host); TopicUp is required, TopicDown when a C2D handler is
// registered.
func New(cfg protocols.Config) (*Client, error) {
	if cfg.HostName == "" && cfg.Address != "" {
		if h, _, err := net.SplitHostPort(cfg.Address); err == nil {
			cfg.HostName = h
		}
	}
	errs := []error{cfg.CheckCommon()}
	if cfg.Protocol != "" && cfg.Protocol != protocols.GenericMQTT {
		errs = append(errs, fmt.Errorf("config.Protocol: this client speaks %s, not %q", protocols.GenericMQTT, cfg.Protocol))
	}
	if cfg.Address == "" {
		errs = append(errs, errors.New("config.Address: must be the broker's host:port"))
	}
	if cfg.Auth.Certificate == nil && cfg.Auth.Username == "" {
		errs = append(errs, errors.New("config.Auth: set a client Certificate, or a Username (and Password)"))
	}
	if len(cfg.Auth.Key) > 0 || cfg.Auth.Token != "" {
		errs = append(errs, errors.New("config.Auth: a generic broker takes no SAS key or token; use Certificate or Username and Password"))
	}
	c := &Client{cfg: cfg, topicUp: expand(cfg.TopicUp, cfg.Identity.DeviceID), topicDown: expand(cfg.TopicDown, cfg.Identity.DeviceID)}
	if cfg.TopicUp == "" {
		errs = append(errs, errors.New("config.TopicUp: must be the telemetry topic, e.g. measures/{device}"))
	} else if err := checkTopic(c.topicUp); err != nil {
		errs = append(errs, fmt.Errorf("config.TopicUp: %w", err))
	}
	if cfg.TopicDown != "" {
		if err := checkTopic(c.topicDown); err != nil {
			errs = append(errs, fmt.Errorf("config.TopicDown: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("generic mqtt client for %s: %w", cfg.Identity, err)
	}
	c.cfg.Protocol = protocols.GenericMQTT
	c.ledger = cfg.Dialer.Link.Ledger()
	c.tls = cfg.TLSConfig()
	c.rules = []classify.Rule{{Pattern: c.topicUp, Class: network.ClassTelemetry, Dir: classify.UpOnly}}
	if c.topicDown != "" {
		c.rules = append(c.rules, classify.Rule{Pattern: c.topicDown, Class: network.ClassC2D, Dir: classify.DownOnly})
	}
	return c, nil
}

func expand(template, deviceID string) string {
	return strings.ReplaceAll(template, DeviceVar, deviceID)
}

// checkTopic refuses what MQTT does not allow in a topic name: wildcards
// (perhaps from the device id), a NUL, or nothing at all.
func checkTopic(t string) error {
	switch {
	case t == "":
		return errors.New("is empty")
	case strings.ContainsAny(t, "+#\x00"):
		return fmt.Errorf("%q holds a wildcard or NUL, which MQTT does not allow in a topic name", t)
	}
	return nil
}

// TopicUp and TopicDown are the device's topics, templates expanded.
func (c *Client) TopicUp() string   { return c.topicUp }
func (c *Client) TopicDown() string { return c.topicDown }

// OnC2D registers the handler for messages on TopicDown; register before
// Connect.
func (c *Client) OnC2D(h protocols.C2DHandler) { c.hmu.Lock(); c.onC2D = h; c.hmu.Unlock() }

// OnState registers the connection-state handler.
func (c *Client) OnState(h protocols.StateHandler) { c.hmu.Lock(); c.onState = h; c.hmu.Unlock() }

func (c *Client) handlers() (protocols.C2DHandler, protocols.StateHandler) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	return c.onC2D, c.onState
}

// Connect dials the broker and subscribes to TopicDown when a C2D handler is
// registered. Connecting a connected client does nothing.
func (c *Client) Connect(ctx context.Context) error {
	onC2D, _ := c.handlers()
	if onC2D != nil && c.topicDown == "" {
		return &protocols.Error{Kind: protocols.KindOther, Op: "connect", Err: errors.New("a C2D handler is registered but TopicDown is not set")}
	}
	c.mu.Lock()
	if c.conn != nil {
		c.mu.Unlock()
		return nil
	}
	if c.worker == nil {
		c.worker = mqttconn.NewWorker(64)
		c.life, c.cancel = context.WithCancel(context.Background())
	}
	c.mu.Unlock()
	keepAlive := c.cfg.KeepAlive
	switch {
	case keepAlive == 0:
		keepAlive = DefaultKeepAlive
	case keepAlive < 0:
		keepAlive = 0
	}
	var conn *mqttconn.Conn
	ready := make(chan struct{})
	conn, err := mqttconn.Dial(ctx, mqttconn.Options{
		Dialer:       c.cfg.Dialer,
		Addr:         c.cfg.Address,
		TLS:          c.tls,
		Classifier:   func() network.Classifier { return classify.NewMQTT(c.rules...) },
		ClientID:     c.cfg.Identity.ClientID(),
		Username:     c.cfg.Auth.Username,
		Password:     c.cfg.Auth.Password,
		KeepAlive:    keepAlive,
		CleanSession: c.cfg.CleanSession,
		OnMessage:    func(m paho.Message) { <-ready; c.receive(m) },
		OnLost:       func(err error) { <-ready; c.lost(conn, err) },
	})
	close(ready)
	if err != nil {
		return err
	}
	if onC2D != nil && (c.cfg.CleanSession || !conn.SessionPresent()) {
		if err := conn.Subscribe(ctx, map[string]byte{c.topicDown: 1}); err != nil {
			conn.Close()
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil || c.cancel == nil {
		conn.Close()
		return nil
	}
	c.conn = conn
	return nil
}

func (c *Client) lost(conn *mqttconn.Conn, err error) {
	c.mu.Lock()
	if c.conn != conn || conn == nil {
		c.mu.Unlock()
		return
	}
	c.conn = nil
	w := c.worker
	c.mu.Unlock()
	if _, h := c.handlers(); h != nil && w != nil {
		perr := &protocols.Error{Kind: protocols.KindDisconnected, Op: "connection", Err: fmt.Errorf("the broker closed the connection or it dropped: %w", err)}
		w.Do(func() { h(false, perr) })
	}
}

// receive hands a message on TopicDown to the C2D handler on the worker; its
// PUBACK follows the handler, and an outcome other than complete is reported
// as unsupported.
func (c *Client) receive(m paho.Message) {
	onC2D, onState := c.handlers()
	c.mu.Lock()
	w, life := c.worker, c.life
	c.mu.Unlock()
	if m.Topic() != c.topicDown || onC2D == nil || w == nil {
		m.Ack()
		return
	}
	payload := m.Payload()
	c.ledger.AddPayload(network.Down, network.ClassC2D, len(payload))
	msg := &protocols.C2DMessage{Message: iothub.Message{Body: payload}}
	queued := w.Do(func() {
		o := onC2D(life, msg)
		m.Ack()
		if o != protocols.Complete && onState != nil {
			onState(true, &protocols.Error{Kind: protocols.KindUnsupported, Op: "c2d " + o.String(),
				Err: errors.New("MQTT acknowledges every message with its PUBACK; it cannot abandon or reject")})
		}
	})
	if !queued {
		m.Ack()
	}
}

// SendTelemetry publishes m's body to TopicUp at the configured QoS; its
// properties are not sent (MQTT 3.1.1 has none).
func (c *Client) SendTelemetry(ctx context.Context, m *iothub.Message) error {
	if m == nil {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send", Err: errors.New("no message")}
	}
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return &protocols.Error{Kind: protocols.KindDisconnected, Op: "send", Err: errors.New("not connected: call Connect")}
	}
	if err := conn.Publish(ctx, "send", c.topicUp, c.cfg.QoS, m.Body); err != nil {
		return err
	}
	c.ledger.AddPayload(network.Up, network.ClassTelemetry, len(m.Body))
	return nil
}

// Close disconnects gracefully and stops the client's goroutines; the client
// may connect again.
func (c *Client) Close(context.Context) error {
	c.mu.Lock()
	conn, w, cancel := c.conn, c.worker, c.cancel
	c.conn, c.worker, c.cancel = nil, nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if conn != nil {
		conn.Close()
	}
	if w != nil {
		w.Stop()
	}
	return nil
}
