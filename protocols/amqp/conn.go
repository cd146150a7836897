package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/coder/websocket"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
	"github.com/catmsim/catmsim/protocols"
)

const (
	// maxFrameSize is the frame size the device accepts: the .NET SDK's 64 KiB.
	maxFrameSize = 65536
	// c2dCredit is how many cloud-to-device messages the device lets the hub
	// send ahead of its handler; go-amqp grants more once that many are
	// settled.
	c2dCredit = 10
	// cbsCredit, twinCredit and methodCredit are the receivers' credit for
	// answers and requests the hub sends pre-settled. go-amqp grants credit
	// again once that much is used, so the connect's put-token answer costs
	// no flow and later flows on $cbs go with the renewals that used it.
	cbsCredit    = 10
	twinCredit   = 10
	methodCredit = 10
	// closeWait bounds how long tearing a connection down waits for go-amqp's
	// goroutines, which end once the socket is closed.
	closeWait = 5 * time.Second
	// twinGetBody is the body of a twin GET and of the desired-updates PUT: one
	// space, as the Node and C SDKs send.
	twinGetBody = " "
)

// conn is one AMQP connection of a client with the links on it. dial opens,
// authenticates and attaches it; operations use it until it is lost or shut
// down, and it is never reused.
type conn struct {
	cl       *Client
	ac       *goamqp.Conn
	sess     *goamqp.Session
	wsCancel context.CancelFunc

	cbsMu  sync.Mutex // one put-token at a time: answers are read in turn
	cbsSnd *goamqp.Sender
	cbsRcv *goamqp.Receiver

	events    *goamqp.Sender
	c2d       *goamqp.Receiver
	methodRcv *goamqp.Receiver
	methodSnd *goamqp.Sender

	twinMu  sync.Mutex // attaching the twin links
	twinSnd *goamqp.Sender
	twinRcv *goamqp.Receiver

	pmu     sync.Mutex
	pending map[string]chan twinMessage

	lmu   sync.Mutex
	links []interface{ Close(context.Context) error }

	// ctx ends when the connection is lost or shut down; the receive loops and
	// the settlements of their messages run under it.
	ctx      context.Context
	cancel   context.CancelFunc
	lost     chan struct{}
	lostOnce sync.Once
	lostErr  *protocols.Error
	wg       sync.WaitGroup // the watcher and the receive loops
}

// dial opens a connection: the socket over the device's link, TLS (and the
// WebSocket), AMQP open with the configured SASL, the session, the CBS
// put-token, and the links the registered handlers need. A renewal's
// connection is counted by the ledger as token renewal.
func (c *Client) dial(ctx context.Context, token string, renewal bool) (*conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultConnectTimeout)
		defer cancel()
	}
	dctx := ctx
	if renewal {
		dctx = network.WithConnReason(ctx, network.ReasonTokenRenewal)
	}
	cn := &conn{cl: c, lost: make(chan struct{}), pending: map[string]chan twinMessage{}}
	cn.ctx, cn.cancel = context.WithCancel(context.Background())
	nc, err := cn.open(dctx)
	if err != nil {
		cn.cancel()
		return nil, connectError(ctx, err)
	}
	opts := &goamqp.ConnOptions{
		ContainerID:  c.ids.uuid().String(),
		HostName:     c.cfg.HostName,
		IdleTimeout:  c.idle,
		MaxFrameSize: maxFrameSize,
	}
	switch c.auth {
	case protocols.AMQPAuthCBS:
		opts.SASLType = goamqp.SASLTypeAnonymous()
	case protocols.AMQPAuthPlain:
		opts.SASLType = goamqp.SASLTypePlain(iothub.FormatSASLPlainUsername(c.cfg.Identity, iothub.HubName(c.cfg.HostName)), token)
	case protocols.AMQPAuthExternal:
		opts.SASLType = goamqp.SASLTypeExternal("")
	}
	cn.ac, err = goamqp.NewConn(ctx, nc, opts)
	if err != nil {
		_ = nc.Close()
		cn.shutdown()
		return nil, connectError(ctx, err)
	}
	if err := cn.setUp(ctx, token); err != nil {
		cn.shutdown()
		if ctx.Err() != nil {
			return nil, contextError(ctx, err)
		}
		return nil, err
	}
	cn.wg.Add(1)
	go cn.watch()
	return cn, nil
}

