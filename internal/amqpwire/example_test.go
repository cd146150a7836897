package amqpwire_test

import (
	"bytes"
	"fmt"

	"github.com/catmsim/catmsim/internal/amqpwire"
)

// A server reads a device's telemetry transfer and answers with a settled
// accepted disposition.
func Example() {
	// What the device sends.
	msg := &amqpwire.Message{
		Properties: &amqpwire.Properties{MessageID: uint64(42)},
		Data:       [][]byte{[]byte(`{"temperature":21.5}`)},
	}
	payload, _ := msg.Encode(nil)
	var wire bytes.Buffer
	dev := amqpwire.NewFrameWriter(&wire)
	id := uint32(0)
	_ = dev.WriteFrame(amqpwire.FrameAMQP, 0, &amqpwire.Transfer{Handle: 1, DeliveryID: &id, DeliveryTag: []byte{1}}, payload)

	// What the server does with it.
	fr := amqpwire.NewFrameReader(&wire, 65536)
	f, err := fr.ReadFrame()
	if err != nil {
		fmt.Println(err)
		return
	}
	p, body, err := f.Performative()
	if err != nil {
		fmt.Println(amqpwire.ErrorCondition(err), err)
		return
	}
	tr := p.(*amqpwire.Transfer)
	m, err := amqpwire.DecodeMessage(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("delivery %d on handle %d: message-id %v (%T), body %s\n",
		*tr.DeliveryID, tr.Handle, m.Properties.MessageID, m.Properties.MessageID, m.Data[0])

	reply, _ := amqpwire.AppendFrame(nil, amqpwire.FrameAMQP, f.Channel,
		&amqpwire.Disposition{Role: amqpwire.RoleReceiver, First: *tr.DeliveryID, Settled: true, State: amqpwire.Accepted{}}, nil)
	fmt.Printf("disposition frame: % x\n", reply)
	// Output:
	// delivery 0 on handle 1: message-id 42 (uint64), body {"temperature":21.5}
	// disposition frame: 00 00 00 16 02 00 00 00 00 53 15 c0 09 05 41 43 40 41 00 53 24 45
}

// A correlation-id keeps its AMQP type when it is echoed, and the twin
// status goes out as int, the version as long.
func ExampleMessage_Encode() {
	req := &amqpwire.Message{Properties: &amqpwire.Properties{MessageID: "GetTwin-1"}}
	resp := &amqpwire.Message{
		Properties: &amqpwire.Properties{CorrelationID: req.Properties.MessageID},
		MessageAnnotations: amqpwire.NewMap(
			amqpwire.MapEntry{Key: amqpwire.Symbol("status"), Value: int32(200)},
			amqpwire.MapEntry{Key: amqpwire.Symbol("version"), Value: int64(3)},
		),
	}
	b, _ := resp.Encode(nil)
	fmt.Printf("% x\n", b)
	// Output:
	// 00 53 72 c1 19 04 a3 06 73 74 61 74 75 73 71 00 00 00 c8 a3 07 76 65 72 73 69 6f 6e 55 03 00 53 73 c0 11 06 40 40 40 40 40 a1 09 47 65 74 54 77 69 6e 2d 31
}
