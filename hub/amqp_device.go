package hub

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// amqpMaxMethodsPending bounds the method calls a device's connection
// remembers (correlation-id to the hub's request id); the hub gives up on a
// call after its response timeout, so the oldest are the first to forget.
const amqpMaxMethodsPending = 256

// amqpDevice is a device or module acting on a connection: its hub
// connection, opened when its first link attached and closed when its last
// link detached, and the links the hub pushes to.
type amqpDevice struct {
	id    iothub.Identity
	conn  *Conn
	links map[*amqpLink]struct{}

	c2d           *amqpLink // cloud-to-device receiver
	c2dSubscribed bool
	methods       *amqpLink // direct-method request receiver
	twin          []*amqpLink
	desired       *amqpLink // where desired updates go after a PUT
	methodRIDs    map[string]string
	methodOrder   []string
}

// attachDevice authorizes a device link, opens the device's hub connection
// if this is its first link, and answers the attach.
func (c *amqpConn) attachDevice(l *amqpLink, a *amqpwire.Attach, ad iothub.AMQPAddress) {
	peerSends := l.role == amqpwire.RoleReceiver
	switch {
	case ad.Node == iothub.AMQPNodeDeviceBound && peerSends:
		c.refuse(l, a, amqpwire.ConditionNotAllowed, "devices receive on messages/deviceBound; they send on messages/events")
		return
	case ad.Node == iothub.AMQPNodeEvents && !peerSends && ad.Identity.ModuleID == "":
		c.refuse(l, a, amqpwire.ConditionNotAllowed, "devices send on messages/events; they receive on messages/deviceBound")
		return
	}
	d, err := c.device(ad.Identity)
	if err != nil {
		c.refuse(l, a, amqpCondition(err), err.Error())
		return
	}
	snd, rcv := a.SndSettleMode, amqpwire.RcvFirst
	if !peerSends {
		// Method requests, twin answers and desired updates go
		// pre-settled (spec §3.2); C2D messages unsettled, whatever the
		// device asked, because IoT Hub needs their outcome.
		snd, rcv = amqpwire.SndSettled, a.RcvSettleMode
		if ad.Node == iothub.AMQPNodeDeviceBound {
			snd = amqpwire.SndUnsettled
		}
	}
	var replaced *amqpLink
	ok := c.accept(l, a, snd, rcv, func() {
		if c.devices[d.id] != d {
			return
		}
		l.dev = d
		d.links[l] = struct{}{}
		if peerSends {
			return
		}
		switch ad.Node {
		case iothub.AMQPNodeDeviceBound:
			replaced, d.c2d = d.c2d, l
		case iothub.AMQPNodeMethods:
			replaced, d.methods = d.methods, l
		case iothub.AMQPNodeTwin:
			d.twin = append(d.twin, l)
		}
	})
	if ok && l.dev == nil {
		// The device's token expired between authorization and the answer.
		c.mu.Lock()
		post := c.detachLocked(l, amqpwire.ConditionUnauthorizedAccess, "the device's token expired")
		c.mu.Unlock()
		run(post)
		return
	}
	if !ok {
		return
	}
	if replaced != nil {
		// One C2D and one method receiver per device: a newer link takes
		// over, as a newer connection does.
		c.mu.Lock()
		post := c.detachLocked(replaced, amqpwire.ConditionStolen, "a newer link of the device took over")
		c.mu.Unlock()
		run(post)
	}
	if ad.Node == iothub.AMQPNodeMethods && !peerSends {
		d.conn.SubscribeMethods(c.methodRequest(d))
	}
}

