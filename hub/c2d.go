package hub

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// C2DMessage is a cloud-to-device message as the hub delivers it.
type C2DMessage struct {
	iothub.Message
	LockToken      string // a GUID; the HTTPS ETag and the AMQP delivery tag
	SequenceNumber uint64
	Enqueued       time.Time
	Expires        time.Time
	DeliveryCount  int
	Ack            string // iothub-ack: none, positive, negative or full
}

// C2DOutcome is how a device settled a cloud-to-device message.
type C2DOutcome int

const (
	// Complete: the device processed it (MQTT PUBACK, AMQP accepted, HTTPS DELETE).
	Complete C2DOutcome = iota
	// Abandon: back to the queue, delivery count +1 (AMQP released, HTTPS abandon).
	Abandon
	// Reject: dead-lettered (AMQP rejected, HTTPS DELETE ?reject).
	Reject
)

type c2dState int

const (
	c2dQueued c2dState = iota
	c2dLocked
)

type c2dEntry struct {
	msg       C2DMessage
	state     c2dState
	lockedBy  *Conn // nil for an HTTPS lock
	lockUntil time.Time
}

// c2dQueue is one device's cloud-to-device queue; the identity's mutex guards it.
type c2dQueue struct {
	entries []*c2dEntry
	timer   *time.Timer // fires at the earliest lock expiry
}

// FeedbackRecord is one delivery outcome the hub reports to the service side
// for messages sent with iothub-ack (D-C2D).
type FeedbackRecord struct {
	OriginalMessageID  string `json:"originalMessageId"`
	EnqueuedTimeUTC    string `json:"enqueuedTimeUtc"`
	StatusCode         string `json:"statusCode"` // Success, Expired, DeliveryCountExceeded, Rejected, Purged
	Description        string `json:"description"`
	DeviceID           string `json:"deviceId"`
	DeviceGenerationID string `json:"deviceGenerationId"`
}

// C2DOptions are the service's choices for one cloud-to-device message.
type C2DOptions struct {
	Ack string        // none (default), positive, negative, full
	TTL time.Duration // zero: the hub's default; an ExpiryTime on the message wins
}

// SendC2D queues a cloud-to-device message for a device. It fails with the
// hub's codes: DeviceNotFound, MessageTooLarge (64 KB body),
// DeviceMaximumQueueDepthExceeded (50 waiting), ArgumentInvalid.
func (h *Hub) SendC2D(deviceID string, m iothub.Message, opt C2DOptions) (C2DMessage, error) {
	id := iothub.Identity{DeviceID: deviceID}
	it := h.lookup(id)
	if it == nil {
		return C2DMessage{}, iothub.Errorf(iothub.CodeDeviceNotFound, "device %q is not registered", deviceID)
	}
	if len(m.Body) > iothub.MaxC2DSize {
		return C2DMessage{}, iothub.Errorf(iothub.CodeMessageTooLarge, "cloud-to-device message body of %d bytes exceeds IoT Hub's %d-byte limit", len(m.Body), iothub.MaxC2DSize)
	}
	ack := strings.ToLower(opt.Ack)
	switch ack {
	case "":
		ack = "none"
	case "none", "positive", "negative", "full":
	default:
		return C2DMessage{}, iothub.Errorf(iothub.CodeArgumentInvalid, "iothub-ack %q is not none, positive, negative or full", opt.Ack)
	}
	if h.cfg.Throttler != nil {
		if err := h.cfg.Throttler.Allow(OpC2DSend, id, len(m.Body)); err != nil {
			return C2DMessage{}, err
		}
	}
	now := h.now()
	ttl := opt.TTL
	if ttl <= 0 {
		ttl = h.cfg.C2DTTL
	}
	exp := now.Add(ttl)
	if !m.ExpiryTime.IsZero() {
		exp = m.ExpiryTime
	}
	if m.MessageID == "" {
		m.MessageID = newGUID()
	}
	m.To = "/devices/" + deviceID + "/messages/deviceBound"
	cm := C2DMessage{Message: m, LockToken: newGUID(), SequenceNumber: h.c2dSeq.Add(1), Enqueued: now, Expires: exp, Ack: ack}
	cm.ExpiryTime = exp

	it.mu.Lock()
	h.expireC2D(it, now)
	if len(it.c2d.entries) >= iothub.C2DQueueDepth {
		it.mu.Unlock()
		return C2DMessage{}, iothub.Errorf(iothub.CodeQueueFull, "device %q already has %d cloud-to-device messages waiting, IoT Hub's limit", deviceID, iothub.C2DQueueDepth)
	}
	it.c2d.entries = append(it.c2d.entries, &c2dEntry{msg: cm})
	it.mu.Unlock()
	h.stats.C2DQueued.Add(1)
	h.emit(Event{Kind: EventC2DQueued, Identity: id, Detail: cm.MessageID})
	h.dispatchC2D(it)
	return cm, nil
}