// open dials the socket the AMQP connection runs over: TLS, or TLS and a
// WebSocket with subprotocol AMQPWSB10.
func (cn *conn) open(ctx context.Context) (net.Conn, error) {
	c := cn.cl
	if !c.ws {
		return c.cfg.Dialer.DialTLS(ctx, "tcp", c.addr, c.tls, c.classifier())
	}
	tr := c.cfg.Dialer.HTTPTransport(c.tls, func() network.Classifier { return classify.NewWebSocket(c.classifier()) })
	ws, _, err := websocket.Dial(ctx, "wss://"+c.addr+iothub.WebSocketPath, &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		Subprotocols: []string{iothub.SubprotocolAMQP},
	})
	tr.CloseIdleConnections()
	if err != nil {
		return nil, fmt.Errorf("opening the AMQP WebSocket to %s: %w", c.addr, err)
	}
	if ws.Subprotocol() != iothub.SubprotocolAMQP {
		_ = ws.Close(websocket.StatusProtocolError, "subprotocol "+iothub.SubprotocolAMQP+" required")
		return nil, fmt.Errorf("the server at %s did not accept the WebSocket subprotocol %q", c.addr, iothub.SubprotocolAMQP)
	}
	// The hub may put many frames in one WebSocket message; NetConn streams
	// them, so the size of a message costs no memory here.
	ws.SetReadLimit(-1)
	// The NetConn's context bounds the connection's life, not the dial's.
	wctx, cancel := context.WithCancel(context.Background())
	cn.wsCancel = cancel
	return websocket.NetConn(wctx, ws, websocket.MessageBinary), nil
}

// connectError classifies a failed dial or AMQP open.
func connectError(ctx context.Context, err error) error {
	switch {
	case saslRefused(err):
		return &protocols.Error{Kind: protocols.KindUnauthorized, Op: "connect", Err: fmt.Errorf("the hub refused the SASL credentials: %w", err)}
	case ctx.Err() != nil:
		return contextError(ctx, err)
	}
	pe, _ := classifyErr("connect", err)
	if pe.Kind == protocols.KindOther {
		pe.Kind = protocols.KindDisconnected
	}
	return pe
}

// contextError is a connect abandoned for its context: a timeout at the
// deadline, else cancelled by the caller.
func contextError(ctx context.Context, err error) error {
	pe, _ := classifyErr("connect", ctx.Err())
	pe.Err = fmt.Errorf("%w: %v", ctx.Err(), err)
	return pe
}

// saslRefused recognises go-amqp's report of a SASL outcome other than ok,
// which it gives only as text.
func saslRefused(err error) bool {
	return strings.Contains(err.Error(), "auth failed with code")
}

