package hub

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// rawAMQP is a hand-driven peer on an in-memory pipe to one server
// connection, for what no client library sends: malformed frames, limits,
// silence.
type rawAMQP struct {
	t    *testing.T
	c    net.Conn
	fr   *amqpwire.FrameReader
	done chan struct{} // closed when the server's connection ended
}

func pipeAMQP(t *testing.T, h *Hub, set func(*amqpOptions)) *rawAMQP {
	t.Helper()
	opts := defaultAMQPOptions()
	opts.connectTimeout = 5 * time.Second
	if set != nil {
		set(&opts)
	}
	f := newAMQPFront(h, opts)
	client, server := net.Pipe()
	r := &rawAMQP{t: t, c: client, fr: amqpwire.NewFrameReader(client, 1<<20), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		f.serve(server, AMQP, nil)
	}()
	t.Cleanup(func() {
		client.Close()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("the server connection did not end after the peer went away")
		}
		f.close()
	})
	return r
}

func (r *rawAMQP) write(b []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("writing to the server: %v", err)
	}
}

func (r *rawAMQP) frame(typ amqpwire.FrameType, ch uint16, p amqpwire.Performative, payload []byte) {
	r.t.Helper()
	b, err := amqpwire.AppendFrame(nil, typ, ch, p, payload)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(b)
}

func (r *rawAMQP) header() amqpwire.ProtocolHeader {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := r.fr.ReadProtocolHeader()
	if err != nil {
		r.t.Fatalf("reading the server's header: %v", err)
	}
	return h
}

// next reads the next frame with a performative (empty frames are returned
// as nil).
func (r *rawAMQP) next() amqpwire.Performative {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := r.fr.ReadFrame()
	if err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	if f.Body == nil {
		return nil
	}
	p, _, err := f.Performative()
	if err != nil {
		r.t.Fatalf("the server sent an undecodable frame: %v", err)
	}
	return p
}

// open does the plain AMQP handshake; idle is the idle-time-out the peer
// asks for.
func (r *rawAMQP) open(idle uint32) *amqpwire.Open {
	r.t.Helper()
	hdr := amqpwire.ProtocolAMQP.Header().Bytes()
	r.write(hdr[:])
	if h := r.header(); h.ID != amqpwire.ProtocolAMQP {
		r.t.Fatalf("server header %+v", h)
	}
	r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Open{ContainerID: "raw", IdleTimeout: idle}, nil)
	o, ok := r.next().(*amqpwire.Open)
	if !ok {
		r.t.Fatal("the server did not answer with open")
	}
	return o
}

// expectClose reads until the server's close, checks its condition, and
// then the end of the stream.
func (r *rawAMQP) expectClose(cond amqpwire.Symbol) {
	r.t.Helper()
	for {
		p := r.next()
		if cl, ok := p.(*amqpwire.Close); ok {
			if cl.Error == nil || cl.Error.Condition != cond {
				r.t.Fatalf("close with %v, want %s", cl.Error, cond)
			}
			r.expectEOF()
			return
		}
	}
}

func (r *rawAMQP) expectEOF() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, r.c); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		r.t.Fatalf("after %d more bytes: %v, want the server to close", n, err)
	}
}

