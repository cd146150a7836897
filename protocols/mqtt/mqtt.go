package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/mqttconn"
	"github.com/catmsim/catmsim/sas"
)

// DefaultKeepAlive is the keep-alive when Config.KeepAlive is zero: the C
// SDK's 240 s. A negative KeepAlive sends none (the hub then closes a silent
// connection after 1767 s).
const DefaultKeepAlive = 240 * time.Second

// drainTimeout bounds how long a renewal waits for operations in flight on
// the old connection before it disconnects them.
const drainTimeout = 10 * time.Second

// workerDepth is how many hub pushes (C2D, methods, desired patches) may wait
// for the device's handlers before the connection's reader waits too.
const workerDepth = 64

// Client is one device's MQTT or MQTT-over-WebSocket connection to IoT Hub.
// It implements protocols.Client, C2DReceiver, MethodServer, TwinClient and
// StateNotifier.
type Client struct {
	cfg      protocols.Config
	ws       bool
	proto    protocols.Protocol
	addr     string
	tls      *tls.Config
	tokens   *protocols.Tokens
	ledger   *network.Ledger
	now      func() time.Time
	username string

	hmu       sync.Mutex // handlers
	onC2D     protocols.C2DHandler
	onMethod  protocols.MethodHandler
	onDesired protocols.DesiredHandler
	onState   protocols.StateHandler

	// subMu serialises subscription changes, so two first twin requests make
	// one SUBSCRIBE.
	subMu sync.Mutex

	mu       sync.Mutex
	conn     *mqttconn.Conn
	renewing chan struct{} // non-nil while a token renewal reconnects; closed when done
	inflight int           // operations using conn
	drained  chan struct{} // closed when inflight drops to zero during a renewal
	subs     map[string]bool
	twinUsed bool
	pending  map[string]chan twinResult
	rid      uint64
	stopNext chan struct{} // stops the current connection's renewal timer
	worker   *mqttconn.Worker
	life     context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // renewal goroutines
}

type twinResult struct {
	status  int
	version int64
	body    []byte
}

var (
	_ protocols.Client        = (*Client)(nil)
	_ protocols.C2DReceiver   = (*Client)(nil)
	_ protocols.MethodServer  = (*Client)(nil)
	_ protocols.TwinClient    = (*Client)(nil)
	_ protocols.StateNotifier = (*Client)(nil)
)

// New checks cfg and returns a client for cfg.Protocol, mqtt or mqtt-ws. It
// does not connect.
func New(cfg protocols.Config) (*Client, error) {
	errs := []error{cfg.CheckCommon(), cfg.CheckIoTHubAuth()}
	var ws bool
	switch cfg.Protocol {
	case protocols.MQTT, "":
		cfg.Protocol = protocols.MQTT
	case protocols.MQTTWebSocket:
		ws = true
	default:
		errs = append(errs, fmt.Errorf("config.Protocol: this client speaks %s and %s, not %q", protocols.MQTT, protocols.MQTTWebSocket, cfg.Protocol))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mqtt client for %s: %w", cfg.Identity, err)
	}
	port := protocols.PortMQTT
	if ws {
		port = protocols.PortHTTPS
	}
	c := &Client{
		cfg:    cfg,
		ws:     ws,
		proto:  cfg.Protocol,
		addr:   cfg.Addr(port),
		tls:    cfg.TLSConfig(),
		tokens: cfg.NewTokens(sas.DeviceResource(cfg.HostName, cfg.Identity.DeviceID, cfg.Identity.ModuleID)),
		ledger: cfg.Dialer.Link.Ledger(),
		now:    cfg.Clock(),
		username: iothub.FormatUsername(cfg.HostName, cfg.Identity, cfg.APIVersionOrDefault(),
			cfg.ClientType, cfg.ModelID),
		subs:    map[string]bool{},
		pending: map[string]chan twinResult{},
	}
	return c, nil
}

// OnC2D registers the cloud-to-device handler; register before Connect.
func (c *Client) OnC2D(h protocols.C2DHandler) { c.hmu.Lock(); c.onC2D = h; c.hmu.Unlock() }

// OnMethod registers the direct-method handler; register before Connect.
func (c *Client) OnMethod(h protocols.MethodHandler) { c.hmu.Lock(); c.onMethod = h; c.hmu.Unlock() }

// OnDesired registers the desired-properties handler; register before Connect.
func (c *Client) OnDesired(h protocols.DesiredHandler) { c.hmu.Lock(); c.onDesired = h; c.hmu.Unlock() }

