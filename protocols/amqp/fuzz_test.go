package amqp

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
)

// hubMessages are messages as the hub sends them, encoded with the
// emulator's codec: a C2D message, a method call, twin answers, a desired
// update and a CBS answer.
func hubMessages(tb testing.TB) [][]byte {
	tb.Helper()
	lock := amqpwire.UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	msgs := []*amqpwire.Message{
		{
			Properties: &amqpwire.Properties{MessageID: "c-1", To: iothub.AMQPC2DTo("d"), CorrelationID: uint64(7), ContentType: "application/json",
				AbsoluteExpiryTime: time.Unix(1_800_000_000, 0)},
			ApplicationProperties: amqpwire.NewMap(amqpwire.MapEntry{Key: "k", Value: "v/w"}, amqpwire.MapEntry{Key: "n", Value: int32(3)}),
			MessageAnnotations: amqpwire.NewMap(
				amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationSequenceNumber), Value: uint64(9)},
				amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationEnqueuedTime), Value: time.Unix(1_700_000_000, 0)},
				amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationDeliveryCount), Value: uint8(2)},
				amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationLockToken), Value: lock},
			),
			Data: [][]byte{[]byte("open "), []byte("valve")},
		},
		{
			Properties:            &amqpwire.Properties{CorrelationID: lock},
			ApplicationProperties: amqpwire.NewMap(amqpwire.MapEntry{Key: iothub.AMQPPropMethodName, Value: "reboot"}),
			Data:                  [][]byte{[]byte(`{"delay":5}`)},
		},
		{
			Properties:         &amqpwire.Properties{CorrelationID: "0f8fad5b-d9cb-469f-a165-70867728950e"},
			MessageAnnotations: amqpwire.NewMap(amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationStatus), Value: int32(200)}),
			Data:               [][]byte{[]byte(`{"desired":{"$version":1},"reported":{"$version":1}}`)},
		},
		{
			Properties: &amqpwire.Properties{CorrelationID: "p-2"},
			MessageAnnotations: amqpwire.NewMap(amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationStatus), Value: int32(204)},
				amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationVersion), Value: int64(5)}),
			Data: [][]byte{{}},
		},
		{
			MessageAnnotations: amqpwire.NewMap(amqpwire.MapEntry{Key: amqpwire.Symbol(iothub.AnnotationVersion), Value: int64(3)}),
			Data:               [][]byte{[]byte(`{"interval":30,"$version":3}`)},
		},
		{
			Data: [][]byte{[]byte(`{"interval":30,"$version":4}`)},
		},
		{
			Properties: &amqpwire.Properties{CorrelationID: "put-1"},
			ApplicationProperties: amqpwire.NewMap(amqpwire.MapEntry{Key: iothub.CBSStatusCode, Value: int32(401)},
				amqpwire.MapEntry{Key: iothub.CBSStatusDescription, Value: "Unauthorized"}),
			HasValue: true,
		},
		{HasValue: true, Value: "a string body"},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := m.Encode(nil)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeHubMessage feeds the client's readings of what the hub sends