func TestAMQPMalformedInput(t *testing.T) {
	h := newTestHub(t, nil)
	begin := func(r *rawAMQP, ch uint16) {
		r.frame(amqpwire.FrameAMQP, ch, &amqpwire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: math.MaxUint32}, nil)
		if _, ok := r.next().(*amqpwire.Begin); !ok {
			t.Fatal("no begin back")
		}
	}
	tests := []struct {
		name string
		opts func(*amqpOptions)
		run  func(r *rawAMQP)
	}{
		{"not AMQP", nil, func(r *rawAMQP) {
			r.write([]byte("GET / HTTP/1.1\r\n\r\n"))
			if h := r.header(); h.ID != amqpwire.ProtocolSASL {
				t.Fatalf("answered with %+v, want the SASL header", h)
			}
			r.expectEOF()
		}},
		{"TLS inside AMQP", nil, func(r *rawAMQP) {
			r.write([]byte("AMQP\x02\x01\x00\x00"))
			r.header()
			r.expectEOF()
		}},
		{"frame above max-frame-size", nil, func(r *rawAMQP) {
			r.open(0)
			r.write([]byte{0x40, 0, 0, 0, 2, 0, 0, 0})
			r.expectClose(amqpwire.ConditionFramingError)
		}},
		{"frame header with a bad data offset", nil, func(r *rawAMQP) {
			r.open(0)
			r.write([]byte{0, 0, 0, 8, 1, 0, 0, 0})
			r.expectClose(amqpwire.ConditionFramingError)
		}},
		{"garbage body", nil, func(r *rawAMQP) {
			r.open(0)
			r.write([]byte{0, 0, 0, 12, 2, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc})
			r.expectClose(amqpwire.ConditionDecodeError)
		}},
		{"truncated performative", nil, func(r *rawAMQP) {
			r.open(0)
			b, _ := amqpwire.AppendFrame(nil, amqpwire.FrameAMQP, 0, &amqpwire.Begin{IncomingWindow: 1, OutgoingWindow: 1}, nil)
			b = b[:len(b)-3]
			binary.BigEndian.PutUint32(b, uint32(len(b)))
			r.write(b)
			r.expectClose(amqpwire.ConditionDecodeError)
		}},
		{"truncated frame, then the peer goes", nil, func(r *rawAMQP) {
			r.open(0)
			r.write([]byte{0, 0, 1, 0, 2, 0, 0, 0, 0x00, 0x53})
			r.c.Close()
			select {
			case <-r.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the server hangs on a truncated frame")
			}
		}},
		{"begin before open", nil, func(r *rawAMQP) {
			hdr := amqpwire.ProtocolAMQP.Header().Bytes()
			r.write(hdr[:])
			r.header()
			r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Begin{IncomingWindow: 1, OutgoingWindow: 1}, nil)
			r.expectClose(amqpwire.ConditionFramingError)
		}},
		{"SASL frame after open", nil, func(r *rawAMQP) {
			r.open(0)
			r.frame(amqpwire.FrameSASL, 0, &amqpwire.SASLInit{Mechanism: "PLAIN"}, nil)
			r.expectClose(amqpwire.ConditionFramingError)
		}},
		{"channel above channel-max", nil, func(r *rawAMQP) {
			if o := r.open(0); o.ChannelMax != 8191 || o.MaxFrameSize != 65536 || o.IdleTimeout != 240000 {
				t.Fatalf("the hub's open: %+v", o)
			}
			r.frame(amqpwire.FrameAMQP, 8192, &amqpwire.Begin{IncomingWindow: 1, OutgoingWindow: 1}, nil)
			r.expectClose(amqpwire.ConditionFramingError)
		}},
		{"attach on a channel with no session", nil, func(r *rawAMQP) {
			r.open(0)
			r.frame(amqpwire.FrameAMQP, 3, &amqpwire.Attach{Name: "x", Handle: 0, Target: &amqpwire.Target{Address: "$cbs"}}, nil)
			r.expectClose(amqpwire.ConditionNotAllowed)
		}},
		{"handle above handle-max", nil, func(r *rawAMQP) {
			r.open(0)
			begin(r, 0)
			r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "x", Handle: 256, Target: &amqpwire.Target{Address: "$cbs"}}, nil)
			r.expectClose(amqpwire.ConditionFramingError)
		}},
		{"handle in use", nil, func(r *rawAMQP) {
			r.open(0)
			begin(r, 0)
			for i := 0; i < 2; i++ {
				r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "x", Handle: 1, Target: &amqpwire.Target{Address: "$cbs"}}, nil)
			}
			for {
				if e, ok := r.next().(*amqpwire.End); ok {
					if e.Error == nil || e.Error.Condition != amqpwire.ConditionHandleInUse {
						t.Fatalf("end with %v", e.Error)
					}
					return
				}
			}
		}},
		{"more links than the connection allows", func(o *amqpOptions) { o.maxLinks = 1 }, func(r *rawAMQP) {
			r.open(0)
			begin(r, 0)
			r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "a", Handle: 0, Target: &amqpwire.Target{Address: "$cbs"}}, nil)
			r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "b", Handle: 1, Target: &amqpwire.Target{Address: "$cbs"}}, nil)
			for {
				if d, ok := r.next().(*amqpwire.Detach); ok {
					if d.Handle != 1 || d.Error == nil || d.Error.Condition != amqpwire.ConditionResourceLimitExceeded {
						t.Fatalf("detach %+v %v", d, d.Error)
					}
					return
				}
			}
		}},
		{"transfer without credit", func(o *amqpOptions) { o.credit = 1 }, func(r *rawAMQP) {
			r.open(0)
			begin(r, 0)
			r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "a", Handle: 0, Target: &amqpwire.Target{Address: "$cbs"}, InitialDeliveryCount: u32(0)}, nil)
			msg, _ := (&amqpwire.Message{Value: "token"}).Encode(nil)
			for i := uint32(0); i < 2; i++ {
				r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Transfer{Handle: 0, DeliveryID: u32(i), DeliveryTag: []byte{byte(i)}, Settled: true}, msg)
			}
			for {
				if d, ok := r.next().(*amqpwire.Detach); ok {
					if d.Error == nil || d.Error.Condition != amqpwire.ConditionTransferLimitExceeded {
						t.Fatalf("detach with %v", d.Error)
					}
					return
				}
			}
		}},
		{"SASL MSSBCBS", nil, func(r *rawAMQP) {
			hdr := amqpwire.ProtocolSASL.Header().Bytes()
			r.write(hdr[:])
			r.header()
			mech, ok := r.next().(*amqpwire.SASLMechanisms)
			if !ok || len(mech.Mechanisms) != 4 || mech.Mechanisms[0] != "MSSBCBS" {
				t.Fatalf("mechanisms %+v", mech)
			}
			r.frame(amqpwire.FrameSASL, 0, &amqpwire.SASLInit{Mechanism: "MSSBCBS"}, nil)
			if out, ok := r.next().(*amqpwire.SASLOutcome); !ok || out.Code != amqpwire.SASLOK {
				t.Fatalf("outcome %+v", out)
			}
			r.open(0)
		}},
		{"SASL mechanism not offered", nil, func(r *rawAMQP) {
			hdr := amqpwire.ProtocolSASL.Header().Bytes()
			r.write(hdr[:])
			r.header()
			r.next()
			r.frame(amqpwire.FrameSASL, 0, &amqpwire.SASLInit{Mechanism: "SCRAM-SHA-1"}, nil)
			if out, ok := r.next().(*amqpwire.SASLOutcome); !ok || out.Code != amqpwire.SASLAuth {
				t.Fatalf("outcome %+v", out)
			}
			r.expectEOF()
		}},
		{"silent before open", func(o *amqpOptions) { o.connectTimeout = 50 * time.Millisecond }, func(r *rawAMQP) {
			r.expectEOF()
		}},
		{"silent after open", func(o *amqpOptions) { o.idleTimeout = 100 * time.Millisecond }, func(r *rawAMQP) {
			if o := r.open(0); o.IdleTimeout != 100 {
				t.Fatalf("idle-time-out %d", o.IdleTimeout)
			}
			r.expectClose(amqpwire.ConditionResourceLimitExceeded)
		}},
		{"heartbeats for the peer's idle-time-out", nil, func(r *rawAMQP) {
			r.open(80)
			for i := 0; i < 3; i++ {
				if p := r.next(); p != nil {
					t.Fatalf("got %T, want empty frames", p)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(pipeAMQP(t, h, tt.opts))
		})
	}
}

