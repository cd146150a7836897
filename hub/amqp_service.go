package hub

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// amqpFeedbackBatch is how many feedback records go in one message (D-C2D:
// up to 64).
const amqpFeedbackBatch = 64

// attachService authorizes a service link (spec §5.1): the C2D sender on
// /messages/devicebound and the feedback receiver on
// /messages/serviceBound/feedback need a token of a policy with
// ServiceConnect. File-upload notifications attach but carry nothing: the
// emulator has no file uploads.
func (c *amqpConn) attachService(l *amqpLink, a *amqpwire.Attach, ad iothub.AMQPAddress) {
	peerSends := l.role == amqpwire.RoleReceiver
	if (ad.Node == iothub.AMQPNodeServiceDeviceBound) != peerSends {
		c.refuse(l, a, amqpwire.ConditionNotAllowed, fmt.Sprintf("the service sends on %s and receives on %s", iothub.AMQPPath(iothub.AMQPNodeServiceDeviceBound, iothub.Identity{}), iothub.AMQPPath(iothub.AMQPNodeServiceFeedback, iothub.Identity{})))
		return
	}
	if _, err := c.authorizeService(); err != nil {
		c.refuse(l, a, amqpCondition(err), err.Error())
		return
	}
	l.svc = true
	if peerSends {
		c.accept(l, a, a.SndSettleMode, amqpwire.RcvFirst, nil)
		return
	}
	c.accept(l, a, amqpwire.SndUnsettled, a.RcvSettleMode, func() {
		if ad.Node == iothub.AMQPNodeServiceFeedback {
			c.feedback = append(c.feedback, l)
		}
	})
}

// serviceC2D queues a cloud-to-device message the service sent: its "to"
// names the device, its application property iothub-ack asks for feedback.
// The outcome is accepted once queued, or rejected with amqp:not-found (no
// such device), amqp:link:message-size-exceeded (over 64 KB) or
// amqp:resource-limit-exceeded (50 messages wait; the hub's condition for a
// full queue is unverified, spec §10.10).
func (c *amqpConn) serviceC2D(in *amqpIn) amqpwire.DeliveryState {
	w, err := amqpwire.DecodeMessage(in.buf)
	if err != nil {
		return amqpwire.Rejected{Error: &amqpwire.Error{Condition: amqpwire.ConditionDecodeError, Description: err.Error()}}
	}
	m, err := fromWire(w)
	if err != nil {
		return amqpRejected(iothub.Errorf(iothub.CodeArgumentInvalid, "%v", err))
	}
	ad, err := iothub.ParseAMQPAddress(m.To)
	if err != nil || ad.Node != iothub.AMQPNodeDeviceBound {
		return amqpRejected(iothub.Errorf(iothub.CodeDeviceNotFound, "the message's \"to\" (%q) must name a device: /devices/{id}/messages/devicebound", m.To))
	}
	var opt C2DOptions
	kept := m.Properties[:0]
	for _, p := range m.Properties {
		if strings.EqualFold(p.Name, iothub.PropAck) {
			opt.Ack = p.Value
			continue
		}
		kept = append(kept, p)
	}
	m.Properties = kept
	m.To = ""
	if _, err := c.h.SendC2D(ad.Identity.DeviceID, *m, opt); err != nil {
		return amqpRejected(err)
	}
	return amqpwire.Accepted{}
}

// feedbackLocked sends pending feedback records on a feedback link while it
// has credit. With none pending it looks again after feedbackPoll: the hub
// tells no one when a record arrives.
func (c *amqpConn) feedbackLocked(l *amqpLink) {
	for l.sndCredit > 0 && !l.gone && !l.detached {
		recs := c.h.TakeFeedback(amqpFeedbackBatch)
		if len(recs) == 0 {
			c.armFeedbackLocked()
			return
		}
		body, err := json.Marshal(recs)
		if err != nil {
			return
		}
		msg := &amqpwire.Message{
			Properties: &amqpwire.Properties{
				MessageID:   newGUID(),
				UserID:      []byte(iothub.HubName(c.h.HostName())),
				ContentType: iothub.ContentTypeFeedback,
			},
			Data: [][]byte{body},
		}
		b, err := msg.Encode(nil)
		if err != nil {
			return
		}
		c.sendLocked(l, &amqpOut{payload: b})
	}
}

func (c *amqpConn) armFeedbackLocked() {
	if c.timers.feedback == nil {
		c.timers.feedback = time.AfterFunc(c.opts.feedbackPoll, c.feedbackTick)
		return
	}
	c.timers.feedback.Reset(c.opts.feedbackPoll)
}

func (c *amqpConn) feedbackTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	for _, l := range c.feedback {
		c.feedbackLocked(l)
	}
}