// device returns the device's state on this connection, authorizing it and
// opening its hub connection on its first link.
func (c *amqpConn) device(id iothub.Identity) (*amqpDevice, error) {
	c.mu.Lock()
	d := c.devices[id]
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}
	p, err := c.authorizeDevice(id)
	if err != nil {
		return nil, err
	}
	d = &amqpDevice{id: id, links: map[*amqpLink]struct{}{}, methodRIDs: map[string]string{}}
	conn, err := c.h.Connect(p, c.proto, c.remote, c.deviceClosed(d))
	if err != nil {
		return nil, err
	}
	d.conn = conn
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		conn.Close()
		return nil, errAMQPClosed
	}
	c.devices[id] = d
	c.mu.Unlock()
	return d, nil
}

// deviceClosed is how the hub ends a device's presence on the connection (an
// expired token, a newer connection, a deleted or disabled device): its links
// are detached with the condition for the reason: amqp:unauthorized-access
// for an expired token, amqp:link:stolen when another connection took over.
// The connection and its $cbs links stay, so a client can put a new token
// and attach again. A connection bound to a SASL PLAIN token closes instead
// (D-SAS). What the real hub does here is unverified (spec §10.6).
func (c *amqpConn) deviceClosed(d *amqpDevice) func(error) {
	return func(reason error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.devices[d.id] != d {
			return
		}
		delete(c.devices, d.id)
		cond := amqpCondition(reason)
		if errors.Is(reason, &iothub.Error{Code: iothub.CodeDeviceNotOnline}) {
			cond = amqpwire.ConditionStolen
		}
		if c.auth.plain && cond == amqpwire.ConditionUnauthorizedAccess {
			c.closeLocked(cond, reason.Error())
			return
		}
		for l := range d.links {
			// The hub is closing the device's connection itself; nothing
			// more to tell it.
			_ = c.detachLocked(l, cond, reason.Error())
		}
	}
}

// removeDeviceLinkLocked drops a link from its device; the returned function
// ends the hub subscription it stood for, or the device's hub connection.
func (c *amqpConn) removeDeviceLinkLocked(l *amqpLink) func() {
	d := l.dev
	if _, ok := d.links[l]; !ok {
		return nil
	}
	delete(d.links, l)
	if len(d.links) == 0 {
		if c.devices[d.id] == d {
			delete(c.devices, d.id)
		}
		return d.conn.Close
	}
	var post []func()
	switch {
	case d.c2d == l:
		d.c2d = nil
		if d.c2dSubscribed {
			d.c2dSubscribed = false
			post = append(post, d.conn.UnsubscribeC2D)
		}
	case d.methods == l:
		d.methods = nil
		post = append(post, func() { d.conn.SubscribeMethods(nil) })
	}
	for i, t := range d.twin {
		if t == l {
			d.twin = append(d.twin[:i], d.twin[i+1:]...)
			break
		}
	}
	if d.desired == l {
		d.desired = c.twinReplyLocked(d, "")
		if d.desired == nil {
			post = append(post, d.conn.UnsubscribeDesired)
		}
	}
	return func() { run(post...) }
}

// telemetry stores what a device sent on messages/events: one message, or a
// batch (message-format 0x80013700) whose data sections are each a message.
// The outcome is accepted, or rejected with the condition of the hub's error
// (message-size-exceeded above 256 KB, device-container-throttled, …).
func (c *amqpConn) telemetry(d *amqpDevice, in *amqpIn) amqpwire.DeliveryState {
	var wire []*amqpwire.Message
	var err error
	if in.format == iothub.AMQPBatchFormat {
		wire, err = amqpwire.DecodeBatch(in.buf)
	} else {
		var m *amqpwire.Message
		m, err = amqpwire.DecodeMessage(in.buf)
		wire = []*amqpwire.Message{m}
	}
	if err != nil {
		return amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionDecodeError, Description: err.Error()}}
	}
	msgs := make([]*iothub.Message, len(wire))
	total := 0
	for i, w := range wire {
		if msgs[i], err = fromWire(w); err != nil {
			return amqpRejected(iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err))
		}
		total += msgs[i].Size()
	}
	if len(msgs) > 1 && total > iothub.MaxD2CSize {
		return amqpRejected(iothub.Errorf(iothub.CodeMessageTooLarge, "a batch of %d messages and %d bytes exceeds IoT Hub's %d-byte limit", len(msgs), total, iothub.MaxD2CSize))
	}
	for _, m := range msgs {
		if err := d.conn.Telemetry(m); err != nil {
			return amqpRejected(err)
		}
	}
	return amqpwire.Accepted{}
}

