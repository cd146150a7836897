package hub

import (
	"bufio"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// amqpOptions are the AMQP front end's limits and timings. The defaults are
// IoT Hub's where they are known (spec §3.2) and the emulator's choices where
// they are not (spec §10.6); tests shorten the timings.
type amqpOptions struct {
	// maxFrameSize, channelMax and idleTimeout are what the hub's open
	// advertises: 65536 bytes, 8191 channels, 240 s.
	maxFrameSize uint32
	channelMax   uint16
	idleTimeout  time.Duration
	// handleMax is the highest link handle a session may use.
	handleMax uint32
	// connectTimeout bounds the time from the first byte to the peer's open.
	connectTimeout time.Duration
	// maxLinks bounds the links of one connection, maxClaims the tokens it
	// holds.
	maxLinks, maxClaims int
	// credit is the link credit the hub grants a peer that sends on a link,
	// and incomingWindow the transfers a session accepts before a flow.
	credit, incomingWindow uint32
	// maxMessage bounds one incoming delivery: IoT Hub's 256 KB message
	// limit is checked on the decoded message and answered with a
	// rejection; this only keeps a hostile delivery from costing memory.
	maxMessage int
	// maxPending bounds the bytes queued for a peer that does not read;
	// maxHeld the messages waiting for a link's credit; maxUnsettled the
	// deliveries a link has out that the peer has not settled (beyond it
	// messages wait as for credit).
	maxPending, maxHeld, maxUnsettled int
	// c2dWindow caps the cloud-to-device messages in flight on one link,
	// whatever credit the device grants: a device cannot hold more than its
	// queue depth.
	c2dWindow int
	// feedbackPoll is how often a feedback link with credit looks for new
	// feedback records.
	feedbackPoll time.Duration
	// closeGrace is how long a closing connection may take to write its last
	// frames.
	closeGrace time.Duration
}

func defaultAMQPOptions() amqpOptions {
	return amqpOptions{
		maxFrameSize:   65536,
		channelMax:     8191,
		idleTimeout:    240 * time.Second,
		handleMax:      255,
		connectTimeout: 30 * time.Second,
		maxLinks:       8192,
		maxClaims:      1024,
		credit:         100,
		incomingWindow: 5000,
		maxMessage:     1 << 20,
		maxPending:     8 << 20,
		maxHeld:        256,
		maxUnsettled:   1024,
		c2dWindow:      iothub.C2DQueueDepth,
		feedbackPoll:   time.Second,
		closeGrace:     5 * time.Second,
	}
}

// The SASL mechanisms the hub offers (spec §3.1): MSSBCBS and ANONYMOUS
// defer authentication to $cbs, PLAIN carries a SAS token, EXTERNAL takes the
// TLS client certificate.
var amqpMechanisms = []amqpwire.Symbol{"MSSBCBS", "ANONYMOUS", "PLAIN", "EXTERNAL"}

// amqpFront is the AMQP 1.0 front end. Each connection has one goroutine of
// its own, the reader, which runs in the listener's handler; a writer
// goroutine exists only while a connection has frames queued, and timers,
// not goroutines, keep idle connections alive and close silent ones.
type amqpFront struct {
	h *Hub

	mu      sync.Mutex
	opts    amqpOptions // copied by each new connection
	conns   map[*amqpConn]struct{}
	closed  bool
	writers sync.WaitGroup
}

func newAMQPFront(h *Hub, opts amqpOptions) *amqpFront {
	return &amqpFront{h: h, opts: opts, conns: map[*amqpConn]struct{}{}}
}

// serve runs one AMQP connection until it ends. certs are the TLS client
// certificates the peer presented, if any.
func (f *amqpFront) serve(nc net.Conn, proto Protocol, certs []*x509.Certificate) {
	f.mu.Lock()
	opts := f.opts
	f.mu.Unlock()
	c := &amqpConn{
		f: f, h: f.h, opts: &opts, nc: nc, proto: proto, certs: certs,
		remote:   remoteAddr(nc),
		sessions: map[uint16]*amqpSession{},
		devices:  map[iothub.Identity]*amqpDevice{},
	}
	c.fr = amqpwire.NewFrameReader(bufio.NewReaderSize(nc, 1024), opts.maxFrameSize)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		_ = nc.Close()
		return
	}
	f.conns[c] = struct{}{}
	f.mu.Unlock()
	err := c.run()
	c.shutdown(err)
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func remoteAddr(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// close ends every connection and waits for their writers; the readers are
// the listeners' goroutines, which the server waits for.
func (f *amqpFront) close() {
	f.mu.Lock()
	f.closed = true
	conns := make([]*amqpConn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
	f.writers.Wait()
}

// amqpConn is one AMQP connection. The reader goroutine handles every frame
// the peer sends; hub callbacks (C2D deliveries, method calls, desired
// updates, a token's expiry) and timers run on other goroutines. All of them
// share the connection's state under mu, and none holds mu while it calls the
// hub, because the hub calls back into the connection. Methods named
// …Locked need mu held.
type amqpConn struct {
	f      *amqpFront
	h      *Hub
	opts   *amqpOptions
	nc     net.Conn
	fr     *amqpwire.FrameReader
	proto  Protocol
	remote string
	certs  []*x509.Certificate
	reads  atomic.Uint64 // frames read, for the idle check

	mu        sync.Mutex
	out       []byte // frames waiting for the writer
	spare     []byte
	writing   bool // a writer goroutine is running
	stopped   bool // nothing more is queued: the connection is over
	closing   bool // the socket closes once the queue is written
	closeSent bool
	writes    uint64 // frames queued, for the heartbeat
	peerMax   uint32 // the largest frame the hub sends
	chanMax   uint16
	sessions  map[uint16]*amqpSession
	links     int
	auth      amqpAuth
	devices   map[iothub.Identity]*amqpDevice
	feedback  []*amqpLink // service feedback links
	timers    amqpTimers
}

type amqpTimers struct {
	heartbeat, idle, feedback, service, plain *time.Timer
	beatEvery                                 time.Duration
	lastWrites, lastReads                     uint64
	quiet                                     int
}

// errAMQPClosed ends the reader after the connection was closed on purpose.
var errAMQPClosed = errors.New("amqp connection closed")

// run reads the protocol headers, the optional SASL exchange and the open,
// then every frame until the connection ends.
func (c *amqpConn) run() error {
	_ = c.nc.SetDeadline(time.Now().Add(c.opts.connectTimeout))
	if err := c.handshake(); err != nil {
		return err
	}
	if err := c.open(); err != nil {
		return err
	}
	_ = c.nc.SetDeadline(time.Time{})
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.failRead(err)
			return err
		}
		c.reads.Add(1)
		if f.Body == nil {
			continue // a heartbeat
		}
		if f.Type != amqpwire.FrameAMQP {
			c.fail(amqpwire.ConditionFramingError, fmt.Sprintf("a %s frame after the connection opened", f.Type))
			return errAMQPClosed
		}
		p, payload, err := f.Performative()
		if err != nil {
			c.fail(amqpwire.ErrorCondition(err), err.Error())
			return err
		}
		if err := c.handle(f.Channel, p, payload); err != nil {
			return err
		}
	}
}

// failRead answers a frame the codec refused (too large, malformed header)
// with the condition the specification names; a closed socket needs no answer.
func (c *amqpConn) failRead(err error) {
	if cond := amqpwire.ErrorCondition(err); cond != "" {
		c.fail(cond, err.Error())
	}
}

// fail closes the connection with an error condition.
func (c *amqpConn) fail(cond amqpwire.Symbol, desc string) {
	c.mu.Lock()
	c.closeLocked(cond, desc)
	c.mu.Unlock()
	c.h.log.Info("closing AMQP connection", "remote", c.remote, "protocol", string(c.proto), "condition", string(cond), "reason", desc)
}

// handle dispatches one performative. A non-nil error ends the connection.
func (c *amqpConn) handle(ch uint16, p amqpwire.Performative, payload []byte) error {
	switch p := p.(type) {
	case *amqpwire.Begin:
		return c.begin(ch, p)
	case *amqpwire.Attach:
		return c.attach(ch, p)
	case *amqpwire.Flow:
		return c.flow(ch, p)
	case *amqpwire.Transfer:
		return c.transfer(ch, p, payload)
	case *amqpwire.Disposition:
		return c.disposition(ch, p)
	case *amqpwire.Detach:
		return c.detach(ch, p)
	case *amqpwire.End:
		return c.end(ch, p)
	case *amqpwire.Close:
		c.mu.Lock()
		c.closeLocked("", "")
		c.mu.Unlock()
		if p.Error != nil {
			c.h.log.Info("AMQP peer closed with an error", "remote", c.remote, "error", p.Error.Error())
		}
		return errAMQPClosed
	case *amqpwire.Open:
		c.fail(amqpwire.ConditionIllegalState, "a second open on an open connection")
		return errAMQPClosed
	}
	c.fail(amqpwire.ConditionFramingError, fmt.Sprintf("unexpected %T", p))
	return errAMQPClosed
}

// handshake reads the protocol header, runs SASL when the peer asks for it,
// and answers the AMQP header. Both the plain header (Node and .NET SDKs) and
// the SASL header (C SDK, third-party clients) are accepted (spec §3.1).
func (c *amqpConn) handshake() error {
	h, err := c.fr.ReadProtocolHeader()
	if err != nil {
		c.refuseHeader(err)
		return err
	}
	if h.ID == amqpwire.ProtocolSASL {
		if err := c.sasl(); err != nil {
			return err
		}
		if h, err = c.fr.ReadProtocolHeader(); err != nil {
			c.refuseHeader(err)
			return err
		}
		if h.ID != amqpwire.ProtocolAMQP {
			err := fmt.Errorf("%w: protocol id %d after SASL; want the AMQP header", amqpwire.ErrProtocolHeader, h.ID)
			c.refuseHeader(err)
			return err
		}
	}
	hdr := amqpwire.ProtocolAMQP.Header().Bytes()
	c.mu.Lock()
	c.rawLocked(hdr[:])
	c.mu.Unlock()
	return nil
}

// refuseHeader answers an unsupported protocol header with the one the hub
// prefers, as the specification asks, and closes (spec §2.2).
func (c *amqpConn) refuseHeader(err error) {
	if !errors.Is(err, amqpwire.ErrProtocolHeader) {
		return
	}
	hdr := amqpwire.ProtocolSASL.Header().Bytes()
	c.mu.Lock()
	c.rawLocked(hdr[:])
	c.closing = true
	c.closeSent = true
	c.flushLocked()
	c.mu.Unlock()
	c.h.log.Info("AMQP protocol header refused", "remote", c.remote, "error", err.Error())
}

// open reads the peer's open and answers with the hub's: max-frame-size
// 65536, channel-max 8191, idle-time-out 240 s (spec §3.2; the values the
// hub really sends are unverified, §10.6).
func (c *amqpConn) open() error {
	var f amqpwire.Frame
	var err error
	for {
		if f, err = c.fr.ReadFrame(); err != nil {
			c.failRead(err)
			return err
		}
		if f.Body != nil {
			break
		}
	}
	p, _, err := f.Performative()
	if err != nil {
		c.fail(amqpwire.ErrorCondition(err), err.Error())
		return err
	}
	o, ok := p.(*amqpwire.Open)
	if !ok || f.Channel != 0 {
		c.fail(amqpwire.ConditionFramingError, fmt.Sprintf("the first frame must be open on channel 0, not %T on channel %d", p, f.Channel))
		return errAMQPClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peerMax = max(amqpwire.MinMaxFrameSize, min(o.MaxFrameSize, c.opts.maxFrameSize))
	c.chanMax = min(o.ChannelMax, c.opts.channelMax)
	c.frameLocked(amqpwire.FrameAMQP, 0, &amqpwire.Open{
		ContainerID:  "catmsim-" + newGUID(),
		Hostname:     c.h.HostName(),
		MaxFrameSize: c.opts.maxFrameSize,
		ChannelMax:   c.opts.channelMax,
		IdleTimeout:  uint32(min(c.opts.idleTimeout.Milliseconds(), math.MaxUint32)),
	}, nil)
	c.startTimersLocked(time.Duration(o.IdleTimeout) * time.Millisecond)
	return nil
}

// startTimersLocked arms the heartbeat (empty frames often enough for the
// peer's idle-time-out) and the hub's own idle check.
func (c *amqpConn) startTimersLocked(peerIdle time.Duration) {
	if peerIdle > 0 {
		// A tick that finds nothing written since the previous one sends an
		// empty frame, so the longest silence is half the peer's timeout.
		c.timers.beatEvery = max(peerIdle/4, 10*time.Millisecond)
		c.timers.heartbeat = time.AfterFunc(c.timers.beatEvery, c.heartbeat)
	}
	if c.opts.idleTimeout > 0 {
		c.timers.idle = time.AfterFunc(c.opts.idleTimeout/2, c.idleCheck)
	}
}

func (c *amqpConn) heartbeat() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.closeSent {
		return
	}
	if c.writes == c.timers.lastWrites {
		c.frameLocked(amqpwire.FrameAMQP, 0, nil, nil)
	}
	c.timers.lastWrites = c.writes
	c.timers.heartbeat.Reset(c.timers.beatEvery)
}

// idleCheck closes a peer that sent nothing for the hub's idle-time-out: two
// checks half a timeout apart that both find no frame read.
func (c *amqpConn) idleCheck() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.closeSent {
		return
	}
	r := c.reads.Load()
	if r == c.timers.lastReads {
		c.timers.quiet++
	} else {
		c.timers.quiet = 0
	}
	c.timers.lastReads = r
	if c.timers.quiet >= 2 {
		c.closeLocked(amqpwire.ConditionResourceLimitExceeded, fmt.Sprintf("no frame for the hub's idle-time-out of %s", c.opts.idleTimeout))
		c.h.log.Info("closing silent AMQP connection", "remote", c.remote, "idle", c.opts.idleTimeout.String())
		return
	}
	c.timers.idle.Reset(c.opts.idleTimeout / 2)
}

