package hub

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// amqpSession is one session. The hub answers a begin on the same channel
// number it came on and uses the peer's handle numbers for its own end of
// each link, so one number names a session or a link in both directions.
type amqpSession struct {
	ch        uint16
	handleMax uint32
	links     map[uint32]*amqpLink
	ending    bool // the hub sent end; the peer's end is awaited

	// Incoming transfers: the next transfer-id expected and how many more
	// the peer may send before the hub widens the window again.
	nextIncomingID, incomingLeft uint32
	// Outgoing transfers: the hub's next transfer-id, what is left of the
	// peer's incoming window, and the next delivery-id (consecutive per
	// session, as rhea insists).
	nextOutgoingID, remoteIncoming, nextDeliveryID uint32
	queue                                          []*amqpOut          // deliveries waiting for the peer's window
	unsettled                                      map[uint32]*amqpOut // sent, not yet settled by the peer
}

// amqpLink is one link. role is the hub's role on it.
type amqpLink struct {
	s              *amqpSession
	handle         uint32
	name           string
	role           amqpwire.Role
	node           iothub.AMQPNode
	source, target string
	corr           string // com.microsoft:channel-correlation-id
	dev            *amqpDevice
	svc            bool
	// detached: the hub sent its detach (or refused the attach) and waits
	// for the peer's; gone: the connection let go of the link.
	detached, gone bool

	// The hub receives: credit it granted, deliveries counted, a delivery
	// arriving in several frames.
	credit, count uint32
	partial       *amqpIn

	// The hub sends: credit the peer granted, deliveries counted, messages
	// waiting for credit, unsettled deliveries.
	sndCredit, sndCount uint32
	held                []*amqpOut
	drain               bool
	tagSeq              uint32
	outstanding         int
}

// amqpIn is a delivery the peer sent.
type amqpIn struct {
	id      uint32
	settled bool
	format  uint32
	buf     []byte
	tooBig  bool
}

// amqpOut is a delivery the hub sends.
type amqpOut struct {
	link    *amqpLink
	tag     []byte
	settled bool
	payload []byte
	off     int
	started bool
	id      uint32
	lock    string // the C2D lock token of a cloud-to-device message
}

// failLocked closes the connection with an error and unlocks.
func (c *amqpConn) failLocked(cond amqpwire.Symbol, desc string) error {
	c.closeLocked(cond, desc)
	c.mu.Unlock()
	c.h.log.Info("closing AMQP connection", "remote", c.remote, "condition", string(cond), "reason", desc)
	return errAMQPClosed
}

// sessionLocked returns the session on ch, or closes the connection.
func (c *amqpConn) sessionLocked(ch uint16) (*amqpSession, error) {
	if s := c.sessions[ch]; s != nil {
		return s, nil
	}
	return nil, c.failLocked(amqpwire.ConditionNotAllowed, fmt.Sprintf("no session was begun on channel %d", ch))
}

func (c *amqpConn) begin(ch uint16, b *amqpwire.Begin) error {
	c.mu.Lock()
	switch {
	case b.RemoteChannel != nil:
		return c.failLocked(amqpwire.ConditionNotAllowed, "a begin answering one the hub never sent")
	case ch > c.chanMax:
		return c.failLocked(amqpwire.ConditionFramingError, fmt.Sprintf("channel %d is above the channel-max of %d", ch, c.chanMax))
	case c.sessions[ch] != nil:
		return c.failLocked(amqpwire.ConditionNotAllowed, fmt.Sprintf("channel %d already carries a session", ch))
	}
	s := &amqpSession{
		ch: ch, handleMax: min(b.HandleMax, c.opts.handleMax), links: map[uint32]*amqpLink{},
		nextIncomingID: b.NextOutgoingID, incomingLeft: c.opts.incomingWindow,
		remoteIncoming: b.IncomingWindow, unsettled: map[uint32]*amqpOut{},
	}
	c.sessions[ch] = s
	c.frameLocked(amqpwire.FrameAMQP, ch, &amqpwire.Begin{
		RemoteChannel:  &ch,
		IncomingWindow: c.opts.incomingWindow,
		OutgoingWindow: math.MaxUint32,
		HandleMax:      s.handleMax,
	}, nil)
	c.mu.Unlock()
	return nil
}