// methodRequest is the device's direct-method handler: each call goes
// pre-settled on the device's method receiver with a uuid correlation-id
// (the C SDK takes nothing else), which the device's answer carries back
// and the hub maps to its own request id (spec §3.6).
func (c *amqpConn) methodRequest(d *amqpDevice) func(MethodRequest) {
	return func(r MethodRequest) {
		corr, err := amqpwire.ParseUUID(newGUID())
		if err != nil {
			return
		}
		payload := r.Payload
		if payload == nil {
			payload = []byte{}
		}
		msg := &amqpwire.Message{
			Properties:            &amqpwire.Properties{CorrelationID: corr},
			ApplicationProperties: amqpwire.NewMap(amqpwire.MapEntry{Key: iothub.AMQPPropMethodName, Value: r.Name}),
			Data:                  [][]byte{payload},
		}
		b, err := msg.Encode(nil)
		if err != nil {
			c.h.log.Error("encoding a method request failed", "error", err.Error())
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if d.methods == nil {
			return
		}
		key := corr.String()
		d.methodRIDs[key] = r.RID
		d.methodOrder = append(d.methodOrder, key)
		if len(d.methodOrder) > amqpMaxMethodsPending {
			delete(d.methodRIDs, d.methodOrder[0])
			d.methodOrder = d.methodOrder[1:]
		}
		c.sendLocked(d.methods, &amqpOut{settled: true, payload: b, tag: corr[:]})
	}
}

// methodResponse hands a device's answer to the call it correlates with.
func (c *amqpConn) methodResponse(d *amqpDevice, in *amqpIn) amqpwire.DeliveryState {
	msg, err := amqpwire.DecodeMessage(in.buf)
	if err != nil {
		return amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionDecodeError, Description: err.Error()}}
	}
	var corr any
	if msg.Properties != nil {
		corr = msg.Properties.CorrelationID
	}
	key, err := iothub.AMQPIDString(corr)
	if err != nil {
		return amqpRejected(iothub.Errorf(iothub.CodeArgumentInvalid, "a method response needs the request's correlation-id: %v", err))
	}
	v, _ := msg.ApplicationProperties.GetString(iothub.AMQPPropMethodStatus)
	status, ok := iothub.AMQPStatus(v)
	if !ok {
		return amqpRejected(iothub.Errorf(iothub.CodeArgumentInvalid, "a method response needs the %s application property as an int", iothub.AMQPPropMethodStatus))
	}
	body, err := wireBody(msg)
	if err != nil {
		return amqpRejected(iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err))
	}
	c.mu.Lock()
	rid, known := d.methodRIDs[key]
	if known {
		delete(d.methodRIDs, key)
		for i, k := range d.methodOrder {
			if k == key {
				d.methodOrder = append(d.methodOrder[:i], d.methodOrder[i+1:]...)
				break
			}
		}
	}
	c.mu.Unlock()
	if !known {
		c.h.log.Info("method response for no pending call", "identity", d.id.String(), "correlation", key)
		return amqpwire.Accepted{}
	}
	if err := d.conn.MethodResponse(rid, status, body); err != nil {
		c.h.log.Info("method response ignored", "identity", d.id.String(), "error", err.Error())
		return amqpRejected(err)
	}
	return amqpwire.Accepted{}
}