// TestAMQPBatchOfMessagesDecodesEach sends a batch by hand: each data
// section of a transfer of format 0x80013700 is a message.
func TestAMQPBatchOfMessagesDecodesEach(t *testing.T) {
	h := newTestHub(t, nil)
	r := pipeAMQP(t, h, nil)
	r.open(0)
	r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: math.MaxUint32}, nil)
	r.next()
	cbsMsg, _ := (&amqpwire.Message{
		Properties:            &amqpwire.Properties{MessageID: uint64(1), ReplyTo: "cbs"},
		ApplicationProperties: amqpwire.NewMap(amqpwire.MapEntry{Key: "operation", Value: "put-token"}, amqpwire.MapEntry{Key: "type", Value: iothub.CBSTokenTypeSAS}, amqpwire.MapEntry{Key: "name", Value: "test.azure-devices.net/devices/b1"}),
		Value:                 devTok("b1", time.Hour),
	}).Encode(nil)
	r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "cbs-s", Handle: 0, Target: &amqpwire.Target{Address: "$cbs"}, InitialDeliveryCount: u32(0)}, nil)
	r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "cbs-r", Handle: 1, Role: amqpwire.RoleReceiver, Source: &amqpwire.Source{Address: "$cbs"}}, nil)
	r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Flow{NextIncomingID: u32(0), IncomingWindow: 100, OutgoingWindow: 100, Handle: u32(1), DeliveryCount: u32(0), LinkCredit: u32(5)}, nil)
	r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Transfer{Handle: 0, DeliveryID: u32(0), DeliveryTag: []byte{0}}, cbsMsg)
	r.frame(amqpwire.FrameAMQP, 0, &amqpwire.Attach{Name: "ev", Handle: 2, Target: &amqpwire.Target{Address: "/devices/b1/messages/events"}, InitialDeliveryCount: u32(0)}, nil)
	batch, err := amqpwire.EncodeBatch(nil, []*amqpwire.Message{{Data: [][]byte{[]byte("one")}}, {Value: "two"}, {Data: [][]byte{[]byte("th"), []byte("ree")}}})
	if err != nil {
		t.Fatal(err)
	}
	// Split over three frames, as a client with a small frame size would.
	for i, part := range [][]byte{batch[:10], batch[10:20], batch[20:]} {
		tr := &amqpwire.Transfer{Handle: 2, More: i < 2}
		if i == 0 {
			tr.DeliveryID, tr.DeliveryTag, tr.MessageFormat = u32(1), []byte{1}, amqpwire.MessageFormatBatch
		}
		r.frame(amqpwire.FrameAMQP, 0, tr, part)
	}
	for {
		d, ok := r.next().(*amqpwire.Disposition)
		if !ok || d.First != 1 {
			continue
		}
		if _, accepted := d.State.(amqpwire.Accepted); !accepted || !d.Settled {
			t.Fatalf("batch disposition %+v", d)
		}
		break
	}
	var bodies [][]byte
	for _, m := range h.Store().For(iothub.Identity{DeviceID: "b1"}) {
		bodies = append(bodies, m.Message.Body)
	}
	if !bytes.Equal(bytes.Join(bodies, []byte(",")), []byte("one,two,three")) {
		t.Fatalf("stored %q", bodies)
	}
}