// frameLocked queues one frame. Nothing is queued once the connection sent
// its close or stopped.
func (c *amqpConn) frameLocked(typ amqpwire.FrameType, ch uint16, p amqpwire.Performative, payload []byte) {
	if c.stopped || c.closeSent {
		return
	}
	out, err := amqpwire.AppendFrame(c.out, typ, ch, p, payload)
	if err != nil {
		// The hub's own frames always encode; a failure is a bug, and the
		// peer is told rather than left waiting.
		c.h.log.Error("encoding an AMQP frame failed", "error", err.Error())
		c.closeLocked(amqpwire.ConditionInternalError, err.Error())
		return
	}
	c.out = out
	c.writes++
	c.flushLocked()
}

// rawLocked queues bytes that are not a frame: a protocol header.
func (c *amqpConn) rawLocked(b []byte) {
	if c.stopped {
		return
	}
	c.out = append(c.out, b...)
	c.flushLocked()
}

// closeLocked queues a close (with an error unless cond is empty) and closes
// the socket once it is written.
func (c *amqpConn) closeLocked(cond amqpwire.Symbol, desc string) {
	if c.closeSent || c.stopped {
		return
	}
	cl := &amqpwire.Close{}
	if cond != "" {
		cl.Error = &amqpwire.Error{Condition: cond, Description: desc}
	}
	c.frameLocked(amqpwire.FrameAMQP, 0, cl, nil)
	c.closeSent = true
	c.closing = true
	c.flushLocked()
}