// twinRequest answers a twin request (spec §3.7): the operation and resource
// are message annotations, the answer echoes the correlation-id with its AMQP
// type and carries status as an int and, after a reported patch, version as
// a long. PUT on the desired-notifications resource starts desired updates on
// the receiver paired with the sending link; DELETE stops them. Both answer
// 200 (unverified, spec §10.9).
func (c *amqpConn) twinRequest(l *amqpLink, in *amqpIn) amqpwire.DeliveryState {
	d := l.dev
	msg, err := amqpwire.DecodeMessage(in.buf)
	if err != nil {
		return amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionDecodeError, Description: err.Error()}}
	}
	annot := func(key string) string {
		v, _ := msg.MessageAnnotations.GetSymbol(key)
		s, _ := iothub.AMQPValueText(v)
		return s
	}
	op, resource := annot(iothub.AnnotationOperation), annot(iothub.AnnotationResource)
	var corr any
	if msg.Properties != nil {
		corr = msg.Properties.CorrelationID
	}
	status, version := 200, int64(-1)
	var body []byte
	reqBody, berr := wireBody(msg)
	switch {
	case berr != nil:
		err = iothub.Errorf(iothub.CodeArgumentInvalid, "%v", berr)
	case op == iothub.TwinOpGet:
		body, err = d.conn.GetTwin()
	case op == iothub.TwinOpPatch && (resource == iothub.TwinResourceReported || resource == ""):
		version, err = d.conn.PatchReported(reqBody)
		status = 204
	case (op == iothub.TwinOpPut || op == iothub.TwinOpDelete) && resource == iothub.TwinResourceDesired:
		c.mu.Lock()
		if op == iothub.TwinOpPut {
			d.desired = c.twinReplyLocked(d, l.corr)
		} else {
			d.desired = nil
		}
		on := d.desired != nil
		c.mu.Unlock()
		switch {
		case on:
			d.conn.SubscribeDesired(c.desiredUpdate(d))
		case op == iothub.TwinOpPut:
			err = iothub.Errorf(iothub.CodeArgumentInvalid, "desired-property updates need a twin receiver link; attach one before the PUT")
		default:
			d.conn.UnsubscribeDesired()
		}
	default:
		err = iothub.Errorf(iothub.CodeArgumentInvalid, "twin operation %q on resource %q is not GET, PATCH %s, or PUT or DELETE %s", op, resource, iothub.TwinResourceReported, iothub.TwinResourceDesired)
	}
	if err != nil {
		code := iothub.CodeServerError
		var e *iothub.Error
		if errors.As(err, &e) {
			code = e.Code
		}
		status, version = code.HTTPStatus(), -1
		body = []byte(`{"errorCode":` + strconv.Itoa(code.Number()) + `,"message":` + strconv.Quote(err.Error()) + `}`)
	}
	annots := amqpwire.NewMap(amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationStatus), Value: int32(status)})
	if version >= 0 {
		annots.Set(amqpwire.Symbol(iothub.AnnotationVersion), version)
	}
	reply := &amqpwire.Message{MessageAnnotations: annots, Properties: &amqpwire.Properties{CorrelationID: corr}, Data: [][]byte{body}}
	if body == nil {
		reply.Data = [][]byte{{}}
	}
	b, err := reply.Encode(nil)
	if err != nil {
		return amqpRejected(iothub.Errorf(iothub.CodeArgumentInvalid, "the correlation-id cannot be echoed: %v", err))
	}
	c.mu.Lock()
	if to := c.twinReplyLocked(d, l.corr); to != nil {
		c.sendLocked(to, &amqpOut{settled: true, payload: b})
	}
	c.mu.Unlock()
	return amqpwire.Accepted{}
}

// twinReplyLocked picks the twin receiver an answer goes on: the one paired
// with the request's link by channel-correlation-id, else the newest.
func (c *amqpConn) twinReplyLocked(d *amqpDevice, corr string) *amqpLink {
	var newest *amqpLink
	for _, t := range d.twin {
		if t.detached || t.gone {
			continue
		}
		if corr != "" && t.corr == corr {
			return t
		}
		newest = t
	}
	return newest
}

