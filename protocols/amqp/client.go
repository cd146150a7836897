package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/mqttconn"
	"github.com/catmsim/catmsim/sas"
)

// DefaultIdleTimeout is the idle-time-out the client advertises when
// Config.IdleTimeout is zero: the C SDK's 240 s, so the hub's heartbeats come
// at most every 120 s. A negative IdleTimeout advertises none.
const DefaultIdleTimeout = 240 * time.Second

// DefaultConnectTimeout bounds a connect, or a renewal's put-token, whose
// context has no deadline.
const DefaultConnectTimeout = 30 * time.Second

// drainTimeout bounds how long a SASL PLAIN renewal waits for operations in
// flight on the old connection before it closes it under them.
const drainTimeout = 10 * time.Second

// workerDepth is how many hub pushes (C2D, methods, desired patches) may wait
// for the device's handlers before the receive loops wait too.
const workerDepth = 64

// Client is one device's AMQP or AMQP-over-WebSocket connection to IoT Hub.
// It implements protocols.Client, BatchSender, C2DReceiver, MethodServer,
// TwinClient and StateNotifier.
type Client struct {
	cfg     protocols.Config
	ws      bool
	auth    protocols.AMQPAuth
	addr    string
	tls     *tls.Config
	tokens  *protocols.Tokens
	cbsName string        // the put-token's name: the token's sr, encoded, as the Node SDK sends it
	idle    time.Duration // go-amqp's IdleTimeout option
	ledger  *network.Ledger
	now     func() time.Time
	ids     *ids
	// classifier makes the AMQP classifier of a new connection's plaintext.
	classifier func() network.Classifier

	hmu       sync.Mutex // handlers
	onC2D     protocols.C2DHandler
	onMethod  protocols.MethodHandler
	onDesired protocols.DesiredHandler
	onState   protocols.StateHandler

	mu       sync.Mutex
	live     *conn
	renewing chan struct{} // non-nil while a SASL PLAIN renewal reconnects; closed when done
	inflight int           // operations using live
	drained  chan struct{} // closed when inflight drops to zero during a renewal
	timer    *time.Timer   // the next token renewal
	worker   *mqttconn.Worker
	life     context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // renewals, and the shutdown of lost connections
}

var (
	_ protocols.Client        = (*Client)(nil)
	_ protocols.BatchSender   = (*Client)(nil)
	_ protocols.C2DReceiver   = (*Client)(nil)
	_ protocols.MethodServer  = (*Client)(nil)
	_ protocols.TwinClient    = (*Client)(nil)
	_ protocols.StateNotifier = (*Client)(nil)
)

// New checks cfg and returns a client for cfg.Protocol, amqp or amqp-ws. It
// does not connect.
func New(cfg protocols.Config) (*Client, error) {
	errs := []error{cfg.CheckCommon(), cfg.CheckIoTHubAuth()}
	var ws bool
	switch cfg.Protocol {
	case protocols.AMQP, "":
		cfg.Protocol = protocols.AMQP
	case protocols.AMQPWebSocket:
		ws = true
	default:
		errs = append(errs, fmt.Errorf("config.Protocol: this client speaks %s and %s, not %q", protocols.AMQP, protocols.AMQPWebSocket, cfg.Protocol))
	}
	auth, err := authOf(&cfg)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("amqp client for %s: %w", cfg.Identity, err)
	}
	port := protocols.PortAMQP
	if ws {
		port = protocols.PortHTTPS
	}
	// go-amqp advertises half the idle timeout it is given (and closes after
	// the whole of it without a frame), so it gets twice the value to send.
	idle := 2 * cfg.IdleTimeout
	switch {
	case idle == 0:
		idle = 2 * DefaultIdleTimeout
	case idle < 0:
		idle = -1 // go-amqp: none
	}
	resource := sas.DeviceResource(cfg.HostName, cfg.Identity.DeviceID, cfg.Identity.ModuleID)
	return &Client{
		cfg:        cfg,
		ws:         ws,
		auth:       auth,
		addr:       cfg.Addr(port),
		tls:        cfg.TLSConfig(),
		tokens:     cfg.NewTokens(resource),
		cbsName:    sas.Encode(resource),
		idle:       idle,
		ledger:     cfg.Dialer.Link.Ledger(),
		now:        cfg.Clock(),
		ids:        newIDs(cfg.Identity.ClientID()),
		classifier: func() network.Classifier { return classify.NewAMQP() },
	}, nil
}