func (c *amqpConn) end(ch uint16, e *amqpwire.End) error {
	c.mu.Lock()
	s, err := c.sessionLocked(ch)
	if err != nil {
		return err
	}
	var post []func()
	for _, l := range s.links {
		post = append(post, c.removeLinkLocked(l))
	}
	c.links -= len(s.links)
	delete(c.sessions, ch)
	if !s.ending {
		c.frameLocked(amqpwire.FrameAMQP, ch, &amqpwire.End{}, nil)
	}
	c.mu.Unlock()
	run(post...)
	if e.Error != nil {
		c.h.log.Info("AMQP peer ended a session with an error", "remote", c.remote, "error", e.Error.Error())
	}
	return nil
}

// endLocked ends a session the peer misused; its links go with it.
func (c *amqpConn) endLocked(s *amqpSession, cond amqpwire.Symbol, desc string) []func() {
	var post []func()
	for _, l := range s.links {
		post = append(post, c.removeLinkLocked(l))
		l.detached = true
	}
	s.ending = true
	c.frameLocked(amqpwire.FrameAMQP, s.ch, &amqpwire.End{Error: &amqpwire.Error{Condition: cond, Description: desc}}, nil)
	c.h.log.Info("ending AMQP session", "remote", c.remote, "condition", string(cond), "reason", desc)
	return post
}

func run(fs ...func()) {
	for _, f := range fs {
		if f != nil {
			f()
		}
	}
}

// attach routes a new link by its address and the peer's role, authorizes
// it, and answers: an attach of its own, or a refusal (an attach with no
// terminus followed by a detach with the error, as the specification asks).
func (c *amqpConn) attach(ch uint16, a *amqpwire.Attach) error {
	c.mu.Lock()
	s, err := c.sessionLocked(ch)
	if err != nil {
		return err
	}
	if s.ending {
		c.mu.Unlock()
		return nil
	}
	if a.Handle > s.handleMax {
		return c.failLocked(amqpwire.ConditionFramingError, fmt.Sprintf("handle %d is above the session's handle-max of %d", a.Handle, s.handleMax))
	}
	if s.links[a.Handle] != nil {
		post := c.endLocked(s, amqpwire.ConditionHandleInUse, fmt.Sprintf("handle %d is in use", a.Handle))
		c.mu.Unlock()
		run(post...)
		return nil
	}
	l := &amqpLink{s: s, handle: a.Handle, name: a.Name, role: !a.Role}
	if a.Source != nil {
		l.source = a.Source.Address
	}
	if a.Target != nil {
		l.target = a.Target.Address
	}
	if v, ok := a.Properties.GetSymbol(iothub.LinkPropChannelCorrelationID); ok {
		l.corr, _ = iothub.AMQPValueText(v)
	}
	s.links[a.Handle] = l
	c.links++
	tooMany := c.links > c.opts.maxLinks
	c.mu.Unlock()
	if tooMany {
		c.refuse(l, a, amqpwire.ConditionResourceLimitExceeded, fmt.Sprintf("the connection already has %d links", c.opts.maxLinks))
		return nil
	}
	addr := l.source // the hub sends from its source
	if l.role == amqpwire.RoleReceiver {
		addr = l.target
	}
	ad, err := iothub.ParseAMQPAddress(addr)
	if err != nil {
		c.refuse(l, a, amqpwire.ConditionNotFound, err.Error())
		return nil
	}
	l.node = ad.Node
	peerSends := l.role == amqpwire.RoleReceiver
	switch ad.Node {
	case iothub.AMQPNodeCBS:
		if peerSends {
			c.accept(l, a, a.SndSettleMode, amqpwire.RcvFirst, nil)
		} else {
			c.accept(l, a, amqpwire.SndSettled, a.RcvSettleMode, nil)
		}
	case iothub.AMQPNodeEvents, iothub.AMQPNodeDeviceBound, iothub.AMQPNodeMethods, iothub.AMQPNodeTwin:
		c.attachDevice(l, a, ad)
	case iothub.AMQPNodeServiceDeviceBound, iothub.AMQPNodeServiceFeedback, iothub.AMQPNodeServiceFileNotifications:
		c.attachService(l, a, ad)
	default:
		c.refuse(l, a, amqpwire.ConditionNotFound, fmt.Sprintf("no node %q", addr))
	}
	return nil
}