// desiredUpdate sends desired-property updates on the twin receiver chosen
// at PUT time, with no correlation-id (that is how the SDKs tell them from
// answers) and the version as a long annotation.
func (c *amqpConn) desiredUpdate(d *amqpDevice) func([]byte, int64) {
	return func(patch []byte, version int64) {
		msg := &amqpwire.Message{
			MessageAnnotations: amqpwire.NewMap(amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationVersion), Value: version}),
			Data:               [][]byte{patch},
		}
		b, err := msg.Encode(nil)
		if err != nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if d.desired != nil {
			c.sendLocked(d.desired, &amqpOut{settled: true, payload: b})
		}
	}
}

// c2dWindow tells the hub how many C2D messages the device's link can take:
// those it holds unsettled plus the credit it granted, capped at the queue
// depth. With neither, the hub stops pushing until credit comes.
func (c *amqpConn) c2dWindow(d *amqpDevice) {
	c.mu.Lock()
	l := d.c2d
	if l == nil || l.detached || l.gone || c.stopped {
		c.mu.Unlock()
		return
	}
	w := min(l.outstanding+len(l.held)+int(l.sndCredit), c.opts.c2dWindow)
	was := d.c2dSubscribed
	d.c2dSubscribed = w > 0
	c.mu.Unlock()
	switch {
	case w > 0:
		d.conn.SubscribeC2D(w, c.deliverC2D(d))
	case was:
		d.conn.UnsubscribeC2D()
	}
}

// deliverC2D sends a cloud-to-device message unsettled, its 16-byte delivery
// tag the lock token's bytes (the .NET SDK makes its lock token from the tag).
func (c *amqpConn) deliverC2D(d *amqpDevice) func(*C2DMessage) {
	return func(m *C2DMessage) {
		lock, err := amqpwire.ParseUUID(m.LockToken)
		if err != nil {
			c.h.log.Error("C2D lock token is not a uuid", "lock", m.LockToken)
			return
		}
		b, err := c2dWire(m, lock).Encode(nil)
		if err != nil {
			c.h.log.Error("encoding a C2D message failed", "error", err.Error())
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		l := d.c2d
		if l == nil {
			return // detached meanwhile: the lock runs out and the message returns to the queue
		}
		for i, o := range l.held {
			if o.lock == m.LockToken {
				// Redelivered after its lock ran out while it waited for
				// credit; the newer copy replaces it.
				l.held[i].payload = b
				return
			}
		}
		c.sendLocked(l, &amqpOut{tag: lock[:], payload: b, lock: m.LockToken})
	}
}

// c2dWire is the AMQP form of a cloud-to-device message (spec §3.5): the
// service's properties and application properties, iothub-ack when the
// service asked for feedback, and the annotations the .NET SDK reads. The
// annotation set and types the hub sends are unverified (spec §10.8).
func c2dWire(m *C2DMessage, lock amqpwire.UUID) *amqpwire.Message {
	a := iothub.ToAMQP(&m.Message)
	if m.Ack != "" && m.Ack != "none" {
		a.ApplicationProperties = append([]iothub.AMQPProperty{{Name: iothub.PropAck, Value: m.Ack}}, a.ApplicationProperties...)
	}
	a.MessageAnnotations = append(a.MessageAnnotations,
		iothub.AMQPProperty{Name: iothub.AnnotationSequenceNumber, Value: m.SequenceNumber},
		iothub.AMQPProperty{Name: iothub.AnnotationEnqueuedTime, Value: m.Enqueued},
		iothub.AMQPProperty{Name: iothub.AnnotationDeliveryCount, Value: uint8(min(m.DeliveryCount, 255))},
		iothub.AMQPProperty{Name: iothub.AnnotationLockToken, Value: lock},
	)
	return toWire(a)
}

func (d *amqpDevice) String() string { return fmt.Sprintf("%s (%d links)", d.id, len(d.links)) }