// OnState registers the connection-state handler.
func (c *Client) OnState(h protocols.StateHandler) { c.hmu.Lock(); c.onState = h; c.hmu.Unlock() }

func (c *Client) handlers() (protocols.C2DHandler, protocols.MethodHandler, protocols.DesiredHandler, protocols.StateHandler) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	return c.onC2D, c.onMethod, c.onDesired, c.onState
}

// Connect dials, authenticates and subscribes to what the registered handlers
// need. Connecting a connected client does nothing. After a drop (reported
// through OnState) the caller reconnects by calling Connect again.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.conn != nil || c.renewing != nil {
		c.mu.Unlock()
		return nil
	}
	if c.worker == nil {
		c.worker = mqttconn.NewWorker(workerDepth)
		c.life, c.cancel = context.WithCancel(context.Background())
	}
	c.mu.Unlock()
	if onC2D, _, _, _ := c.handlers(); onC2D != nil && c.cfg.Identity.ModuleID != "" {
		return &protocols.Error{Kind: protocols.KindUnsupported, Op: "connect", Err: errors.New("IoT Hub has no cloud-to-device messages for modules; do not register OnC2D for a module")}
	}
	conn, renewBy, err := c.dial(ctx, false)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil || c.cancel == nil {
		// Closed or connected meanwhile.
		conn.Close()
		if c.cancel == nil {
			return &protocols.Error{Kind: protocols.KindDisconnected, Op: "connect", Err: errors.New("the client was closed while connecting")}
		}
		return nil
	}
	if err := conn.LostErr(); err != nil {
		// Lost before it was installed, so lost() ignored it.
		return &protocols.Error{Kind: protocols.KindDisconnected, Op: "connect", Err: fmt.Errorf("the connection dropped right after CONNACK: %w", err)}
	}
	c.install(conn, renewBy)
	return nil
}

// dial opens a connection with a fresh token and makes the subscriptions the
// session lacks. c.mu must not be held.
func (c *Client) dial(ctx context.Context, renewal bool) (*mqttconn.Conn, time.Time, error) {
	var password string
	var renewBy time.Time
	if c.tokens != nil {
		password, renewBy = c.tokens.Fresh()
	}
	if !renewBy.IsZero() && !renewBy.After(c.now()) {
		return nil, time.Time{}, &protocols.Error{Kind: protocols.KindUnauthorized, Op: "connect", Err: errors.New("the token lifetime is too short to connect before renewing it")}
	}
	keepAlive := c.cfg.KeepAlive
	switch {
	case keepAlive == 0:
		keepAlive = DefaultKeepAlive
	case keepAlive < 0:
		keepAlive = 0
	}
	o := mqttconn.Options{
		Dialer:       c.cfg.Dialer,
		Addr:         c.addr,
		TLS:          c.tls,
		Classifier:   func() network.Classifier { return classify.NewMQTT() },
		ClientID:     c.cfg.Identity.ClientID(),
		Username:     c.username,
		Password:     password,
		KeepAlive:    keepAlive,
		CleanSession: c.cfg.CleanSession,
	}
	if renewal {
		o.Reason, o.HasReason = network.ReasonTokenRenewal, true
	}
	if c.ws {
		o.WebSocketPath = iothub.WebSocketPath
	}
	// paho may call these before Dial has returned conn (a C2D message kept
	// by a persistent session can follow the CONNACK at once); they wait.
	var conn *mqttconn.Conn
	ready := make(chan struct{})
	o.OnMessage = func(m paho.Message) { <-ready; c.receive(m) }
	o.OnLost = func(err error) { <-ready; c.lost(conn, err) }
	conn, err := mqttconn.Dial(ctx, o)
	if err != nil {
		close(ready)
		return nil, time.Time{}, err
	}
	close(ready)
	if err := c.subscribe(ctx, conn); err != nil {
		conn.Close()
		return nil, time.Time{}, err
	}
	return conn, renewBy, nil
}

// subscribe makes the subscriptions the registered handlers (and an earlier
// twin request) need and the session does not already hold.
func (c *Client) subscribe(ctx context.Context, conn *mqttconn.Conn) error {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.mu.Lock()
	if c.cfg.CleanSession || !conn.SessionPresent() {
		c.subs = map[string]bool{}
	}
	twin := c.twinUsed
	c.mu.Unlock()
	onC2D, onMethod, onDesired, _ := c.handlers()
	want := map[string]byte{}
	if onC2D != nil {
		want[iothub.C2DFilter(c.cfg.Identity.DeviceID)] = 1
	}
	if onMethod != nil {
		want[iothub.MethodsFilter] = 0
	}
	if onDesired != nil {
		want[iothub.DesiredFilter] = 0
	}
	if twin {
		want[iothub.TwinResponseFilter] = 0
	}
	return c.subscribeLocked(ctx, conn, want)
}