// accept answers an attach. setup, when set, runs under the lock before the
// answer is queued (registering the link where hub callbacks find it).
func (c *amqpConn) accept(l *amqpLink, a *amqpwire.Attach, snd amqpwire.SenderSettleMode, rcv amqpwire.ReceiverSettleMode, setup func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.gone || l.detached || c.stopped {
		return false
	}
	if setup != nil {
		setup()
	}
	reply := &amqpwire.Attach{Name: a.Name, Handle: a.Handle, Role: l.role, SndSettleMode: snd, RcvSettleMode: rcv, Source: a.Source, Target: a.Target}
	if l.role == amqpwire.RoleSender {
		reply.InitialDeliveryCount = u32(0)
		if reply.Source == nil {
			reply.Source = &amqpwire.Source{Address: l.source}
		}
	} else if reply.Target == nil {
		reply.Target = &amqpwire.Target{Address: l.target}
	}
	c.frameLocked(amqpwire.FrameAMQP, l.s.ch, reply, nil)
	if l.role == amqpwire.RoleReceiver {
		if a.InitialDeliveryCount != nil {
			l.count = *a.InitialDeliveryCount
		}
		l.credit = c.opts.credit
		c.linkFlowLocked(l)
	}
	return true
}

// refuse answers an attach the hub will not take.
func (c *amqpConn) refuse(l *amqpLink, a *amqpwire.Attach, cond amqpwire.Symbol, desc string) {
	c.mu.Lock()
	if !l.gone && !l.detached {
		reply := &amqpwire.Attach{Name: a.Name, Handle: a.Handle, Role: l.role, SndSettleMode: a.SndSettleMode, RcvSettleMode: a.RcvSettleMode}
		if l.role == amqpwire.RoleSender {
			reply.Target = a.Target // no source: the node is not there for the peer
			reply.InitialDeliveryCount = u32(0)
		} else {
			reply.Source = a.Source // no target
		}
		c.frameLocked(amqpwire.FrameAMQP, l.s.ch, reply, nil)
		c.frameLocked(amqpwire.FrameAMQP, l.s.ch, &amqpwire.Detach{Handle: l.handle, Closed: true, Error: &amqpwire.Error{Condition: cond, Description: desc}}, nil)
		l.detached = true
	}
	c.mu.Unlock()
	c.h.log.Info("AMQP attach refused", "remote", c.remote, "link", a.Name, "source", l.source, "target", l.target, "condition", string(cond), "reason", desc)
}

// detachLocked detaches a link from the hub's side with an error. The
// returned function does what the hub must be told; the caller runs it
// after unlocking.
func (c *amqpConn) detachLocked(l *amqpLink, cond amqpwire.Symbol, desc string) func() {
	if l.detached || l.gone {
		return nil
	}
	c.frameLocked(amqpwire.FrameAMQP, l.s.ch, &amqpwire.Detach{Handle: l.handle, Closed: true, Error: &amqpwire.Error{Condition: cond, Description: desc}}, nil)
	post := c.removeLinkLocked(l)
	l.detached = true
	c.h.log.Info("AMQP link detached by the hub", "remote", c.remote, "link", l.name, "condition", string(cond), "reason", desc)
	return post
}

func (c *amqpConn) detach(ch uint16, d *amqpwire.Detach) error {
	c.mu.Lock()
	s, err := c.sessionLocked(ch)
	if err != nil {
		return err
	}
	l := s.links[d.Handle]
	if l == nil {
		c.mu.Unlock()
		return nil // detaching a handle twice, or after the hub ended the session
	}
	delete(s.links, d.Handle)
	c.links--
	answered := l.detached || s.ending
	post := c.removeLinkLocked(l)
	if !answered {
		c.frameLocked(amqpwire.FrameAMQP, ch, &amqpwire.Detach{Handle: d.Handle, Closed: d.Closed}, nil)
	}
	c.mu.Unlock()
	run(post)
	if d.Error != nil {
		c.h.log.Info("AMQP peer detached a link with an error", "remote", c.remote, "link", l.name, "error", d.Error.Error())
	}
	return nil
}

