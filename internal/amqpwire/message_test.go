package amqpwire

import (
	"bytes"
	"errors"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	props := func(id any) *Properties {
		return &Properties{MessageID: id, CorrelationID: id, UserID: []byte("u"), To: "/devices/d/messages/events",
			Subject: "s", ReplyTo: "r", ContentType: "application/json", ContentEncoding: "utf-8",
			AbsoluteExpiryTime: ms(2000), CreationTime: ms(1000), GroupID: "g", GroupSequence: ptr(uint32(0)),
			ReplyToGroupID: "rg"}
	}
	tests := []struct {
		name string
		m    *Message
	}{
		{"empty", &Message{}},
		{"ulong id", &Message{Properties: props(uint64(1 << 40)), Data: [][]byte{[]byte("{}")}}},
		{"uuid id", &Message{Properties: props(UUID{1, 2, 3}), Data: [][]byte{{}}}},
		{"binary id", &Message{Properties: props([]byte{0, 1}), Data: [][]byte{[]byte("a"), []byte("b"), []byte("c")}}},
		{"string id", &Message{Properties: props("id-1"), Value: "body", HasValue: true}},
		{"every section", &Message{
			Header:                &Header{Durable: true, Priority: 9, TTL: ptr(uint32(0)), FirstAcquirer: true, DeliveryCount: 3},
			DeliveryAnnotations:   symMap("x-opt-lock-token", UUID{9}),
			MessageAnnotations:    strMap(Symbol("status"), int32(204), Symbol("version"), int64(7), uint64(5), "numeric key"),
			Properties:            props("p"),
			ApplicationProperties: strMap("iothub-messageschema", "v1", "n", int64(1)),
			Sequence:              [][]any{{uint8(1)}, {}},
			Footer:                symMap("hash", []byte{1}),
		}},
		{"null value body", &Message{Value: nil, HasValue: true}},
		{"twin response", &Message{Properties: &Properties{CorrelationID: "GetTwin-1"},
			MessageAnnotations: symMap("status", int32(200), "version", int64(12)),
			Data:               [][]byte{[]byte(`{"desired":{}}`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(got, tt.m); d != "" {
				t.Errorf("round trip differs at %s", d)
			}
			again, err := got.Encode(nil)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding changed the bytes: %v\n%x\n%x", err, again, b)
			}
		})
	}
}

// TestMessageIDKeepsType is the property the emulator relies on when it
// echoes a correlation-id: the AMQP type survives decode and encode.
func TestMessageIDKeepsType(t *testing.T) {
	for _, id := range []any{uint64(7), UUID{7}, []byte{7}, "7"} {
		in, err := (&Message{Properties: &Properties{MessageID: id}}).Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := DecodeMessage(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := (&Message{Properties: &Properties{CorrelationID: req.Properties.MessageID}}).Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := DecodeMessage(out)
		if err != nil {
			t.Fatal(err)
		}
		if !Equal(resp.Properties.CorrelationID, id) {
			t.Errorf("id %#v came back as %#v", id, resp.Properties.CorrelationID)
		}
	}
}

func TestMessageDecodeRejects(t *testing.T) {
	header := "00537045"
	props := "005373c0020140" // properties with null message-id
	data := "005375a00161"
	value := "005377a10161"
	tests := []struct {
		name string
		hex  string
	}{
		{"properties before header", props + header},
		{"header twice", header + header},
		{"data then value", data + value},
		{"value then data", value + data},
		{"two values", value + value},
		{"sequence then data", "005376" + "45" + data},
		{"footer before body", "00537845" + data},
		{"application-properties with symbol key", "005374c10402a3016140"},
		{"annotations with string key", "005372c10402a1016140"},
		{"message-id of type int", "005373c003015401"},
		{"correlation-id of type symbol", "005373c0080640404040" + "a30161"},
		{"data section of string", "005375a10161"},
		{"amqp-sequence of map", "005376c10100"},
		{"unknown section", "00537945"},
		{"not a section", "a10161"},
		{"truncated data", "005375a00561"},
		{"header of wrong type", "005370c003015201"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeMessage(unhexString(t, tt.hex))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeMessage = %+v, %v; want a *DecodeError", m, err)
			}
		})
	}
}

func TestMessageEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		m    *Message
	}{
		{"int32 message id", &Message{Properties: &Properties{MessageID: int32(1)}}},
		{"symbol correlation id", &Message{Properties: &Properties{CorrelationID: Symbol("x")}}},
		{"symbol application property key", &Message{ApplicationProperties: symMap("k", "v")}},
		{"data and value", &Message{Data: [][]byte{{}}, Value: "v"}},
		{"sequence and value", &Message{Sequence: [][]any{{}}, HasValue: true}},
		{"plain int in annotations", &Message{MessageAnnotations: symMap("status", 200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.m.Encode(nil); err == nil {
				t.Fatalf("Encode = %x, want an error", b)
			}
		})
	}
}

func TestBatch(t *testing.T) {
	msgs := []*Message{
		{Properties: &Properties{MessageID: "m1"}, ApplicationProperties: strMap("a", "1"), Data: [][]byte{[]byte(`{"i":1}`)}},
		{Properties: &Properties{MessageID: UUID{2}}, Data: [][]byte{[]byte(`{"i":2}`)}},
		{Data: [][]byte{{}}},
	}
	b, err := EncodeBatch(nil, msgs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(got, msgs); d != "" {
		t.Errorf("batch differs at %s", d)
	}

	// A data section that is not a message names the culprit.
	bad, err := (&Message{Data: [][]byte{b, []byte("not a message")}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeBatch(bad); err == nil || !bytes.Contains([]byte(err.Error()), []byte("message 1 of batch")) {
		t.Errorf("DecodeBatch of a bad inner message: %v", err)
	}
}

func TestDecodedDataAliasesInput(t *testing.T) {
	b, err := (&Message{Data: [][]byte{[]byte("abc")}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Data[0]
	if cap(d) != len(d) {
		t.Errorf("data section capacity %d exceeds its length %d: appending would overwrite the input", cap(d), len(d))
	}
	b[len(b)-1] = 'X'
	if string(d) != "abX" {
		t.Errorf("data section %q does not alias the input as documented", d)
	}
}

func TestSplitPlain(t *testing.T) {
	tests := []struct {
		name                string
		in                  string
		authz, authc, passw string
		ok                  bool
	}{
		{"no authzid", "\x00dev1@sas.hub\x00SharedAccessSignature sr=x", "", "dev1@sas.hub", "SharedAccessSignature sr=x", true},
		{"with authzid", "admin\x00dev1\x00pw", "admin", "dev1", "pw", true},
		{"empty password", "\x00dev1\x00", "", "dev1", "", true},
		{"one separator", "\x00dev1", "", "", "", false},
		{"empty authcid", "\x00\x00pw", "", "", "", false},
		{"three separators", "\x00a\x00b\x00c", "", "", "", false},
		{"empty", "", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, c, p, err := SplitPlain([]byte(tt.in))
			if (err == nil) != tt.ok || z != tt.authz || c != tt.authc || p != tt.passw {
				t.Fatalf("SplitPlain = %q, %q, %q, %v", z, c, p, err)
			}
			if tt.ok && string(PlainResponse(z, c, p)) != tt.in {
				t.Errorf("PlainResponse does not rebuild %q", tt.in)
			}
		})
	}
}