// authOf resolves Config.AMQPAuth against the credentials: SAS tokens go by
// CBS or PLAIN, certificates with or without SASL EXTERNAL.
func authOf(cfg *protocols.Config) (protocols.AMQPAuth, error) {
	cert := cfg.Auth.Certificate != nil
	switch a := cfg.AMQPAuth; a {
	case "":
		if cert {
			return protocols.AMQPAuthNoSASL, nil
		}
		return protocols.AMQPAuthCBS, nil
	case protocols.AMQPAuthCBS, protocols.AMQPAuthPlain:
		if cert {
			return "", fmt.Errorf("config.AMQPAuth: %q authenticates with a SAS token, but the device has a certificate; use %q or %q", a, protocols.AMQPAuthNoSASL, protocols.AMQPAuthExternal)
		}
		return a, nil
	case protocols.AMQPAuthExternal, protocols.AMQPAuthNoSASL:
		if !cert {
			return "", fmt.Errorf("config.AMQPAuth: %q authenticates with a client certificate, and the device has none; use %q or %q", a, protocols.AMQPAuthCBS, protocols.AMQPAuthPlain)
		}
		return a, nil
	default:
		return "", fmt.Errorf("config.AMQPAuth: must be %q, %q, %q or %q (got %q)", protocols.AMQPAuthCBS, protocols.AMQPAuthPlain,
			protocols.AMQPAuthExternal, protocols.AMQPAuthNoSASL, a)
	}
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

// runner is the worker that runs the device's handlers and the context they
// run under; nil after Close.
func (c *Client) runner() (*mqttconn.Worker, context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.worker, c.life
}

// Connect dials, authenticates and attaches the links the registered handlers
// need. Connecting a connected client does nothing. After a drop (reported
// through OnState) the caller reconnects by calling Connect again.
func (c *Client) Connect(ctx context.Context) error {
	if onC2D, _, _, _ := c.handlers(); onC2D != nil && c.cfg.Identity.ModuleID != "" {
		return &protocols.Error{Kind: protocols.KindUnsupported, Op: "connect", Err: errors.New("IoT Hub has no cloud-to-device messages for modules; do not register OnC2D for a module")}
	}
	c.mu.Lock()
	if c.live != nil || c.renewing != nil {
		c.mu.Unlock()
		return nil
	}
	if c.worker == nil {
		c.worker = mqttconn.NewWorker(workerDepth)
		c.life, c.cancel = context.WithCancel(context.Background())
	}
	c.mu.Unlock()
	token, renewBy, err := c.freshToken()
	if err != nil {
		return err
	}
	cn, err := c.dial(ctx, token, false)
	if err != nil {
		return err
	}
	c.mu.Lock()
	closed, raced, lerr := c.cancel == nil, c.live != nil || c.renewing != nil, cn.lostError()
	if !closed && !raced && lerr == nil {
		c.installLocked(cn, renewBy)
	}
	c.mu.Unlock()
	switch {
	case closed:
		cn.shutdown()
		return &protocols.Error{Kind: protocols.KindDisconnected, Op: "connect", Err: errors.New("the client was closed while connecting")}
	case raced:
		// Another Connect won.
		cn.shutdown()
	case lerr != nil:
		// Lost before it was installed, so lost() ignored it.
		cn.shutdown()
		return &protocols.Error{Kind: lerr.Kind, Op: "connect", Err: fmt.Errorf("the connection dropped right after it opened: %w", lerr.Err)}
	}
	return nil
}

// freshToken signs the token a new connection presents and says when to
// renew it; a certificate needs none.
func (c *Client) freshToken() (string, time.Time, error) {
	if c.tokens == nil {
		return "", time.Time{}, nil
	}
	token, renewBy := c.tokens.Fresh()
	if !renewBy.IsZero() && !renewBy.After(c.now()) {
		return "", time.Time{}, &protocols.Error{Kind: protocols.KindUnauthorized, Op: "connect", Err: errors.New("the token lifetime is too short to connect before renewing it")}
	}
	return token, renewBy, nil
}

// installLocked makes cn the client's connection and arms its token renewal;
// c.mu is held.
func (c *Client) installLocked(cn *conn, renewBy time.Time) {
	c.live = cn
	c.armLocked(cn, renewBy)
}

// armLocked schedules the renewal of cn's token at renewBy; c.mu is held.
func (c *Client) armLocked(cn *conn, renewBy time.Time) {
	c.disarmLocked()
	if renewBy.IsZero() {
		return
	}
	c.wg.Add(1)
	c.timer = time.AfterFunc(renewBy.Sub(c.now()), func() {
		defer c.wg.Done()
		if c.auth == protocols.AMQPAuthPlain {
			c.renewByReconnect(cn)
		} else {
			c.renewCBS(cn)
		}
	})
}

// disarmLocked cancels a scheduled renewal that has not started; c.mu is
// held.
func (c *Client) disarmLocked() {
	if c.timer != nil && c.timer.Stop() {
		c.wg.Done()
	}
	c.timer = nil
}

// renewCBS puts a fresh token on the live connection's $cbs link, which the
// hub applies to the device's links without a reconnect. A refusal ends the
// connection and is reported as a failed token renewal.
func (c *Client) renewCBS(cn *conn) {
	c.mu.Lock()
	if c.live != cn || c.cancel == nil {
		c.mu.Unlock()
		return
	}
	c.timer = nil
	life := c.life
	c.mu.Unlock()
	token, renewBy := c.tokens.Fresh()
	ctx, cancel := context.WithTimeout(life, DefaultConnectTimeout)
	err := cn.putToken(ctx, "token renewal", token)
	cancel()
	if life.Err() != nil {
		return // closed meanwhile
	}
	if err != nil {
		kind := protocols.KindDisconnected
		var pe *protocols.Error
		if errors.As(err, &pe) {
			kind = pe.Kind
		}
		cn.fail(&protocols.Error{Kind: kind, Op: "token renewal", Err: fmt.Errorf("the hub did not take the renewed token; the device is disconnected: %w", err)})
		return
	}
	c.mu.Lock()
	if c.live == cn {
		c.armLocked(cn, renewBy)
	}
	c.mu.Unlock()
}

// renewByReconnect replaces a SASL PLAIN connection, which is bound to its
// token, with one that presents a fresh token. New operations wait for it;
// those in flight finish on the old connection first.
func (c *Client) renewByReconnect(old *conn) {
	c.mu.Lock()
	if c.live != old || c.cancel == nil {
		c.mu.Unlock()
		return
	}
	c.timer = nil
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
	c.live = nil
	c.drained = nil
	c.mu.Unlock()
	old.shutdown()

	var cn *conn
	token, renewBy, err := c.freshToken()
	if err == nil {
		ctx, cancel := context.WithTimeout(life, DefaultConnectTimeout)
		cn, err = c.dial(ctx, token, true)
		cancel()
	}

	c.mu.Lock()
	c.renewing = nil
	closed := c.cancel == nil
	installed := false
	if err == nil && !closed {
		if lerr := cn.lostError(); lerr != nil {
			err = lerr
		} else {
			c.installLocked(cn, renewBy)
			installed = true
		}
	}
	c.mu.Unlock()
	close(done)
	if cn != nil && !installed {
		cn.shutdown()
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

// lost handles a connection that ended without Close: it is shut down, the
// state handler hears why, and nothing reconnects.
func (c *Client) lost(cn *conn, err *protocols.Error) {
	c.mu.Lock()
	if c.live != cn {
		c.mu.Unlock()
		return
	}
	c.live = nil
	c.disarmLocked()
	// lost may run on a receive loop of cn, which shutdown waits for, or on
	// the worker, which notify queues on: both happen on a goroutine of
	// their own, which Close waits for.
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		cn.shutdown()
		c.notify(false, err)
	}()
}

// notify runs the state handler on the worker.
func (c *Client) notify(connected bool, err error) {
	_, _, _, h := c.handlers()
	w, _ := c.runner()
	if h == nil || w == nil {
		return
	}
	w.Do(func() { h(connected, err) })
}

// acquire returns the live connection for one operation, waiting out a SASL
// PLAIN renewal; release must be called when the operation is done.
func (c *Client) acquire(ctx context.Context, op string) (*conn, func(), error) {
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
		cn := c.live
		if cn == nil {
			c.mu.Unlock()
			return nil, nil, &protocols.Error{Kind: protocols.KindDisconnected, Op: op, Err: errors.New("not connected: call Connect")}
		}
		c.inflight++
		c.mu.Unlock()
		return cn, c.release, nil
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

// SendTelemetry sends m on the device's telemetry link and returns when the
// hub settled it: accepted, or rejected with a condition that says why
// (amqp:link:message-size-exceeded over 256 KB is ErrTooLarge,
// com.microsoft:device-container-throttled ErrThrottled). A rejection leaves
// the connection up. The size is left to the hub to judge, so an oversized
// message costs its bytes, as on a device that does not check.
func (c *Client) SendTelemetry(ctx context.Context, m *iothub.Message) error {
	if m == nil {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send", Err: errors.New("no message")}
	}
	return c.send(ctx, "send", toWire(m), len(m.Body))
}

// SendBatch sends ms as one batched transfer (message-format 0x80013700,
// each data section a whole encoded message), as the .NET and C SDKs batch
// telemetry; the hub stores each message and accepts or rejects the batch as
// a whole.
func (c *Client) SendBatch(ctx context.Context, ms []*iothub.Message) error {
	if len(ms) == 0 {
		return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: errors.New("no messages")}
	}
	batch := &goamqp.Message{Format: iothub.AMQPBatchFormat, Data: make([][]byte, 0, len(ms))}
	body := 0
	for i, m := range ms {
		if m == nil {
			return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: fmt.Errorf("message %d is nil", i)}
		}
		b, err := toWire(m).MarshalBinary()
		if err != nil {
			return &protocols.Error{Kind: protocols.KindOther, Op: "send batch", Err: fmt.Errorf("encoding message %d: %w", i, err)}
		}
		batch.Data = append(batch.Data, b)
		body += len(m.Body)
	}
	return c.send(ctx, "send batch", batch, body)
}

func (c *Client) send(ctx context.Context, op string, w *goamqp.Message, payload int) error {
	cn, release, err := c.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer release()
	if err := cn.events.Send(ctx, w, nil); err != nil {
		return cn.opErr(ctx, op, err)
	}
	c.ledger.AddPayload(network.Up, network.ClassTelemetry, payload)
	return nil
}

// GetTwin asks for the device's twin. The first twin request attaches the
// twin links, as the Node SDK does.
func (c *Client) GetTwin(ctx context.Context) ([]byte, error) {
	t, err := c.twin(ctx, "twin get", iothub.TwinOpGet, "", []byte(twinGetBody), 0)
	if err != nil {
		return nil, err
	}
	c.ledger.AddPayload(network.Down, network.ClassTwin, len(t.body))
	return t.body, nil
}

// PatchReported sends a reported-properties patch and returns the new
// reported version.
func (c *Client) PatchReported(ctx context.Context, patch []byte) (int64, error) {
	t, err := c.twin(ctx, "twin patch", iothub.TwinOpPatch, iothub.TwinResourceReported, patch, len(patch))
	if err != nil {
		return 0, err
	}
	return t.version, nil
}

func (c *Client) twin(ctx context.Context, op, operation, resource string, body []byte, payload int) (twinMessage, error) {
	cn, release, err := c.acquire(ctx, op)
	if err != nil {
		return twinMessage{}, err
	}
	defer release()
	return cn.twin(ctx, op, operation, resource, body, payload)
}

// Close ends the connection and stops the client's goroutines. The client
// may connect again afterwards.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	cn := c.live
	c.live = nil
	c.disarmLocked()
	cancel, w := c.cancel, c.worker
	c.cancel, c.worker = nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	// A renewal under way sees the cancelled context, abandons its put-token
	// or dial and shuts down what it opened.
	c.wg.Wait()
	if cn != nil {
		cn.shutdown()
	}
	if w != nil {
		w.Stop()
	}
	return nil
}