// setUp begins the session and attaches the links: $cbs and the put-token
// first when the device authenticates there, then telemetry, and what the
// registered handlers need.
func (cn *conn) setUp(ctx context.Context, token string) error {
	c := cn.cl
	var err error
	if cn.sess, err = cn.ac.NewSession(ctx, nil); err != nil {
		return linkErr("connect", err)
	}
	if c.auth == protocols.AMQPAuthCBS {
		if cn.cbsSnd, err = cn.sender(ctx, iothub.AMQPCBSAddress, &goamqp.SenderOptions{Properties: c.linkProps(false, false, "")}); err != nil {
			return linkErr("connect", err)
		}
		if cn.cbsRcv, err = cn.receiver(ctx, iothub.AMQPCBSAddress, &goamqp.ReceiverOptions{
			TargetAddress: iothub.CBSReplyTo, Credit: cbsCredit, Properties: c.linkProps(false, false, ""),
		}); err != nil {
			return linkErr("connect", err)
		}
		if err := cn.putToken(ctx, "connect", token); err != nil {
			return err
		}
	}
	id := c.cfg.Identity
	unsettled := goamqp.SenderSettleModeUnsettled
	if cn.events, err = cn.sender(ctx, iothub.AMQPPath(iothub.AMQPNodeEvents, id), &goamqp.SenderOptions{
		SettlementMode: &unsettled, Properties: c.linkProps(false, true, ""),
	}); err != nil {
		return linkErr("connect", err)
	}
	onC2D, onMethod, onDesired, _ := c.handlers()
	if onC2D != nil {
		if cn.c2d, err = cn.receiver(ctx, iothub.AMQPPath(iothub.AMQPNodeDeviceBound, id), &goamqp.ReceiverOptions{
			Credit: c2dCredit, Properties: c.linkProps(false, false, ""),
		}); err != nil {
			return linkErr("connect", err)
		}
		cn.loop(cn.c2d, cn.receiveC2D)
	}
	if onMethod != nil {
		corr := "methods:" + c.ids.uuid().String()
		settled := goamqp.SenderSettleModeSettled
		first := goamqp.ReceiverSettleModeFirst
		if cn.methodRcv, err = cn.receiver(ctx, iothub.AMQPPath(iothub.AMQPNodeMethods, id), &goamqp.ReceiverOptions{
			Credit: methodCredit, RequestedSenderSettleMode: &settled, SettlementMode: &first, Properties: c.linkProps(true, false, corr),
		}); err != nil {
			return linkErr("connect", err)
		}
		if cn.methodSnd, err = cn.sender(ctx, iothub.AMQPPath(iothub.AMQPNodeMethods, id), &goamqp.SenderOptions{
			SettlementMode: &settled, RequestedReceiverSettleMode: &first, Properties: c.linkProps(true, true, corr),
		}); err != nil {
			return linkErr("connect", err)
		}
		cn.loop(cn.methodRcv, cn.receiveMethod)
	}
	if onDesired != nil {
		if err := cn.attachTwin(ctx); err != nil {
			return err
		}
		if _, err := cn.twin(ctx, "twin subscribe", iothub.TwinOpPut, iothub.TwinResourceDesired, []byte(twinGetBody), 0); err != nil {
			return err
		}
	}
	return nil
}