// removeLinkLocked lets go of a link's deliveries and of what it stood for
// in the hub: the C2D, method or desired-property subscription, and the
// device's hub connection when it was the device's last link.
func (c *amqpConn) removeLinkLocked(l *amqpLink) func() {
	if l.gone {
		return nil
	}
	l.gone = true
	s := l.s
	kept := s.queue[:0]
	for _, o := range s.queue {
		if o.link != l {
			kept = append(kept, o)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	for id, o := range s.unsettled {
		if o.link == l {
			delete(s.unsettled, id)
		}
	}
	l.held, l.partial = nil, nil
	for i, f := range c.feedback {
		if f == l {
			c.feedback = append(c.feedback[:i], c.feedback[i+1:]...)
			break
		}
	}
	if l.dev == nil {
		return nil
	}
	return c.removeDeviceLinkLocked(l)
}

// flow takes the peer's session window and, for a link, its credit.
func (c *amqpConn) flow(ch uint16, f *amqpwire.Flow) error {
	c.mu.Lock()
	s, err := c.sessionLocked(ch)
	if err != nil {
		return err
	}
	if s.ending {
		c.mu.Unlock()
		return nil
	}
	var next uint32 // the hub's initial outgoing id
	if f.NextIncomingID != nil {
		next = *f.NextIncomingID
	}
	if w := int64(next) + int64(f.IncomingWindow) - int64(s.nextOutgoingID); w > 0 {
		s.remoteIncoming = uint32(min(w, math.MaxUint32))
	} else {
		s.remoteIncoming = 0
	}
	var post func()
	if f.Handle == nil {
		if f.Echo {
			c.sessionFlowLocked(s)
		}
	} else if l := s.links[*f.Handle]; l == nil {
		posts := c.endLocked(s, amqpwire.ConditionUnattachedHandle, fmt.Sprintf("flow for handle %d, which is not attached", *f.Handle))
		post = func() { run(posts...) }
	} else if !l.detached {
		post = c.linkCreditLocked(l, f)
	}
	c.pumpLocked(s)
	c.mu.Unlock()
	run(post)
	return nil
}

// linkCreditLocked applies a link flow. For a link the hub sends on, the
// credit is the receiver's delivery-count plus its link-credit less the
// hub's delivery-count (spec §2.6.7); held messages go out, and a drain
// that finds nothing more to send uses up the credit.
func (c *amqpConn) linkCreditLocked(l *amqpLink, f *amqpwire.Flow) func() {
	if l.role == amqpwire.RoleReceiver {
		if f.Echo {
			c.linkFlowLocked(l)
		}
		return nil
	}
	if f.LinkCredit != nil {
		var base uint32
		if f.DeliveryCount != nil {
			base = *f.DeliveryCount
		}
		credit := base + *f.LinkCredit - l.sndCount
		if credit > math.MaxInt32 {
			credit = 0 // the receiver counted fewer deliveries than the hub sent
		}
		l.sndCredit = credit
	}
	l.drain = f.Drain
	c.releaseHeldLocked(l)
	echo := f.Echo
	switch {
	case l.dev != nil && l.dev.c2d == l:
		d := l.dev
		return func() {
			c.c2dWindow(d)
			c.mu.Lock()
			c.finishDrainLocked(l, echo)
			c.mu.Unlock()
		}
	case l.node == iothub.AMQPNodeServiceFeedback:
		c.feedbackLocked(l)
	}
	c.finishDrainLocked(l, echo)
	return nil
}

// finishDrainLocked ends a drain: credit the hub cannot use is spent by
// advancing the delivery-count, and the receiver is told.
func (c *amqpConn) finishDrainLocked(l *amqpLink, echo bool) {
	if l.gone || l.detached {
		return
	}
	if l.drain && (len(l.held) == 0 || !c.canStartLocked(l, l.held[0])) {
		// Nothing more can go out now: the receiver waits for a flow
		// saying so, with the unused credit spent.
		l.sndCount += l.sndCredit
		l.sndCredit = 0
		echo = true
	}
	if echo {
		c.linkFlowLocked(l)
	}
}

// sessionFlowLocked tells the peer the session's windows.
func (c *amqpConn) sessionFlowLocked(s *amqpSession) {
	c.frameLocked(amqpwire.FrameAMQP, s.ch, &amqpwire.Flow{
		NextIncomingID: u32(s.nextIncomingID), IncomingWindow: s.incomingLeft,
		NextOutgoingID: s.nextOutgoingID, OutgoingWindow: math.MaxUint32,
	}, nil)
}

// linkFlowLocked tells the peer a link's flow state: the credit the hub
// grants, or, on a link it sends on, its delivery-count and what waits.
func (c *amqpConn) linkFlowLocked(l *amqpLink) {
	s := l.s
	f := &amqpwire.Flow{
		NextIncomingID: u32(s.nextIncomingID), IncomingWindow: s.incomingLeft,
		NextOutgoingID: s.nextOutgoingID, OutgoingWindow: math.MaxUint32,
		Handle: u32(l.handle),
	}
	if l.role == amqpwire.RoleReceiver {
		f.DeliveryCount, f.LinkCredit = u32(l.count), u32(l.credit)
	} else {
		f.DeliveryCount, f.LinkCredit, f.Available, f.Drain = u32(l.sndCount), u32(l.sndCredit), u32(uint32(len(l.held))), l.drain
	}
	c.frameLocked(amqpwire.FrameAMQP, s.ch, f, nil)
}

// transfer takes one transfer frame: session window, link credit,
// reassembly of a delivery sent in several frames, then the delivery itself
// and, for an unsettled one, the hub's settled disposition.
func (c *amqpConn) transfer(ch uint16, t *amqpwire.Transfer, payload []byte) error {
	c.mu.Lock()
	s, err := c.sessionLocked(ch)
	if err != nil {
		return err
	}
	if s.ending {
		c.mu.Unlock()
		return nil
	}
	if s.incomingLeft == 0 {
		post := c.endLocked(s, amqpwire.ConditionWindowViolation, "a transfer beyond the session's incoming window")
		c.mu.Unlock()
		run(post...)
		return nil
	}
	s.nextIncomingID++
	s.incomingLeft--
	if s.incomingLeft < c.opts.incomingWindow/2 {
		s.incomingLeft = c.opts.incomingWindow
		c.sessionFlowLocked(s)
	}
	l := s.links[t.Handle]
	var post func()
	switch {
	case l == nil:
		posts := c.endLocked(s, amqpwire.ConditionUnattachedHandle, fmt.Sprintf("transfer on handle %d, which is not attached", t.Handle))
		post = func() { run(posts...) }
	case l.detached:
		// In flight when the hub detached the link; dropped.
	case l.role != amqpwire.RoleReceiver:
		post = c.detachLocked(l, amqpwire.ConditionNotAllowed, "a transfer on a link where the hub is the sender")
	case l.partial == nil && t.DeliveryID == nil:
		post = c.detachLocked(l, amqpwire.ConditionInvalidField, "the first transfer of a delivery has no delivery-id")
	case l.partial == nil && l.credit == 0:
		post = c.detachLocked(l, amqpwire.ConditionTransferLimitExceeded, "a transfer without link credit")
	default:
		in := c.takeTransferLocked(l, t, payload)
		c.mu.Unlock()
		if in != nil {
			c.delivered(l, in)
		}
		return nil
	}
	c.mu.Unlock()
	run(post)
	return nil
}

// takeTransferLocked adds a frame to the link's delivery and returns the
// delivery once it is whole.
func (c *amqpConn) takeTransferLocked(l *amqpLink, t *amqpwire.Transfer, payload []byte) *amqpIn {
	in := l.partial
	if in == nil {
		l.credit--
		l.count++
		in = &amqpIn{id: *t.DeliveryID, format: t.MessageFormat}
	}
	in.settled = in.settled || t.Settled
	if t.Aborted {
		l.partial = nil
		return nil
	}
	switch {
	case in.tooBig:
	case len(in.buf)+len(payload) > c.opts.maxMessage:
		in.tooBig, in.buf = true, nil
	case in.buf == nil && !t.More:
		in.buf = payload // frame bodies are fresh for every frame
	default:
		in.buf = append(in.buf, payload...)
	}
	if t.More {
		l.partial = in
		return nil
	}
	l.partial = nil
	if l.credit < c.opts.credit/2 {
		l.credit = c.opts.credit
		c.linkFlowLocked(l)
	}
	return in
}

// delivered hands a whole delivery to its node and settles it.
func (c *amqpConn) delivered(l *amqpLink, in *amqpIn) {
	var state amqpwire.DeliveryState
	switch {
	case in.tooBig:
		state = amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionMessageSizeExceeded,
			Description: fmt.Sprintf("the delivery exceeds %d bytes; IoT Hub takes messages up to %d bytes", c.opts.maxMessage, iothub.MaxD2CSize)}}
	case l.node == iothub.AMQPNodeCBS:
		state = c.cbsRequest(l, in)
	case l.node == iothub.AMQPNodeEvents:
		state = c.telemetry(l.dev, in)
	case l.node == iothub.AMQPNodeTwin:
		state = c.twinRequest(l, in)
	case l.node == iothub.AMQPNodeMethods:
		state = c.methodResponse(l.dev, in)
	case l.node == iothub.AMQPNodeServiceDeviceBound:
		state = c.serviceC2D(in)
	default:
		state = amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionNotAllowed, Description: "the node takes no messages"}}
	}
	if in.settled {
		return
	}
	c.mu.Lock()
	if !l.gone {
		c.frameLocked(amqpwire.FrameAMQP, l.s.ch, &amqpwire.Disposition{Role: amqpwire.RoleReceiver, First: in.id, Settled: true, State: state}, nil)
	}
	c.mu.Unlock()
}