// subscribeLocked subscribes to the filters of want not yet held; c.subMu is
// held.
func (c *Client) subscribeLocked(ctx context.Context, conn *mqttconn.Conn, want map[string]byte) error {
	c.mu.Lock()
	for f := range want {
		if c.subs[f] {
			delete(want, f)
		}
	}
	c.mu.Unlock()
	if err := conn.Subscribe(ctx, want); err != nil {
		return err
	}
	c.mu.Lock()
	for f := range want {
		c.subs[f] = true
	}
	c.mu.Unlock()
	return nil
}

// install makes conn the client's connection and arms its token renewal;
// c.mu is held.
func (c *Client) install(conn *mqttconn.Conn, renewBy time.Time) {
	c.conn = conn
	c.stopNext = nil
	if renewBy.IsZero() {
		return
	}
	stop := make(chan struct{})
	c.stopNext = stop
	c.wg.Add(1)
	go c.renewAt(conn, renewBy, stop)
}

// renewAt waits until the token is due for renewal, then renews it by
// reconnecting, as IoT Hub requires on MQTT.
func (c *Client) renewAt(conn *mqttconn.Conn, at time.Time, stop chan struct{}) {
	defer c.wg.Done()
	t := time.NewTimer(at.Sub(c.now()))
	defer t.Stop()
	select {
	case <-t.C:
		c.renew(conn)
	case <-stop:
	case <-conn.Lost():
	}
}

// renew replaces old with a connection that presents a fresh token. New
// operations wait for it; those in flight finish on the old connection first.
func (c *Client) renew(old *mqttconn.Conn) {
	c.mu.Lock()
	if c.conn != old || c.cancel == nil {
		c.mu.Unlock()
		return
	}
	done := make(chan struct{})
	c.renewing = done
	var drained chan struct{}
	if c.inflight > 0 {
		drained = make(chan struct{})
		c.drained = drained
	}
	life := c.life
	c.mu.Unlock()
	if drained != nil {
		t := time.NewTimer(drainTimeout)
		select {
		case <-drained:
		case <-t.C:
		case <-life.Done():
		}
		t.Stop()
	}
	c.mu.Lock()
	c.conn = nil
	c.drained = nil
	c.mu.Unlock()
	old.Close()

	ctx, cancel := context.WithTimeout(life, mqttconn.DefaultConnectTimeout)
	conn, renewBy, err := c.dial(ctx, true)
	cancel()

	c.mu.Lock()
	c.renewing = nil
	closed := c.cancel == nil
	if err == nil && !closed {
		if lerr := conn.LostErr(); lerr != nil {
			err = &protocols.Error{Kind: protocols.KindDisconnected, Op: "connect", Err: fmt.Errorf("the connection dropped right after CONNACK: %w", lerr)}
		} else {
			c.install(conn, renewBy)
		}
	}
	c.mu.Unlock()
	close(done)
	if err == nil && closed {
		conn.Close()
		return
	}
	if err != nil && !closed {
		kind := protocols.KindDisconnected
		var pe *protocols.Error
		if errors.As(err, &pe) {
			kind = pe.Kind
		}
		c.notify(false, &protocols.Error{Kind: kind, Op: "token renewal", Err: fmt.Errorf("reconnecting with a new token failed; the device is disconnected: %w", err)})
	}
}

// lost handles a connection that ended without Close: pending requests fail
// and the state handler hears it. Nothing reconnects.
func (c *Client) lost(conn *mqttconn.Conn, err error) {
	c.mu.Lock()
	if c.conn != conn {
		c.mu.Unlock()
		return
	}
	c.conn = nil
	if c.stopNext != nil {
		close(c.stopNext)
		c.stopNext = nil
	}
	c.mu.Unlock()
	c.notify(false, &protocols.Error{Kind: protocols.KindDisconnected, Op: "connection", Err: fmt.Errorf("the hub closed the connection or it dropped: %w", err)})
}