// linkProps are the properties of a device link: the client version on every
// link, the API version on the methods and twin links (as the Node SDK
// sends them), the model id on the links the device sends on (as the .NET SDK
// does), and the channel correlation id that pairs a methods or twin link
// with its twin.
func (c *Client) linkProps(api, sends bool, corr string) map[string]any {
	p := map[string]any{}
	if c.cfg.ClientType != "" {
		p[iothub.LinkPropClientVersion] = c.cfg.ClientType
	}
	if api {
		p[iothub.LinkPropAPIVersion] = c.cfg.APIVersionOrDefault()
	}
	if sends && c.cfg.ModelID != "" {
		p[iothub.LinkPropModelID] = c.cfg.ModelID
	}
	if corr != "" {
		p[iothub.LinkPropChannelCorrelationID] = corr
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

// sender attaches a sender link named by a uuid and remembers it for
// shutdown.
func (cn *conn) sender(ctx context.Context, target string, o *goamqp.SenderOptions) (*goamqp.Sender, error) {
	o.Name = cn.cl.ids.uuid().String()
	s, err := cn.sess.NewSender(ctx, target, o)
	if err == nil {
		cn.lmu.Lock()
		cn.links = append(cn.links, s)
		cn.lmu.Unlock()
	}
	return s, err
}

// receiver attaches a receiver link named by a uuid and remembers it for
// shutdown.
func (cn *conn) receiver(ctx context.Context, source string, o *goamqp.ReceiverOptions) (*goamqp.Receiver, error) {
	o.Name = cn.cl.ids.uuid().String()
	r, err := cn.sess.NewReceiver(ctx, source, o)
	if err == nil {
		cn.lmu.Lock()
		cn.links = append(cn.links, r)
		cn.lmu.Unlock()
	}
	return r, err
}

// linkErr classifies a failed begin or attach; a refusal carries the hub's
// condition (unauthorized-access when no token covers the device).
func linkErr(op string, err error) error {
	pe, _ := classifyErr(op, err)
	return pe
}

// putToken puts a SAS token on $cbs and waits for the hub's answer, which
// must carry status 200 (the Node SDK takes nothing else).
func (cn *conn) putToken(ctx context.Context, op, token string) error {
	cn.cbsMu.Lock()
	defer cn.cbsMu.Unlock()
	c := cn.cl
	id := c.ids.uuid().String()
	replyTo, to := iothub.CBSReplyTo, iothub.AMQPCBSAddress
	req := &goamqp.Message{
		Properties: &goamqp.MessageProperties{MessageID: id, ReplyTo: &replyTo, To: &to},
		ApplicationProperties: map[string]any{
			iothub.CBSOperation: iothub.CBSPutToken,
			iothub.CBSType:      iothub.CBSTokenTypeSAS,
			iothub.CBSName:      c.cbsName,
		},
		Value: token,
	}
	if err := cn.cbsSnd.Send(ctx, req, nil); err != nil {
		return cn.opErr(ctx, op, err)
	}
	for {
		m, err := cn.cbsRcv.Receive(ctx, nil)
		if err != nil {
			return cn.opErr(ctx, op, err)
		}
		_ = cn.cbsRcv.AcceptMessage(ctx, m)
		r, err := decodeCBS(m)
		if err != nil || r.corr != id {
			continue // an answer to an earlier request that was given up on
		}
		if r.status != 200 {
			return statusError(op, r.status, []byte(r.desc))
		}
		return nil
	}
}

// opErr classifies an operation's failure. An error that means the link or
// the connection is gone also ends the connection, which the client reports
// through OnState: nothing on it can be trusted any more.
func (cn *conn) opErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		// go-amqp reports a send abandoned for the context as a credit
		// problem; the caller's deadline is the cause.
		return protocols.Wrap(op, ctx.Err())
	}
	pe, lost := classifyErr(op, err)
	if lost {
		cn.fail(&protocols.Error{Kind: pe.Kind, Op: "connection", Err: fmt.Errorf("the hub ended the link or the connection: %w", pe.Err)})
	}
	return pe
}

// fail marks the connection lost for err, once, and tells the client; the
// client shuts it down.
func (cn *conn) fail(err *protocols.Error) {
	first := false
	cn.lostOnce.Do(func() {
		cn.lostErr = err
		close(cn.lost)
		first = true
	})
	if first {
		cn.cl.lost(cn, err)
	}
}

// lostError is why the connection was lost, once it was.
func (cn *conn) lostError() *protocols.Error {
	select {
	case <-cn.lost:
		return cn.lostErr
	default:
		return nil
	}
}

// watch notices the end of the AMQP connection: a close from the hub, a
// dropped socket, a missed heartbeat.
func (cn *conn) watch() {
	defer cn.wg.Done()
	select {
	case <-cn.ac.Done():
		if cn.ctx.Err() == nil {
			err := cn.ac.Err()
			if err == nil {
				err = errors.New("the connection closed")
			}
			pe, _ := classifyErr("connection", err)
			if pe.Kind == protocols.KindOther {
				pe.Kind = protocols.KindDisconnected
			}
			cn.fail(&protocols.Error{Kind: pe.Kind, Op: "connection", Err: fmt.Errorf("the hub closed the connection or it dropped: %w", pe.Err)})
		}
	case <-cn.ctx.Done():
	}
}