// with any bytes go-amqp takes for a message: none may panic; a C2D message
// keeps the body its sections hold; a method call, twin message or CBS answer
// either decodes to what its sections say or is refused.
func FuzzDecodeHubMessage(f *testing.F) {
	for _, b := range hubMessages(f) {
		f.Add(b, []byte{})
		f.Add(b, bytes.Repeat([]byte{0xab}, 16))
	}
	f.Fuzz(func(t *testing.T, b, tag []byte) {
		var w goamqp.Message
		if !unmarshal(t, &w, b) {
			return
		}
		w.DeliveryTag = tag
		body, bodyErr := wireBody(&w)

		c := decodeC2D(&w)
		if bodyErr == nil && !bytes.Equal(c.Body, body) {
			t.Fatalf("C2D body %q, sections hold %q", c.Body, body)
		}
		if c.DeliveryCount < 0 {
			t.Fatalf("delivery count %d", c.DeliveryCount)
		}
		if len(tag) == 16 && c.LockToken == "" {
			if _, ok := annotation(w.Annotations, iothub.AnnotationLockToken); !ok {
				t.Fatal("a 16-byte delivery tag gave no lock token")
			}
		}

		if r, err := decodeMethod(&w); err == nil {
			if r.name == "" || bodyErr != nil || !bytes.Equal(r.payload, body) {
				t.Fatalf("method %q with payload %q from sections %q (%v)", r.name, r.payload, body, bodyErr)
			}
			if _, err := iothub.AMQPIDString(r.corr); err != nil {
				t.Fatalf("method correlation id %T accepted", r.corr)
			}
		}

		if tm, err := decodeTwin(&w); err == nil {
			if !bytes.Equal(tm.body, body) {
				t.Fatalf("twin body %q from sections %q", tm.body, body)
			}
			if tm.hasCorr != (w.Properties != nil && w.Properties.CorrelationID != nil) {
				t.Fatalf("twin correlation %v for properties %+v", tm.hasCorr, w.Properties)
			}
		}

		if r, err := decodeCBS(&w); err == nil {
			if w.Properties == nil || w.Properties.CorrelationID == nil {
				t.Fatal("a CBS answer without a correlation-id decoded")
			}
			_ = statusError("connect", r.status, []byte(r.desc))
		}

		if m, err := fromWire(&w); err == nil && !bytes.Equal(m.Body, body) {
			t.Fatalf("message body %q from sections %q", m.Body, body)
		}
	})
}

// unmarshal decodes b with go-amqp as its receivers do, reporting whether it
// is a message. go-amqp v1.7.0 panics on a map with a binary key
// (Azure/go-amqp#369, open); such an input tests go-amqp, not this client's
// decoders, and is skipped. Any other panic fails the test.
func unmarshal(t *testing.T, w *goamqp.Message, b []byte) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if err, isErr := r.(runtime.Error); !isErr || !strings.Contains(err.Error(), "unhashable type") {
				panic(r)
			}
			t.Logf("skipped: go-amqp panics decoding it: %v", r)
			ok = false
		}
	}()
	return w.UnmarshalBinary(b) == nil
}

// TestDecodeHubMessages checks the readings of the hub's messages that the
// fuzz target starts from.
func TestDecodeHubMessages(t *testing.T) {
	msgs := hubMessages(t)
	read := func(b []byte) *goamqp.Message {
		var w goamqp.Message
		if err := w.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		return &w
	}
	c := decodeC2D(read(msgs[0]))
	if string(c.Body) != "open valve" || c.MessageID != "c-1" || c.CorrelationID != "7" || c.DeliveryCount != 2 ||
		c.LockToken != "01020304-0506-0708-090a-0b0c0d0e0f10" || !c.Enqueued.Equal(time.Unix(1_700_000_000, 0)) ||
		!c.ExpiryTime.Equal(time.Unix(1_800_000_000, 0)) || c.ContentType != "application/json" {
		t.Errorf("C2D %+v", c)
	}
	if v, _ := c.Get("n"); v != "3" {
		t.Errorf("C2D property n = %q", v)
	}
	m, err := decodeMethod(read(msgs[1]))
	wantCorr := goamqp.UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if err != nil || m.name != "reboot" || string(m.payload) != `{"delay":5}` || m.corr != wantCorr {
		t.Errorf("method %+v %v", m, err)
	}
	for i, want := range []struct {
		corr    string
		status  int
		version int64
	}{{"0f8fad5b-d9cb-469f-a165-70867728950e", 200, -1}, {"p-2", 204, 5}, {"", 0, 3}, {"", 0, 4}} {
		tm, err := decodeTwin(read(msgs[2+i]))
		if err != nil || tm.corr != want.corr || tm.status != want.status || tm.version != want.version {
			t.Errorf("twin message %d: %+v %v, want %+v", i, tm, err, want)
		}
	}
	r, err := decodeCBS(read(msgs[6]))
	if err != nil || r.corr != "put-1" || r.status != 401 || r.desc != "Unauthorized" {
		t.Errorf("CBS answer %+v %v", r, err)
	}
	if _, err := decodeMethod(read(msgs[7])); err == nil {
		t.Error("a message without a method name decoded as a method call")
	}
	if _, err := decodeCBS(read(msgs[7])); err == nil {
		t.Error("a message without a status decoded as a CBS answer")
	}
}
