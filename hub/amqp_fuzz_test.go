package hub

import (
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// fuzzSeeds are conversations a client could have after its protocol
// header, so that the fuzzer starts deep inside the state machine.
func fuzzSeeds(t testing.TB) map[string][]byte {
	frame := func(b []byte, typ amqpwire.FrameType, ch uint16, p amqpwire.Performative, payload []byte) []byte {
		out, err := amqpwire.AppendFrame(b, typ, ch, p, payload)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	msg := func(m *amqpwire.Message) []byte {
		b, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var open []byte
	open = frame(open, amqpwire.FrameAMQP, 0, &amqpwire.Open{ContainerID: "fuzz", IdleTimeout: 1000}, nil)
	open = frame(open, amqpwire.FrameAMQP, 0, &amqpwire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: math.MaxUint32}, nil)
	cbs := append([]byte(nil), open...)
	cbs = frame(cbs, amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "s", Handle: 0, Target: &amqpwire.Target{Address: "$cbs"}, InitialDeliveryCount: u32(0)}, nil)
	cbs = frame(cbs, amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "r", Handle: 1, Role: amqpwire.RoleReceiver, Source: &amqpwire.Source{Address: "$cbs"}}, nil)
	cbs = frame(cbs, amqpwire.FrameAMQP, 0, &amqpwire.Flow{IncomingWindow: 100, OutgoingWindow: 100, Handle: u32(1), DeliveryCount: u32(0), LinkCredit: u32(10)}, nil)
	cbs = frame(cbs, amqpwire.FrameAMQP, 0, &amqpwire.Transfer{Handle: 0, DeliveryID: u32(0), DeliveryTag: []byte{0}}, msg(&amqpwire.Message{
		Properties:            &amqpwire.Properties{MessageID: uint64(1)},
		ApplicationProperties: amqpwire.NewMap(amqpwire.MapEntry{Key: "operation", Value: "put-token"}, amqpwire.MapEntry{Key: "type", Value: iothub.CBSTokenTypeSAS}, amqpwire.MapEntry{Key: "name", Value: testHost + "/devices/f1"}),
		Value:                 devTok("f1", time.Hour),
	}))
	dev := append([]byte(nil), cbs...)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "ev", Handle: 2, Target: &amqpwire.Target{Address: "/devices/f1/messages/events"}, InitialDeliveryCount: u32(0)}, nil)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Transfer{Handle: 2, DeliveryID: u32(1), DeliveryTag: []byte{1}, More: true}, []byte{0x00, 0x53})
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Transfer{Handle: 2}, []byte{0x75, 0xa0, 0x01, 'x'})
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "c2d", Handle: 3, Role: amqpwire.RoleReceiver, Source: &amqpwire.Source{Address: "/devices/f1/messages/devicebound"}}, nil)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Flow{IncomingWindow: 100, OutgoingWindow: 100, Handle: u32(3), DeliveryCount: u32(0), LinkCredit: u32(5), Drain: true}, nil)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "tw", Handle: 4, Target: &amqpwire.Target{Address: "/devices/f1/twin"}, InitialDeliveryCount: u32(0)}, nil)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Transfer{Handle: 4, DeliveryID: u32(2), DeliveryTag: []byte{2}, Settled: true}, msg(&amqpwire.Message{
		MessageAnnotations: amqpwire.NewMap(amqpwire.MapEntry{Key: amqpwire.Symbol("operation"), Value: "GET"}),
		Properties:         &amqpwire.Properties{CorrelationID: "g"}, Data: [][]byte{[]byte(" ")},
	}))
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Disposition{Role: amqpwire.RoleReceiver, First: 0, Last: u32(math.MaxUint32), Settled: true, State: amqpwire.Accepted{}}, nil)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Detach{Handle: 2, Closed: true}, nil)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.End{}, nil)
	dev = frame(dev, amqpwire.FrameAMQP, 0, &amqpwire.Close{}, nil)
	var sasl []byte
	sasl = frame(sasl, amqpwire.FrameSASL, 0, &amqpwire.SASLInit{Mechanism: "PLAIN", InitialResponse: amqpwire.PlainResponse("", "f1@sas.test", devTok("f1", time.Hour))}, nil)
	hdr := amqpwire.ProtocolAMQP.Header().Bytes()
	sasl = append(sasl, hdr[:]...)
	sasl = append(sasl, open...)
	return map[string][]byte{"open": open, "cbs": cbs, "device": dev, "sasl": sasl}
}

// FuzzAMQPConn drives one server connection over an in-memory pipe with
// arbitrary bytes after a valid protocol header: the connection must end
// without a panic or a hang once the peer has said all it had to say.
func FuzzAMQPConn(f *testing.F) {
	h, err := New(Config{HostName: testHost, GroupKey: groupKey, StoreLimit: 100})
	if err != nil {
		f.Fatal(err)
	}
	for name, seed := range fuzzSeeds(f) {
		f.Add(name == "sasl", seed)
	}
	f.Add(false, []byte{0x40, 0, 0, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, sasl bool, data []byte) {
		opts := defaultAMQPOptions()
		opts.connectTimeout, opts.idleTimeout, opts.closeGrace = time.Second, 200*time.Millisecond, time.Second
		opts.maxPending, opts.feedbackPoll = 1<<20, 10*time.Millisecond
		front := newAMQPFront(h, opts)
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			front.serve(server, AMQP, nil)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		id := amqpwire.ProtocolAMQP
		if sasl {
			id = amqpwire.ProtocolSASL
		}
		hdr := id.Header().Bytes()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := client.Write(hdr[:]); err == nil {
			_, _ = client.Write(data)
		}
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the server connection did not end after the peer closed")
		}
		front.close()
	})
}