// loop runs a receiver until the connection ends, handing each message to
// handle. A receiver that ends while the connection should live (the hub
// detached it) ends the connection.
func (cn *conn) loop(r *goamqp.Receiver, handle func(*goamqp.Message)) {
	cn.wg.Add(1)
	go func() {
		defer cn.wg.Done()
		for {
			m, err := r.Receive(cn.ctx, nil)
			if err != nil {
				if cn.ctx.Err() == nil {
					pe, _ := classifyErr("receive", err)
					if pe.Kind == protocols.KindOther {
						pe.Kind = protocols.KindDisconnected
					}
					cn.fail(&protocols.Error{Kind: pe.Kind, Op: "connection", Err: fmt.Errorf("the hub ended a link the device receives on: %w", pe.Err)})
				}
				return
			}
			handle(m)
		}
	}()
}

// receiveC2D hands a cloud-to-device message to the device's handler on the
// worker and settles it with the handler's outcome: accepted completes it,
// released abandons it, rejected rejects it.
func (cn *conn) receiveC2D(m *goamqp.Message) {
	c := cn.cl
	msg := decodeC2D(m)
	c.ledger.AddPayload(network.Down, network.ClassC2D, len(msg.Body))
	onC2D, _, _, _ := c.handlers()
	w, life := c.runner()
	if onC2D == nil || w == nil || !w.Do(func() { cn.settleC2D(life, onC2D, msg, m) }) {
		// Nobody to decide: the hub gets the message back.
		_ = cn.c2d.ReleaseMessage(cn.ctx, m)
	}
}

func (cn *conn) settleC2D(life context.Context, h protocols.C2DHandler, msg *protocols.C2DMessage, m *goamqp.Message) {
	var err error
	switch o := h(life, msg); o {
	case protocols.Complete:
		err = cn.c2d.AcceptMessage(cn.ctx, m)
	case protocols.Abandon:
		err = cn.c2d.ReleaseMessage(cn.ctx, m)
	default:
		err = cn.c2d.RejectMessage(cn.ctx, m, nil)
	}
	if err != nil && cn.ctx.Err() == nil {
		_ = cn.opErr(cn.ctx, "c2d settle", err)
	}
}

// receiveMethod hands a direct-method call to the device's handler on the
// worker, which answers on the methods sender with the call's correlation id
// and the handler's status.
func (cn *conn) receiveMethod(m *goamqp.Message) {
	c := cn.cl
	r, err := decodeMethod(m)
	if err != nil {
		return // the hub times the call out
	}
	c.ledger.AddPayload(network.Down, network.ClassMethod, len(r.payload))
	_, onMethod, _, _ := c.handlers()
	w, life := c.runner()
	if onMethod != nil && w != nil {
		w.Do(func() { cn.answerMethod(life, onMethod, r) })
	}
}

func (cn *conn) answerMethod(life context.Context, h protocols.MethodHandler, r methodRequest) {
	status, resp := h(life, r.name, r.payload)
	if resp == nil {
		resp = []byte{}
	}
	out := &goamqp.Message{
		Properties:            &goamqp.MessageProperties{CorrelationID: r.corr},
		ApplicationProperties: map[string]any{iothub.AMQPPropMethodStatus: int32(status)},
		Data:                  [][]byte{resp},
	}
	if err := cn.methodSnd.Send(cn.ctx, out, nil); err != nil {
		if cn.ctx.Err() == nil {
			_ = cn.opErr(cn.ctx, "method response", err)
		}
		return
	}
	cn.cl.ledger.AddPayload(network.Up, network.ClassMethod, len(resp))
}