// flushLocked starts the writer if there is something to write and none is
// running. A peer that lets more than maxPending bytes pile up is cut off.
func (c *amqpConn) flushLocked() {
	if c.stopped && !c.closing {
		return
	}
	if len(c.out) > c.opts.maxPending {
		c.h.log.Info("closing AMQP connection that does not read", "remote", c.remote, "queued", len(c.out))
		c.out = nil
		c.stopped, c.closing = true, false
		// A deadline in the past fails the blocked write and the read at
		// once, without waiting here as a TLS close might.
		_ = c.nc.SetDeadline(time.Now())
		return
	}
	if c.writing || len(c.out) == 0 {
		return
	}
	c.writing = true
	c.f.writers.Add(1)
	go c.drain()
}

// drain writes queued frames until none are left, then ends; a closing
// connection's socket is closed once its last frame is out.
func (c *amqpConn) drain() {
	defer c.f.writers.Done()
	for {
		c.mu.Lock()
		if len(c.out) == 0 {
			c.writing = false
			done := c.closing
			c.mu.Unlock()
			if done {
				_ = c.nc.Close()
			}
			return
		}
		buf := c.out
		c.out = c.spare[:0]
		c.spare = nil
		closing := c.closing
		c.mu.Unlock()
		if closing {
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.closeGrace))
		}
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		if cap(buf) <= 16<<10 {
			c.spare = buf[:0]
		}
		if err != nil {
			c.out = nil
			c.stopped = true
			c.writing = false
			c.mu.Unlock()
			_ = c.nc.Close()
			return
		}
		c.mu.Unlock()
	}
}