// notify runs the state handler on the worker.
func (c *Client) notify(connected bool, err error) {
	_, _, _, h := c.handlers()
	c.mu.Lock()
	w := c.worker
	c.mu.Unlock()
	if h == nil || w == nil {
		return
	}
	w.Do(func() { h(connected, err) })
}

// acquire returns the live connection for one operation, waiting out a token
// renewal; release must be called when the operation is done.
func (c *Client) acquire(ctx context.Context, op string) (*mqttconn.Conn, func(), error) {
	for {
		c.mu.Lock()
		if ch := c.renewing; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, nil, protocols.Wrap(op, ctx.Err())
			}
		}
		conn := c.conn
		if conn == nil {
			c.mu.Unlock()
			return nil, nil, &protocols.Error{Kind: protocols.KindDisconnected, Op: op, Err: errors.New("not connected: call Connect")}
		}
		c.inflight++
		c.mu.Unlock()
		return conn, c.release, nil
	}
}

func (c *Client) release() {
	c.mu.Lock()
	c.inflight--
	if c.inflight == 0 && c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
	c.mu.Unlock()
}

// SendTelemetry publishes m on the device's telemetry topic with its
// properties in the topic's bag. At QoS 1 it returns after the hub's PUBACK.
// A message over IoT Hub's 256 KB limit is refused here, as the SDKs do,
// because the hub would close the connection.
func (c *Client) SendTelemetry(ctx context.Context, m *iothub.Message) error {
	if m == nil {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send", Err: errors.New("no message")}
	}
	if n := m.Size(); n > iothub.MaxD2CSize {
		return &protocols.Error{Kind: protocols.KindTooLarge, Op: "send", Err: iothub.Errorf(iothub.CodeMessageTooLarge,
			"message of %d bytes exceeds IoT Hub's limit of %d", n, iothub.MaxD2CSize)}
	}
	conn, release, err := c.acquire(ctx, "send")
	if err != nil {
		return err
	}
	defer release()
	if err := conn.Publish(ctx, "send", iothub.TelemetryTopic(c.cfg.Identity, m, true), c.cfg.QoS, m.Body); err != nil {
		return err
	}
	c.ledger.AddPayload(network.Up, network.ClassTelemetry, len(m.Body))
	return nil
}

// GetTwin asks for the device's twin. The first twin request subscribes to
// the twin responses, as the Node SDK does.
func (c *Client) GetTwin(ctx context.Context) ([]byte, error) {
	r, err := c.twinRequest(ctx, "twin get", iothub.TwinGetTopic, nil)
	if err != nil {
		return nil, err
	}
	c.ledger.AddPayload(network.Down, network.ClassTwin, len(r.body))
	return r.body, nil
}

// PatchReported sends a reported-properties patch and returns the new
// reported version.
func (c *Client) PatchReported(ctx context.Context, patch []byte) (int64, error) {
	r, err := c.twinRequest(ctx, "twin patch", iothub.ReportedPatchTopic, patch)
	if err != nil {
		return 0, err
	}
	return r.version, nil
}

// twinRequest publishes a twin request with a new $rid and waits for the
// response with that $rid, the context's deadline, or the connection's end.
func (c *Client) twinRequest(ctx context.Context, op string, topic func(rid string) string, body []byte) (twinResult, error) {
	conn, release, err := c.acquire(ctx, op)
	if err != nil {
		return twinResult{}, err
	}
	defer release()
	c.mu.Lock()
	c.twinUsed = true
	c.mu.Unlock()
	c.subMu.Lock()
	err = c.subscribeLocked(ctx, conn, map[string]byte{iothub.TwinResponseFilter: 0})
	c.subMu.Unlock()
	if err != nil {
		return twinResult{}, err
	}
	ch := make(chan twinResult, 1)
	c.mu.Lock()
	c.rid++
	rid := strconv.FormatUint(c.rid, 10)
	c.pending[rid] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, rid)
		c.mu.Unlock()
	}()
	if err := conn.Publish(ctx, op, topic(rid), 0, body); err != nil {
		return twinResult{}, err
	}
	c.ledger.AddPayload(network.Up, network.ClassTwin, len(body))
	select {
	case r := <-ch:
		if r.status < 200 || r.status > 299 {
			he := iothub.ParseErrorBody(r.status, r.body)
			return twinResult{}, &protocols.Error{Kind: protocols.KindOf(he.Code), Op: op, Err: fmt.Errorf("status %d: %w", r.status, he)}
		}
		return r, nil
	case <-conn.Lost():
		return twinResult{}, &protocols.Error{Kind: protocols.KindDisconnected, Op: op, Err: fmt.Errorf("%w: %v", mqttconn.ErrClosed, conn.LostErr())}
	case <-ctx.Done():
		return twinResult{}, protocols.Wrap(op, ctx.Err())
	}
}

