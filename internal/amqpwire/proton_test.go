package amqpwire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/go_vectors.json with this encoder's output")

// protonVector is one entry of testdata/proton_vectors.json, written by
// testdata/proton_vectors.py from Qpid Proton's encoder.
type protonVector struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Hex    string `json:"hex"`
	Proton string `json:"proton"`
}

// frameWant is the expected content of a frame vector.
type frameWant struct {
	header  *ProtocolHeader // a protocol header instead of a frame
	typ     FrameType
	perf    Performative // nil for an empty frame
	payload *Message     // a transfer's payload
}

// want is the expected decoding of a vector, and whether this package's
// encoding of it must equal proton's bytes exactly (true where proton picks
// the same constructors and leaves out the same trailing fields).
type want struct {
	value     any
	message   *Message
	frame     *frameWant
	identical bool
}

func protonWants(t *testing.T) map[string]want {
	created := ms(1700000000123)
	telemetry := &Message{
		Header:                &Header{Priority: 4},
		Properties:            &Properties{MessageID: "msg-1"},
		ApplicationProperties: strMap("temperatureAlert", "false"),
		Data:                  [][]byte{[]byte(`{"temperature":21.5,"humidity":40}`)},
	}
	telemetrySource := &Source{Address: "dev1", ExpiryPolicy: ExpirySessionEnd}
	telemetryTarget := &Target{Address: "amqps://hub.example/devices/dev1/messages/events", ExpiryPolicy: ExpirySessionEnd}
	c2dSource := &Source{Address: "/devices/dev1/messages/deviceBound", ExpiryPolicy: ExpirySessionEnd, Timeout: 30}
	c2dTarget := &Target{Address: "dev1", ExpiryPolicy: ExpirySessionEnd}
	sasl := func(p Performative, identical bool) want {
		return want{frame: &frameWant{typ: FrameSASL, perf: p}, identical: identical}
	}
	amqp := func(p Performative, identical bool) want {
		return want{frame: &frameWant{typ: FrameAMQP, perf: p}, identical: identical}
	}
	header := func(id ProtocolID) want {
		h := id.Header()
		return want{frame: &frameWant{header: &h}, identical: true}
	}
	v := func(x any) want { return want{value: x, identical: true} }
	w := map[string]want{
		"null":               v(nil),
		"true":               v(true),
		"false":              v(false),
		"ubyte":              v(uint8(255)),
		"ushort":             v(uint16(65535)),
		"uint0":              v(uint32(0)),
		"smalluint":          v(uint32(200)),
		"uint":               v(uint32(70000)),
		"ulong0":             v(uint64(0)),
		"smallulong":         v(uint64(7)),
		"ulong_max":          v(uint64(math.MaxUint64)),
		"byte":               v(int8(-128)),
		"short":              v(int16(-300)),
		"smallint":           v(int32(-5)),
		"int":                v(int32(100000)),
		"smalllong":          v(int64(3)),
		"long_min":           v(int64(math.MinInt64)),
		"float":              v(float32(1.5)),
		"double":             v(float64(-2.25)),
		"decimal32":          v(Decimal32{1, 2, 3, 4}),
		"decimal64":          v(Decimal64{1, 2, 3, 4, 5, 6, 7, 8}),
		"decimal128":         v(Decimal128{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}),
		"char":               v(Char('\U0001F600')),
		"timestamp":          v(created),
		"timestamp_negative": v(ms(-1)),
		"uuid":               v(mustUUID(t, "f81d4fae-7dec-11d0-a765-00a0c91e6bf6")),
		"vbin8":              v([]byte{0, 1, 0xfe, 0xff}),
		"vbin32": v(func() []byte {
			b := make([]byte, 256, 259)
			for i := range b {
				b[i] = byte(i)
			}
			return append(b, "xyz"...)
		}()),
		"str8":             v("h\u00e9llo"),
		"str32":            v(strings.Repeat("a", 300)),
		"sym8":             v(Symbol("com.microsoft:client-version")),
		"sym32":            v(Symbol(strings.Repeat("s", 256))),
		"list0":            v([]any{}),
		"list":             {value: []any{uint32(1), "two", nil, []any{Symbol("x")}, true}},
		"map":              {value: strMap("status", int32(200), Symbol("version"), int64(5))},
		"described_ulong":  v(Described{Descriptor: uint64(0x75), Value: []byte("payload")}),
		"described_symbol": {value: Described{Descriptor: Symbol("com.example:thing"), Value: []any{int64(1), "x"}}},
		"map_nonstring_keys": {value: strMap(uint64(1), "one", []byte{2}, nil,
			mustUUID(t, "00000000-0000-0000-0000-000000000003"), false)},
		"array_symbol": {value: SymbolArray("PLAIN", "ANONYMOUS")},
		"array_int":    {value: Array{Type: TypeInt, Values: []any{int32(1), int32(-1), int32(100000)}}},
		"array_uuid": {value: Array{Type: TypeUUID, Values: []any{
			mustUUID(t, "00000000-0000-0000-0000-000000000001"), mustUUID(t, "00000000-0000-0000-0000-000000000002")}}},
		"array_empty": {value: Array{Type: TypeString, Values: []any{}}},
		"array_described": {value: Array{Type: TypeList, Descriptor: Symbol("com.example:pair"),
			Values: []any{[]any{int64(1), int64(2)}, []any{"a"}}}},
		"array_of_array": {value: Array{Type: TypeArray, Values: []any{
			Array{Type: TypeBoolean, Values: []any{true, false}},
			Array{Type: TypeBoolean, Values: []any{}}}}},

		"msg_ulong_id": {message: &Message{
			Header: &Header{Durable: true, Priority: 4, TTL: ptr(uint32(60000))},
			MessageAnnotations: symMap("status", int32(200), "version", int64(3),
				"x-opt-sequence-number", uint64(9)),
			Properties: &Properties{
				MessageID: uint64(42), UserID: []byte("dev1"), To: "/devices/dev1/messages/events",
				Subject: "telemetry", ReplyTo: "/devices/dev1/messages/devicebound",
				CorrelationID: uint64(41), ContentType: "application/json", ContentEncoding: "utf-8",
				AbsoluteExpiryTime: ms(1700000000123 + 3600000), CreationTime: created,
				GroupID: "g", GroupSequence: ptr(uint32(7)), ReplyToGroupID: "rg",
			},
			ApplicationProperties: strMap("iothub-creation-time-utc", "2023-11-14T22:13:20Z", "temperatureAlert", "true"),
			Data:                  [][]byte{[]byte(`{"temperature":21.5}`)},
		}},
		"msg_uuid_id": {message: &Message{
			Header: &Header{Priority: 4},
			Properties: &Properties{MessageID: mustUUID(t, "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
				CorrelationID: mustUUID(t, "00000000-0000-0000-0000-000000001234")},
			Value: "x", HasValue: true,
		}},
		"msg_string_id": {message: &Message{
			Header:     &Header{Priority: 4},
			Properties: &Properties{MessageID: "twin:3f2504e0-4f89-11d3-9a0c-0305e82c3301", CorrelationID: "GetTwin-1"},
		}},
		"msg_binary_id": {message: &Message{
			Header:     &Header{Priority: 4},
			Properties: &Properties{MessageID: []byte{1, 2, 3}, CorrelationID: []byte{}},
			Value:      []any{int64(1), "a"}, HasValue: true,
		}},
		"msg_cbs_put_token": {message: &Message{
			Header: &Header{Priority: 4},
			Properties: &Properties{MessageID: "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
				To: "$cbs", ReplyTo: "cbs"},
			ApplicationProperties: strMap("operation", "put-token", "type", "servicebus.windows.net:sastoken",
				"name", "hub.example/devices/dev1"),
			Value:    "SharedAccessSignature sr=hub.example%2Fdevices%2Fdev1&sig=abc&se=1700003600",
			HasValue: true,
		}},
		"msg_multi_data": {message: &Message{
			Header: &Header{Durable: true, Priority: 4},
			MessageAnnotations: symMap("iothub-interface-id", "dtmi:x;1",
				"x-opt-enqueued-time", created),
			Properties:            &Properties{MessageID: uint64(1), ContentType: "application/octet-stream"},
			ApplicationProperties: strMap("k", "v"),
			Data:                  [][]byte{[]byte("first"), []byte("second"), {}},
			Footer:                symMap("f", true),
		}},
		"msg_amqp_sequence": {message: &Message{Sequence: [][]any{{int64(1), "a"}, {}}}},
		"msg_batch": {message: &Message{
			MessageAnnotations: symMap("x-opt-partition-key", "dev1"),
			// proton's own encodings of the inner messages
			Data: [][]byte{
				unhexString(t, "00537045005373c00501a1026d31005374d10000000a00000002a1016ea10131005377a0077b2269223a317d"),
				unhexString(t, "00537045005373c00501a1026d32005377a0077b2269223a327d"),
			},
		}},

		"c2s_header_3":        header(ProtocolSASL),
		"s2c_header_3":        header(ProtocolSASL),
		"c2s_header_0":        header(ProtocolAMQP),
		"s2c_header_0":        header(ProtocolAMQP),
		"s2c_sasl_mechanisms": sasl(&SASLMechanisms{Mechanisms: []Symbol{"ANONYMOUS"}}, true),
		"c2s_sasl_init":       sasl(&SASLInit{Mechanism: "ANONYMOUS", InitialResponse: []byte("anonymous")}, true),
		"s2c_sasl_outcome":    sasl(&SASLOutcome{Code: SASLOK}, true),
		"c2s_sasl_init_plain": sasl(&SASLInit{Mechanism: "PLAIN", InitialResponse: PlainResponse("", "dev1@sas.hub",
			"SharedAccessSignature sr=hub.example%2Fdevices%2Fdev1&sig=x&se=1")}, true),
		"c2s_open": amqp(&Open{ContainerID: "client-container", Hostname: "hub.example",
			MaxFrameSize: 65536, ChannelMax: 32767, IdleTimeout: 120000}, false),
		"s2c_open": amqp(&Open{ContainerID: "hub", MaxFrameSize: 65536, ChannelMax: 32767, IdleTimeout: 1000,
			OfferedCapabilities: []Symbol{"ANONYMOUS-RELAY"}, Properties: symMap("product", "emulator")}, false),
		"c2s_begin": amqp(&Begin{NextOutgoingID: 0, IncomingWindow: math.MaxInt32, OutgoingWindow: math.MaxInt32,
			HandleMax: math.MaxUint32}, true),
		"s2c_begin": amqp(&Begin{RemoteChannel: ptr(uint16(0)), NextOutgoingID: 0, IncomingWindow: math.MaxInt32,
			OutgoingWindow: math.MaxInt32, HandleMax: math.MaxUint32}, true),
		"c2s_attach": amqp(&Attach{Name: "telemetry-dev1", Handle: 0, Role: RoleSender,
			SndSettleMode: SndMixed, RcvSettleMode: RcvFirst, Source: telemetrySource, Target: telemetryTarget,
			InitialDeliveryCount: ptr(uint32(0)),
			Properties: symMap("com.microsoft:client-version", "catmsim/0.1",
				"com.microsoft:api-version", "2020-09-30")}, false),
		"c2s_attach_2": amqp(&Attach{Name: "c2d-dev1", Handle: 1, Role: RoleReceiver,
			SndSettleMode: SndMixed, RcvSettleMode: RcvSecond, Source: c2dSource, Target: c2dTarget,
			InitialDeliveryCount: ptr(uint32(0))}, false),
		"s2c_attach": amqp(&Attach{Name: "telemetry-dev1", Handle: 0, Role: RoleReceiver,
			SndSettleMode: SndMixed, RcvSettleMode: RcvFirst, Source: telemetrySource, Target: telemetryTarget,
			InitialDeliveryCount: ptr(uint32(0))}, false),
		"s2c_attach_2": amqp(&Attach{Name: "c2d-dev1", Handle: 1, Role: RoleSender,
			SndSettleMode: SndMixed, RcvSettleMode: RcvFirst, Source: c2dSource, Target: c2dTarget,
			InitialDeliveryCount: ptr(uint32(0))}, false),
		"s2c_flow": amqp(&Flow{NextIncomingID: ptr(uint32(0)), IncomingWindow: math.MaxInt32,
			NextOutgoingID: 0, OutgoingWindow: math.MaxInt32, Handle: ptr(uint32(0)),
			DeliveryCount: ptr(uint32(0)), LinkCredit: ptr(uint32(10))}, false),
		"c2s_transfer": {frame: &frameWant{typ: FrameAMQP, payload: telemetry,
			perf: &Transfer{Handle: 0, DeliveryID: ptr(uint32(0)), DeliveryTag: []byte("tag-0001")}}},
		"c2s_transfer_2": {frame: &frameWant{typ: FrameAMQP, payload: telemetry,
			perf: &Transfer{Handle: 0, DeliveryID: ptr(uint32(1)), DeliveryTag: []byte("tag-0002")}}},
		"s2c_disposition": amqp(&Disposition{Role: RoleReceiver, First: 0, Settled: true,
			State: Rejected{Error: &Error{Condition: ConditionMessageSizeExceeded, Description: "message too large",
				Info: symMap("max-size", uint64(262144))}}}, false),
		"s2c_disposition_2": amqp(&Disposition{Role: RoleReceiver, First: 1, Settled: true, State: Accepted{}}, true),
		"c2s_empty":         amqp(nil, true),
		"c2s_detach":        amqp(&Detach{Handle: 0, Closed: true}, true),
		"c2s_end":           amqp(&End{}, true),
		"c2s_close":         amqp(&Close{Error: &Error{Condition: ConditionConnectionForced, Description: "shutting down"}}, false),
	}
	return w
}

func mustEncode(t testing.TB, m *Message) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t *testing.T, name string, v any) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return true
}

