package hub

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// fromWire maps a decoded AMQP message to the hub's message through the wire
// facts shared with the device side (iothub.FromAMQP).
func fromWire(w *amqpwire.Message) (*iothub.Message, error) {
	var a iothub.AMQPMessage
	if p := w.Properties; p != nil {
		a.MessageID, a.CorrelationID, a.UserID, a.To = p.MessageID, p.CorrelationID, p.UserID, p.To
		a.ContentType, a.ContentEncoding = string(p.ContentType), string(p.ContentEncoding)
		a.AbsoluteExpiryTime = p.AbsoluteExpiryTime
	}
	for _, e := range w.ApplicationProperties.Entries() {
		a.ApplicationProperties = append(a.ApplicationProperties, iothub.AMQPProperty{Name: e.Key.(string), Value: e.Value})
	}
	for _, e := range w.MessageAnnotations.Entries() {
		var name string
		switch k := e.Key.(type) {
		case amqpwire.Symbol:
			name = string(k)
		case uint64:
			name = strconv.FormatUint(k, 10)
		}
		a.MessageAnnotations = append(a.MessageAnnotations, iothub.AMQPProperty{Name: name, Value: e.Value})
	}
	body, err := wireBody(w)
	if err != nil {
		return nil, err
	}
	a.Body = body
	return iothub.FromAMQP(&a)
}

// wireBody is a message's body as bytes: its data sections joined, or an
// amqp-value holding binary or text (Python's qpid-proton sends a string).
func wireBody(w *amqpwire.Message) ([]byte, error) {
	switch {
	case len(w.Data) > 0:
		return joinData(w.Data), nil
	case len(w.Sequence) > 0:
		return nil, fmt.Errorf("%w: an amqp-sequence body; IoT Hub takes data sections", iothub.ErrAMQPValue)
	case !w.HasValue || w.Value == nil:
		return nil, nil
	}
	if b, ok := w.Value.([]byte); ok {
		return b, nil
	}
	s, ok := iothub.AMQPValueText(w.Value)
	if !ok {
		return nil, fmt.Errorf("%w: an amqp-value body holding a %T; IoT Hub takes data sections", iothub.ErrAMQPValue, w.Value)
	}
	return []byte(s), nil
}

func joinData(parts [][]byte) []byte {
	if len(parts) == 1 {
		return parts[0]
	}
	return bytes.Join(parts, nil)
}

// toWire builds an AMQP message from the codec-neutral form: symbols where
// AMQP wants them (content-type, content-encoding, annotation keys), the
// body as one data section.
func toWire(a *iothub.AMQPMessage) *amqpwire.Message {
	w := &amqpwire.Message{
		Properties: &amqpwire.Properties{
			MessageID: a.MessageID, CorrelationID: a.CorrelationID, UserID: a.UserID, To: a.To,
			ContentType: amqpwire.Symbol(a.ContentType), ContentEncoding: amqpwire.Symbol(a.ContentEncoding),
			AbsoluteExpiryTime: a.AbsoluteExpiryTime,
		},
		Data: [][]byte{a.Body},
	}
	if a.Body == nil {
		w.Data = [][]byte{{}}
	}
	if len(a.ApplicationProperties) > 0 {
		w.ApplicationProperties = amqpwire.NewMap()
		for _, p := range a.ApplicationProperties {
			w.ApplicationProperties.Set(p.Name, p.Value)
		}
	}
	if len(a.MessageAnnotations) > 0 {
		w.MessageAnnotations = amqpwire.NewMap()
		for _, p := range a.MessageAnnotations {
			w.MessageAnnotations.Set(amqpwire.Symbol(p.Name), p.Value)
		}
	}
	return w
}