// hubMessage is a publish from the hub, decoded.
type hubMessage struct {
	iothub.HubPublish
	c2d *protocols.C2DMessage // for HubTopicC2D
}

// decodeHubPublish reads a publish the hub sent. A C2D message whose bag does
// not decode is still delivered, with its body and without properties.
func decodeHubPublish(topic string, payload []byte) (hubMessage, error) {
	hp, err := iothub.ParseHubPublish(topic)
	if err != nil {
		return hubMessage{}, err
	}
	hm := hubMessage{HubPublish: hp}
	if hp.Kind == iothub.HubTopicC2D {
		hm.c2d = &protocols.C2DMessage{Message: iothub.Message{Body: payload}}
		if err := iothub.DecodeBag(hp.Bag, &hm.c2d.Message); err != nil {
			hm.c2d.Message = iothub.Message{Body: payload}
		}
	}
	return hm, nil
}

// receive dispatches a publish from the hub; it runs on paho's goroutine and
// hands anything that calls device code to the worker.
func (c *Client) receive(m paho.Message) {
	payload := m.Payload()
	hm, err := decodeHubPublish(m.Topic(), payload)
	c.mu.Lock()
	w, life := c.worker, c.life
	c.mu.Unlock()
	if err != nil || w == nil {
		m.Ack()
		return
	}
	onC2D, onMethod, onDesired, _ := c.handlers()
	switch hm.Kind {
	case iothub.HubTopicTwinResponse:
		c.mu.Lock()
		ch := c.pending[hm.RID]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- twinResult{status: hm.Status, version: hm.Version, body: payload}:
			default:
			}
		}
	case iothub.HubTopicDesiredPatch:
		c.ledger.AddPayload(network.Down, network.ClassTwin, len(payload))
		if onDesired != nil {
			w.Do(func() { onDesired(payload, hm.Version) })
		}
	case iothub.HubTopicMethodRequest:
		c.ledger.AddPayload(network.Down, network.ClassMethod, len(payload))
		if onMethod != nil {
			w.Do(func() { c.answerMethod(life, onMethod, hm.HubPublish, payload) })
		}
	case iothub.HubTopicC2D:
		c.ledger.AddPayload(network.Down, network.ClassC2D, len(payload))
		if onC2D == nil || !w.Do(func() { c.settleC2D(life, onC2D, hm.c2d, m) }) {
			m.Ack()
		}
		return
	}
	m.Ack()
}

// settleC2D runs the device's handler, then acknowledges: the PUBACK is the
// completion whatever the handler decided, because MQTT has no other outcome.
func (c *Client) settleC2D(ctx context.Context, h protocols.C2DHandler, msg *protocols.C2DMessage, m paho.Message) {
	o := h(ctx, msg)
	m.Ack()
	if o != protocols.Complete {
		_, _, _, sh := c.handlers()
		if sh != nil {
			sh(true, &protocols.Error{Kind: protocols.KindUnsupported, Op: "c2d " + o.String(),
				Err: errors.New("MQTT completes every cloud-to-device message with its PUBACK; abandon and reject need AMQP or HTTPS")})
		}
	}
}

// answerMethod runs the device's method handler and publishes its answer.
func (c *Client) answerMethod(ctx context.Context, h protocols.MethodHandler, hp iothub.HubPublish, payload []byte) {
	status, resp := h(ctx, hp.Method, payload)
	conn, release, err := c.acquire(ctx, "method response")
	if err != nil {
		return
	}
	defer release()
	if conn.Publish(ctx, "method response", iothub.MethodResponseTopic(status, hp.RID), 0, resp) == nil {
		c.ledger.AddPayload(network.Up, network.ClassMethod, len(resp))
	}
}

// Close disconnects gracefully and stops the client's goroutines. The client
// may connect again afterwards.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	if c.stopNext != nil {
		close(c.stopNext)
		c.stopNext = nil
	}
	cancel, w := c.cancel, c.worker
	c.cancel, c.worker = nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	// A renewal under way sees the cancelled context, abandons its dial and
	// closes what it opened.
	c.wg.Wait()
	if conn != nil {
		conn.Close()
	}
	if w != nil {
		w.Stop()
	}
	return nil
}