// C2DPending is how many messages wait (queued or locked) for a device.
func (h *Hub) C2DPending(deviceID string) int {
	it := h.lookup(iothub.Identity{DeviceID: deviceID})
	if it == nil {
		return 0
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	h.expireC2D(it, h.now())
	return len(it.c2d.entries)
}

// SubscribeC2D starts pushing the device's cloud-to-device messages to deliver,
// at most window unsettled at a time. Messages already locked to this
// connection are not pushed again. deliver must not block.
func (c *Conn) SubscribeC2D(window int, deliver func(*C2DMessage)) {
	if window <= 0 {
		window = 1
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.c2d, c.c2dWindow = deliver, window
	c.mu.Unlock()
	c.h.dispatchC2D(c.it)
}

// UnsubscribeC2D stops pushing; locked messages stay locked until settled or
// until the connection closes.
func (c *Conn) UnsubscribeC2D() {
	c.mu.Lock()
	c.c2d = nil
	c.mu.Unlock()
}

// SettleC2D settles a message delivered on this connection.
func (c *Conn) SettleC2D(lockToken string, o C2DOutcome) error {
	err := c.h.settle(c.it, lockToken, o, c)
	if err == nil {
		c.mu.Lock()
		if c.c2dInflight > 0 {
			c.c2dInflight--
		}
		c.mu.Unlock()
		c.h.dispatchC2D(c.it)
	}
	return err
}

// dispatchC2D pushes queued messages to the device's subscribed connection up
// to its window. Delivery happens outside the locks.
func (h *Hub) dispatchC2D(it *identity) {
	for {
		it.mu.Lock()
		c := it.conn
		if c == nil {
			it.mu.Unlock()
			return
		}
		c.mu.Lock()
		deliver := c.c2d
		if deliver == nil || c.closed || c.c2dInflight >= c.c2dWindow {
			c.mu.Unlock()
			it.mu.Unlock()
			return
		}
		now := h.now()
		h.expireC2D(it, now)
		var e *c2dEntry
		for _, x := range it.c2d.entries {
			if x.state == c2dQueued {
				e = x
				break
			}
		}
		if e == nil {
			c.mu.Unlock()
			it.mu.Unlock()
			return
		}
		e.state, e.lockedBy, e.lockUntil = c2dLocked, c, now.Add(iothub.C2DLockTimeout)
		c.c2dInflight++
		h.armLockTimer(it, now)
		msg := e.msg
		c.mu.Unlock()
		it.mu.Unlock()
		h.emit(Event{Kind: EventC2DDelivered, Identity: c.principal.Identity, Protocol: c.proto, Detail: msg.MessageID})
		deliver(&msg)
	}
}

// ReceiveC2D takes the next cloud-to-device message for an HTTPS poll, locking it
// for lockTimeout (the hub's minute when zero). It returns nil when none waits.
func (h *Hub) ReceiveC2D(deviceID string, lockTimeout time.Duration) (*C2DMessage, error) {
	it := h.lookup(iothub.Identity{DeviceID: deviceID})
	if it == nil {
		return nil, iothub.Errorf(iothub.CodeDeviceNotFound, "device %q is not registered", deviceID)
	}
	if lockTimeout <= 0 {
		lockTimeout = iothub.C2DLockTimeout
	}
	if h.cfg.Throttler != nil {
		if err := h.cfg.Throttler.Allow(OpC2DReceive, iothub.Identity{DeviceID: deviceID}, 0); err != nil {
			h.reject(iothub.Identity{DeviceID: deviceID}, HTTPS, err)
			return nil, err
		}
	}
	now := h.now()
	it.mu.Lock()
	defer it.mu.Unlock()
	h.expireC2D(it, now)
	for _, e := range it.c2d.entries {
		if e.state == c2dQueued {
			e.state, e.lockedBy, e.lockUntil = c2dLocked, nil, now.Add(lockTimeout)
			h.armLockTimer(it, now)
			msg := e.msg
			h.emit(Event{Kind: EventC2DDelivered, Identity: it.reg.Identity, Protocol: HTTPS, Detail: msg.MessageID})
			return &msg, nil
		}
	}
	return nil, nil
}

// SettleC2D settles a message received over HTTPS by its lock token (the ETag).
func (h *Hub) SettleC2D(deviceID, lockToken string, o C2DOutcome) error {
	it := h.lookup(iothub.Identity{DeviceID: deviceID})
	if it == nil {
		return iothub.Errorf(iothub.CodeDeviceNotFound, "device %q is not registered", deviceID)
	}
	err := h.settle(it, lockToken, o, nil)
	if err == nil {
		h.dispatchC2D(it)
	}
	return err
}

func (h *Hub) settle(it *identity, lockToken string, o C2DOutcome, by *Conn) error {
	now := h.now()
	it.mu.Lock()
	h.expireC2D(it, now)
	idx := -1
	for i, e := range it.c2d.entries {
		if e.msg.LockToken == lockToken && e.state == c2dLocked && e.lockedBy == by {
			idx = i
			break
		}
	}
	if idx < 0 {
		it.mu.Unlock()
		return iothub.Errorf(iothub.CodeLockLost, "no locked cloud-to-device message has lock token %q (its lock expired, or it was settled already)", lockToken)
	}
	e := it.c2d.entries[idx]
	id := it.reg.Identity
	gen := it.reg.GenerationID
	var fb *FeedbackRecord
	var kind EventKind
	switch o {
	case Complete:
		it.c2d.entries = append(it.c2d.entries[:idx], it.c2d.entries[idx+1:]...)
		h.stats.C2DCompleted.Add(1)
		kind = EventC2DCompleted
		if e.msg.Ack == "positive" || e.msg.Ack == "full" {
			fb = feedback(e.msg, "Success", "Success", id.DeviceID, gen, now)
		}
	case Reject:
		it.c2d.entries = append(it.c2d.entries[:idx], it.c2d.entries[idx+1:]...)
		h.stats.C2DRejected.Add(1)
		kind = EventC2DRejected
		if e.msg.Ack == "negative" || e.msg.Ack == "full" {
			fb = feedback(e.msg, "Rejected", "Message rejected", id.DeviceID, gen, now)
		}
	case Abandon:
		e.msg.DeliveryCount++
		h.stats.C2DAbandoned.Add(1)
		kind = EventC2DAbandoned
		if e.msg.DeliveryCount >= h.cfg.MaxDeliveryCount {
			it.c2d.entries = append(it.c2d.entries[:idx], it.c2d.entries[idx+1:]...)
			h.stats.C2DDeadLettered.Add(1)
			kind = EventC2DDeadLetter
			if e.msg.Ack == "negative" || e.msg.Ack == "full" {
				fb = feedback(e.msg, "DeliveryCountExceeded", "Message delivery count exceeded", id.DeviceID, gen, now)
			}
		} else {
			e.state, e.lockedBy = c2dQueued, nil
		}
	}
	it.mu.Unlock()
	if fb != nil {
		h.feedback.add(*fb)
	}
	h.emit(Event{Kind: kind, Identity: id, Detail: e.msg.MessageID})
	return nil
}

// expireC2D drops expired messages (with feedback) and returns messages whose
// lock ran out to the queue. The identity's mutex is held.
func (h *Hub) expireC2D(it *identity, now time.Time) {
	kept := it.c2d.entries[:0]
	for _, e := range it.c2d.entries {
		if !now.Before(e.msg.Expires) {
			h.stats.C2DExpired.Add(1)
			if e.msg.Ack == "negative" || e.msg.Ack == "full" {
				h.feedback.add(*feedback(e.msg, "Expired", "Message expired", it.reg.Identity.DeviceID, it.reg.GenerationID, now))
			}
			if e.lockedBy != nil {
				e.lockedBy.releaseInflight()
			}
			h.emit(Event{Kind: EventC2DExpired, Identity: it.reg.Identity, Detail: e.msg.MessageID})
			continue
		}
		if e.state == c2dLocked && !now.Before(e.lockUntil) {
			// A lock that runs out returns the message without counting a
			// delivery (D-C2D).
			if e.lockedBy != nil {
				e.lockedBy.releaseInflight()
			}
			e.state, e.lockedBy = c2dQueued, nil
		}
		kept = append(kept, e)
	}
	for i := len(kept); i < len(it.c2d.entries); i++ {
		it.c2d.entries[i] = nil
	}
	it.c2d.entries = kept
}

func (c *Conn) releaseInflight() {
	c.mu.Lock()
	if c.c2dInflight > 0 {
		c.c2dInflight--
	}
	c.mu.Unlock()
}

// armLockTimer makes sure a timer fires at the earliest lock expiry, so that a
// message whose lock runs out is redelivered without waiting for other
// traffic. The identity's mutex is held.
func (h *Hub) armLockTimer(it *identity, now time.Time) {
	var earliest time.Time
	for _, e := range it.c2d.entries {
		if e.state == c2dLocked && (earliest.IsZero() || e.lockUntil.Before(earliest)) {
			earliest = e.lockUntil
		}
	}
	if earliest.IsZero() {
		return
	}
	d := earliest.Sub(now)
	if it.c2d.timer != nil {
		it.c2d.timer.Stop()
	}
	it.c2d.timer = time.AfterFunc(d, func() {
		it.mu.Lock()
		h.expireC2D(it, h.now())
		h.armLockTimer(it, h.now())
		it.mu.Unlock()
		h.dispatchC2D(it)
	})
}

// unlockConn returns the messages locked to c to the queue; the identity's
// mutex is held.
func (q *c2dQueue) unlockConn(c *Conn) {
	for _, e := range q.entries {
		if e.state == c2dLocked && e.lockedBy == c {
			e.state, e.lockedBy = c2dQueued, nil
		}
	}
}

func feedback(m C2DMessage, status, desc, deviceID, gen string, now time.Time) *FeedbackRecord {
	return &FeedbackRecord{OriginalMessageID: m.MessageID, EnqueuedTimeUTC: iothub.FormatTime(now), StatusCode: status, Description: desc, DeviceID: deviceID, DeviceGenerationID: gen}
}

// feedbackQueue holds feedback records until the service side takes them.
type feedbackQueue struct {
	mu      sync.Mutex
	records []FeedbackRecord
}

func (f *feedbackQueue) add(r FeedbackRecord) {
	f.mu.Lock()
	f.records = append(f.records, r)
	f.mu.Unlock()
}

// TakeFeedback removes and returns up to max pending feedback records.
func (h *Hub) TakeFeedback(max int) []FeedbackRecord {
	h.feedback.mu.Lock()
	defer h.feedback.mu.Unlock()
	n := len(h.feedback.records)
	if max > 0 && n > max {
		n = max
	}
	out := append([]FeedbackRecord(nil), h.feedback.records[:n]...)
	h.feedback.records = h.feedback.records[n:]
	return out
}

func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