// disposition takes the peer's settlement of deliveries the hub sent: C2D
// outcomes go to the hub, and a receiver in rcv-settle-mode second (the
// .NET SDK), which waits for the hub to settle, gets a settled disposition
// with the outcome (spec §3.5).
func (c *amqpConn) disposition(ch uint16, d *amqpwire.Disposition) error {
	if d.Role == amqpwire.RoleSender {
		return nil // the peer settles what it sent; the hub settled it already
	}
	final := d.Settled
	switch d.State.(type) {
	case amqpwire.Accepted, amqpwire.Rejected, amqpwire.Released, amqpwire.Modified:
		final = true
	}
	if !final {
		return nil
	}
	c.mu.Lock()
	s, err := c.sessionLocked(ch)
	if err != nil {
		return err
	}
	last := d.First
	if d.Last != nil {
		last = *d.Last
	}
	span := last - d.First
	var hits []*amqpOut
	if uint64(span) < uint64(len(s.unsettled)) {
		for i := uint64(0); i <= uint64(span); i++ {
			if o := s.unsettled[d.First+uint32(i)]; o != nil {
				hits = append(hits, o)
			}
		}
	} else {
		for id, o := range s.unsettled {
			if id-d.First <= span {
				hits = append(hits, o)
			}
		}
	}
	for _, o := range hits {
		delete(s.unsettled, o.id)
		o.link.outstanding--
	}
	for _, o := range hits {
		if len(o.link.held) > 0 && !o.link.gone {
			c.releaseHeldLocked(o.link)
		}
	}
	c.mu.Unlock()
	devices := map[*amqpDevice]bool{}
	for _, o := range hits {
		state := d.State
		if o.lock != "" && o.link.dev != nil {
			outcome := c2dOutcome(d.State)
			if err := o.link.dev.conn.SettleC2D(o.lock, outcome); err != nil {
				c.h.log.Info("C2D settlement refused", "identity", o.link.dev.id.String(), "lock", o.lock, "error", err.Error())
				state = amqpRejected(err)
			}
			devices[o.link.dev] = true
		}
		if !d.Settled {
			c.mu.Lock()
			c.frameLocked(amqpwire.FrameAMQP, ch, &amqpwire.Disposition{Role: amqpwire.RoleSender, First: o.id, Settled: true, State: state}, nil)
			c.mu.Unlock()
		}
	}
	for dev := range devices {
		c.c2dWindow(dev)
	}
	return nil
}