// TestProtonVectors checks this codec against Qpid Proton both ways: it
// decodes what proton encoded into the expected Go values, and its own
// encodings of those values must be ones that proton decoded to the same
// thing (testdata/proton_verified.json) and, where flagged, byte-identical.
func TestProtonVectors(t *testing.T) {
	var vectors []protonVector
	if !readJSON(t, "proton_vectors.json", &vectors) {
		t.Fatal("testdata/proton_vectors.json is missing; run /usr/bin/python3 testdata/proton_vectors.py")
	}
	verified := map[string]string{}
	readJSON(t, "proton_verified.json", &verified)
	wants := protonWants(t)
	ours := map[string]string{}
	for _, vec := range vectors {
		t.Run(vec.Name, func(t *testing.T) {
			w, ok := wants[vec.Name]
			if !ok {
				t.Fatalf("no expectation for proton vector %s (%s)", vec.Name, vec.Proton)
			}
			raw := unhexString(t, vec.Hex)
			var enc []byte
			switch vec.Kind {
			case "value":
				got, n, err := DecodeValue(raw)
				if err != nil || n != len(raw) {
					t.Fatalf("DecodeValue = %v after %d of %d bytes", err, n, len(raw))
				}
				if !Equal(got, w.value) {
					t.Fatalf("decoded %#v, want %#v (proton: %s)", got, w.value, vec.Proton)
				}
				if enc, err = AppendValue(nil, w.value); err != nil {
					t.Fatal(err)
				}
				again, _, err := DecodeValue(enc)
				if err != nil || !Equal(again, w.value) {
					t.Fatalf("own encoding %x decodes to %#v, %v", enc, again, err)
				}
			case "message":
				got, err := DecodeMessage(raw)
				if err != nil {
					t.Fatal(err)
				}
				if d := diff(got, w.message); d != "" {
					t.Fatalf("decoded message differs at %s (proton: %s)", d, vec.Proton)
				}
				enc = mustEncode(t, w.message)
				again, err := DecodeMessage(enc)
				if err != nil {
					t.Fatal(err)
				}
				if d := diff(again, w.message); d != "" {
					t.Fatalf("own encoding %x decodes differently at %s", enc, d)
				}
			case "frame":
				enc = checkFrame(t, raw, w.frame, vec.Proton)
			default:
				t.Fatalf("unknown vector kind %q", vec.Kind)
			}
			ours[vec.Name] = hex.EncodeToString(enc)
			if w.identical && !bytes.Equal(enc, raw) {
				t.Errorf("encoding differs from proton's\n ours:   %x\n proton: %x", enc, raw)
			}
			if *update {
				return
			}
			switch v, ok := verified[vec.Name]; {
			case !ok:
				t.Errorf("proton has not checked this encoding; run go test -run TestProtonVectors -update, then /usr/bin/python3 testdata/proton_vectors.py")
			case v != hex.EncodeToString(enc):
				t.Errorf("encoding changed since proton checked it\n now:      %x\n verified: %s\nrun go test -run TestProtonVectors -update, then /usr/bin/python3 testdata/proton_vectors.py", enc, v)
			}
		})
	}
	if *update {
		b, err := json.MarshalIndent(ours, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "go_vectors.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkFrame decodes a frame vector, compares it with w, and returns this
// package's encoding of w.
func checkFrame(t *testing.T, raw []byte, w *frameWant, protonDesc string) []byte {
	t.Helper()
	if w.header != nil {
		h, err := ParseProtocolHeader(raw)
		if err != nil || h != *w.header || len(raw) != 8 {
			t.Fatalf("ParseProtocolHeader = %+v, %v; want %+v", h, err, *w.header)
		}
		b := h.Bytes()
		return b[:]
	}
	fr := NewFrameReader(bytes.NewReader(raw), 1<<20)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != w.typ || f.Size != uint32(len(raw)) {
		t.Fatalf("frame type %v size %d, want %v %d", f.Type, f.Size, w.typ, len(raw))
	}
	if w.perf == nil {
		if f.Body != nil {
			t.Fatalf("empty frame has body %x", f.Body)
		}
	} else {
		p, payload, err := f.Performative()
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(p, w.perf); d != "" {
			t.Fatalf("decoded %T differs at %s (proton: %s)", p, d, protonDesc)
		}
		checkPayload(t, payload, w.payload)
	}
	var payload []byte
	if w.payload != nil {
		payload = mustEncode(t, w.payload)
	}
	enc, err := AppendFrame(nil, w.typ, 0, w.perf, payload)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := NewFrameReader(bytes.NewReader(enc), 1<<20).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if w.perf != nil {
		p, payload, err := f2.Performative()
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(p, w.perf); d != "" {
			t.Fatalf("own encoding %x decodes differently at %s", enc, d)
		}
		checkPayload(t, payload, w.payload)
	}
	return enc
}

func checkPayload(t *testing.T, payload []byte, want *Message) {
	t.Helper()
	if want == nil {
		if len(payload) != 0 {
			t.Fatalf("unexpected payload %x", payload)
		}
		return
	}
	m, err := DecodeMessage(payload)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(m, want); d != "" {
		t.Fatalf("payload differs at %s", d)
	}
}