// attachTwin attaches the twin receiver, then its sender, paired by a
// channel correlation id, the first time the twin is used.
func (cn *conn) attachTwin(ctx context.Context) error {
	cn.twinMu.Lock()
	defer cn.twinMu.Unlock()
	if cn.twinSnd != nil {
		return nil
	}
	c := cn.cl
	id := c.cfg.Identity
	corr := "twin:" + c.ids.uuid().String()
	settled := goamqp.SenderSettleModeSettled
	first := goamqp.ReceiverSettleModeFirst
	rcv, err := cn.receiver(ctx, iothub.AMQPPath(iothub.AMQPNodeTwin, id), &goamqp.ReceiverOptions{
		Credit: twinCredit, RequestedSenderSettleMode: &settled, SettlementMode: &first, Properties: c.linkProps(true, false, corr),
	})
	if err != nil {
		return cn.opErr(ctx, "twin attach", err)
	}
	snd, err := cn.sender(ctx, iothub.AMQPPath(iothub.AMQPNodeTwin, id), &goamqp.SenderOptions{
		SettlementMode: &settled, RequestedReceiverSettleMode: &first, Properties: c.linkProps(true, true, corr),
	})
	if err != nil {
		return cn.opErr(ctx, "twin attach", err)
	}
	cn.twinRcv, cn.twinSnd = rcv, snd
	cn.loop(rcv, cn.receiveTwin)
	return nil
}

// receiveTwin routes a message on the twin receiver: an answer to the
// request waiting for its correlation id, or a desired-properties update to
// the device's handler.
func (cn *conn) receiveTwin(m *goamqp.Message) {
	t, err := decodeTwin(m)
	if err != nil {
		return
	}
	c := cn.cl
	if t.hasCorr {
		cn.pmu.Lock()
		ch := cn.pending[t.corr]
		cn.pmu.Unlock()
		if ch != nil {
			select {
			case ch <- t:
			default:
			}
		}
		return
	}
	c.ledger.AddPayload(network.Down, network.ClassTwin, len(t.body))
	_, _, onDesired, _ := c.handlers()
	w, _ := c.runner()
	if onDesired != nil && w != nil {
		w.Do(func() { onDesired(t.body, t.version) })
	}
}

// twin sends one twin request, whose body holds payload bytes of the
// device's, and waits for its answer: the status must be 2xx, else the hub's
// error comes back typed.
func (cn *conn) twin(ctx context.Context, op, operation, resource string, body []byte, payload int) (twinMessage, error) {
	if err := cn.attachTwin(ctx); err != nil {
		return twinMessage{}, err
	}
	corr := cn.cl.ids.uuid().String()
	ch := make(chan twinMessage, 1)
	cn.pmu.Lock()
	cn.pending[corr] = ch
	cn.pmu.Unlock()
	defer func() {
		cn.pmu.Lock()
		delete(cn.pending, corr)
		cn.pmu.Unlock()
	}()
	annotations := goamqp.Annotations{iothub.AnnotationOperation: operation}
	if resource != "" {
		annotations[iothub.AnnotationResource] = resource
	}
	req := &goamqp.Message{
		Annotations: annotations,
		Properties:  &goamqp.MessageProperties{CorrelationID: corr},
		Data:        [][]byte{body},
	}
	if err := cn.twinSnd.Send(ctx, req, nil); err != nil {
		return twinMessage{}, cn.opErr(ctx, op, err)
	}
	cn.cl.ledger.AddPayload(network.Up, network.ClassTwin, payload)
	select {
	case t := <-ch:
		if t.status < 200 || t.status > 299 {
			return twinMessage{}, statusError(op, t.status, t.body)
		}
		return t, nil
	case <-cn.lost:
		return twinMessage{}, &protocols.Error{Kind: protocols.KindDisconnected, Op: op, Err: fmt.Errorf("the connection was lost before the answer: %w", cn.lostErr)}
	case <-ctx.Done():
		return twinMessage{}, protocols.Wrap(op, ctx.Err())
	}
}

// shutdown closes the connection and waits for every goroutine that served
// it: the watcher and receive loops, and go-amqp's own, which end once the
// socket is closed (closing a link or session of a closed connection only
// waits for that).
func (cn *conn) shutdown() {
	cn.cancel()
	if cn.ac != nil {
		_ = cn.ac.Close()
	}
	cn.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	cn.lmu.Lock()
	links := cn.links
	cn.lmu.Unlock()
	for _, l := range links {
		_ = l.Close(ctx)
	}
	if cn.sess != nil {
		_ = cn.sess.Close(ctx)
	}
	if cn.wsCancel != nil {
		cn.wsCancel()
	}
}