// c2dOutcome maps a device's outcome to the hub's (spec §3.5): accepted
// completes, rejected rejects, released abandons. Modified is not sent by
// the SDKs read; the hub takes undeliverable-here as a rejection and any
// other modified as an abandon, and so a settlement with no outcome (spec
// §10.8).
func c2dOutcome(s amqpwire.DeliveryState) C2DOutcome {
	switch s := s.(type) {
	case amqpwire.Accepted:
		return Complete
	case amqpwire.Rejected:
		return Reject
	case amqpwire.Modified:
		if s.UndeliverableHere {
			return Reject
		}
	}
	return Abandon
}

// sendLocked queues a message on a link the hub sends on: at once while the
// link has credit, else held until it has (up to maxHeld).
func (c *amqpConn) sendLocked(l *amqpLink, o *amqpOut) bool {
	if l.detached || l.gone || c.stopped {
		return false
	}
	o.link = l
	if o.tag == nil {
		l.tagSeq++
		o.tag = binary.BigEndian.AppendUint32(nil, l.tagSeq)
	}
	if !c.canStartLocked(l, o) || len(l.held) > 0 {
		if len(l.held) >= c.opts.maxHeld {
			c.h.log.Info("AMQP message dropped: the link has no credit and too many messages wait", "remote", c.remote, "link", l.name)
			return false
		}
		l.held = append(l.held, o)
		return true
	}
	c.startLocked(l, o)
	c.pumpLocked(l.s)
	return true
}