// stop ends the connection from the server's side: nothing more is queued
// and the socket closes, which ends the reader and any writer.
func (c *amqpConn) stop() {
	c.mu.Lock()
	c.stopped = true
	c.closing = false
	c.mu.Unlock()
	_ = c.nc.Close()
}

// shutdown runs when the reader ends: it releases what the connection held
// in the hub. Frames still being written are left to the writer.
func (c *amqpConn) shutdown(err error) {
	c.mu.Lock()
	for _, t := range []*time.Timer{c.timers.heartbeat, c.timers.idle, c.timers.feedback, c.timers.service, c.timers.plain} {
		if t != nil {
			t.Stop()
		}
	}
	devices := c.devices
	c.devices = map[iothub.Identity]*amqpDevice{}
	for _, s := range c.sessions {
		for _, l := range s.links {
			l.gone = true
		}
	}
	c.sessions = map[uint16]*amqpSession{}
	c.feedback = nil
	// What is queued still goes out (the peer may only have half-closed),
	// within the grace period; then the writer closes the socket.
	writing := c.writing
	c.closing = c.closing || writing
	c.stopped = true
	c.mu.Unlock()
	if writing {
		_ = c.nc.SetDeadline(time.Now().Add(c.opts.closeGrace))
	} else {
		_ = c.nc.Close()
	}
	for _, d := range devices {
		d.conn.Close()
	}
	if err != nil && !errors.Is(err, errAMQPClosed) && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.h.log.Debug("AMQP connection ended", "remote", c.remote, "error", err.Error())
	}
}

// amqpCondition is the AMQP error condition for a hub error.
func amqpCondition(err error) amqpwire.Symbol {
	var e *iothub.Error
	switch {
	case errors.As(err, &e):
		return amqpwire.Symbol(e.Code.AMQPCondition())
	case errors.Is(err, ErrConnClosed):
		return amqpwire.ConditionDetachForced
	}
	return amqpwire.ConditionInternalError
}

// amqpRejected is a rejected outcome for a hub error.
func amqpRejected(err error) amqpwire.Rejected {
	return amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpCondition(err), Description: err.Error()}}
}

func u32(n uint32) *uint32 { return &n }