// canStartLocked reports whether a delivery may go out now: the link has
// credit, and an unsettled delivery finds the peer settling its earlier ones.
func (c *amqpConn) canStartLocked(l *amqpLink, o *amqpOut) bool {
	return l.sndCredit > 0 && (o.settled || l.outstanding < c.opts.maxUnsettled)
}

func (c *amqpConn) startLocked(l *amqpLink, o *amqpOut) {
	l.sndCredit--
	l.sndCount++
	if !o.settled {
		l.outstanding++
	}
	l.s.queue = append(l.s.queue, o)
}

func (c *amqpConn) releaseHeldLocked(l *amqpLink) {
	for len(l.held) > 0 && c.canStartLocked(l, l.held[0]) {
		o := l.held[0]
		l.held[0] = nil
		l.held = l.held[1:]
		c.startLocked(l, o)
	}
	if len(l.held) == 0 {
		l.held = nil
	}
	c.pumpLocked(l.s)
}

// pumpLocked writes queued deliveries while the peer's session window
// allows, each in frames no larger than the peer's max-frame-size.
func (c *amqpConn) pumpLocked(s *amqpSession) {
	var head []byte
	for len(s.queue) > 0 && s.remoteIncoming > 0 && !c.stopped && !c.closeSent {
		o := s.queue[0]
		t := &amqpwire.Transfer{Handle: o.link.handle, More: true}
		if !o.started {
			o.started = true
			o.id = s.nextDeliveryID
			s.nextDeliveryID++
			t.DeliveryID, t.DeliveryTag, t.Settled = u32(o.id), o.tag, o.settled
			if !o.settled {
				s.unsettled[o.id] = o
			}
		}
		var err error
		if head, err = t.Encode(head[:0]); err != nil {
			c.closeLocked(amqpwire.ConditionInternalError, err.Error())
			return
		}
		room := int(c.peerMax) - amqpwire.FrameHeaderSize - len(head)
		n := min(room, len(o.payload)-o.off)
		t.More = o.off+n < len(o.payload)
		c.frameLocked(amqpwire.FrameAMQP, s.ch, t, o.payload[o.off:o.off+n])
		o.off += n
		s.nextOutgoingID++
		s.remoteIncoming--
		if !t.More {
			s.queue[0] = nil
			s.queue = s.queue[1:]
		}
	}
	if len(s.queue) == 0 {
		s.queue = nil
	}
}
