package amqpwire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// fullPerformatives has every performative with every field set to a value
// other than its default, so that a field dropped or mixed up on either
// side shows in the round trip.
func fullPerformatives(t testing.TB) []Performative {
	rcvSecond := RcvSecond
	caps := []Symbol{"cap-a", "cap-b"}
	err := &Error{Condition: ConditionNotFound, Description: "no such device", Info: symMap("tracking-id", "abc")}
	return []Performative{
		&Open{ContainerID: "hub", Hostname: "hub.example", MaxFrameSize: 65536, ChannelMax: 9,
			IdleTimeout: 240000, OutgoingLocales: []Symbol{"en-US"}, IncomingLocales: []Symbol{"en-US", "de"},
			OfferedCapabilities: caps, DesiredCapabilities: []Symbol{"x"}, Properties: symMap("product", "catmsim")},
		&Begin{RemoteChannel: ptr(uint16(3)), NextOutgoingID: 1, IncomingWindow: 5000, OutgoingWindow: 6000,
			HandleMax: 255, OfferedCapabilities: caps, DesiredCapabilities: caps, Properties: symMap("p", int32(1))},
		&Attach{Name: "link-1", Handle: 7, Role: RoleReceiver, SndSettleMode: SndSettled, RcvSettleMode: RcvSecond,
			Source: &Source{Address: "/devices/d1/messages/deviceBound", Durable: DurabilityUnsettledState,
				ExpiryPolicy: ExpiryNever, Timeout: 60, Dynamic: true, DynamicNodeProperties: symMap("lifetime-policy", nil),
				DistributionMode: "move", Filter: symMap("apache.org:selector-filter:string", Described{Symbol("apache.org:selector-filter:string"), "a = 1"}),
				DefaultOutcome: Released{}, Outcomes: []Symbol{"amqp:accepted:list", "amqp:rejected:list"}, Capabilities: caps},
			Target: &Target{Address: "d1", Durable: DurabilityConfiguration, ExpiryPolicy: ExpiryLinkDetach,
				Timeout: 5, Dynamic: true, DynamicNodeProperties: symMap("x", true), Capabilities: caps},
			Unsettled: strMap([]byte{1}, Accepted{}.describe()), IncompleteUnsettled: true, InitialDeliveryCount: ptr(uint32(0)),
			MaxMessageSize: 262144, OfferedCapabilities: caps, DesiredCapabilities: caps,
			Properties: symMap("com.microsoft:api-version", "2020-09-30", "com.microsoft:timeout", uint32(60000))},
		&Flow{NextIncomingID: ptr(uint32(10)), IncomingWindow: 100, NextOutgoingID: 20, OutgoingWindow: 200,
			Handle: ptr(uint32(1)), DeliveryCount: ptr(uint32(2)), LinkCredit: ptr(uint32(3)), Available: ptr(uint32(4)),
			Drain: true, Echo: true, Properties: symMap("f", nil)},
		&Transfer{Handle: 1, DeliveryID: ptr(uint32(math.MaxUint32)), DeliveryTag: bytes.Repeat([]byte{0xab}, 16),
			MessageFormat: MessageFormatBatch, Settled: true, More: true, RcvSettleMode: &rcvSecond,
			State: Received{SectionNumber: 1, SectionOffset: 1 << 40}, Resume: true, Aborted: true, Batchable: true},
		&Disposition{Role: RoleReceiver, First: 5, Last: ptr(uint32(9)), Settled: true,
			State:     Modified{DeliveryFailed: true, UndeliverableHere: true, MessageAnnotations: symMap("x-opt-reason", "busy")},
			Batchable: true},
		&Disposition{Role: RoleSender, First: 0, State: Rejected{Error: err}},
		&Disposition{Role: RoleReceiver, First: 1, State: Accepted{}},
		&Disposition{Role: RoleReceiver, First: 2, State: Released{}},
		&Detach{Handle: 4, Closed: true, Error: err},
		&End{Error: err},
		&Close{Error: &Error{Condition: ConditionFramingError}},
		&SASLMechanisms{Mechanisms: []Symbol{"MSSBCBS", "ANONYMOUS", "PLAIN", "EXTERNAL"}},
		&SASLInit{Mechanism: "PLAIN", InitialResponse: PlainResponse("", "d1@sas.hub", "SharedAccessSignature sr=x"), Hostname: "hub.example"},
		&SASLChallenge{Challenge: []byte("c")},
		&SASLResponse{Response: []byte{}},
		&SASLOutcome{Code: SASLAuth, AdditionalData: []byte("why")},
	}
}

// describe returns the described-list form of an outcome, for use as an
// AMQP value (the unsettled map holds delivery states as values).
func (Accepted) describe() Described {
	return Described{Descriptor: DescAccepted, Value: []any{}}
}

func TestPerformativeRoundTrip(t *testing.T) {
	for _, p := range fullPerformatives(t) {
		t.Run(fmt.Sprintf("%T", p), func(t *testing.T) {
			payload := []byte("payload")
			b, err := AppendFrame(nil, p.FrameType(), 5, p, payload)
			if err != nil {
				t.Fatal(err)
			}
			f, err := NewFrameReader(bytes.NewReader(b), uint32(len(b))).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f.Channel != 5 || f.Type != p.FrameType() {
				t.Errorf("frame channel %d type %v", f.Channel, f.Type)
			}
			got, rest, err := f.Performative()
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(got, p); d != "" {
				t.Errorf("round trip differs at %s", d)
			}
			if !bytes.Equal(rest, payload) {
				t.Errorf("payload %q", rest)
			}
		})
	}
}

// TestDecodeOverwritesEveryField decodes a zero-valued performative into
// one with every field set: nothing of the old value may survive, so a
// reused value is as good as a new one.
func TestDecodeOverwritesEveryField(t *testing.T) {
	for _, p := range fullPerformatives(t) {
		t.Run(fmt.Sprintf("%T", p), func(t *testing.T) {
			zero := reflect.New(reflect.TypeOf(p).Elem()).Interface().(Performative)
			b, err := zero.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			fresh := reflect.New(reflect.TypeOf(p).Elem()).Interface().(Performative)
			if _, err := fresh.Decode(b); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Decode(b); err != nil {
				t.Fatal(err)
			}
			if d := diff(p, fresh); d != "" {
				t.Errorf("reused value keeps old state at %s", d)
			}
		})
	}
}

// TestPerformativeDefaults decodes minimal performatives: fields after the
// mandatory ones must take the specification's defaults, and fields after
// the ones this package knows must be skipped.
func TestPerformativeDefaults(t *testing.T) {
	openA := &Open{ContainerID: "a", MaxFrameSize: math.MaxUint32, ChannelMax: math.MaxUint16}
	tests := []struct {
		name string
		hex  string
		want Performative
	}{
		{"open", "005310c00401a10161", openA},
		{"open with nulls", "005310c00d0aa10161" + strings.Repeat("40", 9), openA},
		{"open with unknown trailing fields", "005310c0110ca10161" + strings.Repeat("40", 9) + "a1017841", openA},
		{"open list32", "005310d000000007000000" + "01a10161", openA},
		{"begin", "005311c0050440434343", &Begin{HandleMax: math.MaxUint32}},
		{"attach", "005312c00603a101614342", &Attach{Name: "a", Role: RoleSender, SndSettleMode: SndMixed, RcvSettleMode: RcvFirst}},
		{"attach with empty source", "005312c00c06a101614342404000532845",
			&Attach{Name: "a", Role: RoleSender, SndSettleMode: SndMixed, Source: &Source{ExpiryPolicy: ExpirySessionEnd}}},
		{"flow", "005313c0050440434343", &Flow{}},
		{"transfer", "005314c0020143", &Transfer{}},
		{"disposition", "005315c003024143", &Disposition{Role: RoleReceiver}},
		{"detach", "005316c0020143", &Detach{}},
		{"end", "00531745", &End{}},
		{"close", "00531845", &Close{}},
		{"sasl outcome", "005344c003015001", &SASLOutcome{Code: SASLAuth}},
		{"sasl mechanisms as one symbol", "005340c00801a305504c41494e", &SASLMechanisms{Mechanisms: []Symbol{"PLAIN"}}},
		{"symbolic descriptor", "00a30d616d71703a656e643a6c69737445", &End{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhexString(t, tt.hex)
			p, rest, err := DecodeFrameBody(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) != 0 {
				t.Errorf("%d bytes left over", len(rest))
			}
			if d := diff(p, tt.want); d != "" {
				t.Errorf("differs at %s: %#v", d, p)
			}
		})
	}
}

func TestPerformativeRejects(t *testing.T) {
	tests := []struct {
		name  string
		hex   string
		field string // DecodeError.Field
	}{
		{"open without container-id", "00531045", "open.container-id"},
		{"open with null container-id", "005310c0020140", "open.container-id"},
		{"begin without windows", "005311c003024043", "begin.incoming-window"},
		{"attach without role", "005312c00502a1016143", "attach.role"},
		{"attach handle as string", "005312c00803a10161a1013142", "attach.handle"},
		{"attach source of wrong descriptor", "005312c00c06a101614342404000532945", "attach.source"},
		{"transfer with transactional state", "005314c00c084340404040404000533445", "transfer.state"},
		{"disposition without first", "005315c0020141", "disposition.first"},
		{"error without condition", "005318c0050100531d45", "error.condition"},
		{"sasl-init without mechanism", "005341c0020140", "sasl-init.mechanism"},
		{"mechanisms of strings", "005340c00701e00401a10161", "sasl-mechanisms.sasl-server-mechanisms"},
		{"list claims more fields than it holds", "005316c0020243", "detach"},
		{"unknown descriptor", "0053ff45", "frame body"},
		{"unknown symbolic descriptor", "00a303783a7945", "frame body"},
		{"not described", "c00100", "frame body"},
		{"performative not a list", "005310a10161", "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := DecodeFrameBody(unhexString(t, tt.hex))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeFrameBody = %#v, %v; want a *DecodeError", p, err)
			}
			if de.Field != tt.field {
				t.Errorf("error field %q, want %q (%v)", de.Field, tt.field, err)
			}
		})
	}
}

func TestFramePerformativeChecksFrameType(t *testing.T) {
	b, err := AppendFrame(nil, FrameAMQP, 0, &SASLOutcome{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFrameReader(bytes.NewReader(b), 512).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Performative(); err == nil {
		t.Fatal("sasl-outcome in an amqp frame was accepted")
	}
	if _, _, err := (Frame{Type: FrameAMQP}).Performative(); err == nil {
		t.Fatal("empty frame decoded as a performative")
	}
}

// TestDecodeFrameBodyWithTruncatedPayload shows that a classifier holding
// only the start of a transfer frame still gets the performative.
func TestDecodeFrameBodyWithTruncatedPayload(t *testing.T) {
	tr := &Transfer{Handle: 2, DeliveryID: ptr(uint32(77)), DeliveryTag: []byte("t")}
	b, err := tr.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := len(b)
	b = append(b, bytes.Repeat([]byte{0x00}, 1000)...)
	p, payload, err := DecodeFrameBody(b[:n+10])
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*Transfer); got.Handle != 2 || *got.DeliveryID != 77 || len(payload) != 10 {
		t.Errorf("got %+v with %d payload bytes", got, len(payload))
	}
	if code, err := PeekDescriptor(b); err != nil || code != DescTransfer {
		t.Errorf("PeekDescriptor = %#x, %v", code, err)
	}
}

func TestEncodeLeavesOutDefaults(t *testing.T) {
	tests := []struct {
		name string
		p    Performative
		hex  string
	}{
		{"open at defaults", &Open{ContainerID: "a", MaxFrameSize: math.MaxUint32, ChannelMax: math.MaxUint16}, "005310c00401a10161"},
		{"attach at defaults", &Attach{Name: "a", SndSettleMode: SndMixed}, "005312c00603a101614342"},
		{"source at defaults", &Attach{Name: "a", SndSettleMode: SndMixed, Source: &Source{ExpiryPolicy: ExpirySessionEnd}},
			"005312c00c06a101614342404000532845"},
		{"empty sasl response is sent", &SASLResponse{Response: []byte{}}, "005343c00301a000"},
		{"nil sasl response is sent empty", &SASLResponse{}, "005343c00301a000"},
		{"accepted", &Disposition{Role: RoleReceiver, First: 3, Settled: true, State: Accepted{}}, "005315c00a05415203404100532445"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhexString(t, tt.hex); !bytes.Equal(b, want) {
				t.Errorf("encoded %x, want %x", b, want)
			}
		})
	}
}

func TestEncodeRejectsUnsupportedValues(t *testing.T) {
	tests := []struct {
		name string
		p    Performative
	}{
		{"open property of plain int", &Open{ContainerID: "a", Properties: symMap("n", 1)}},
		{"error info of plain int", &Close{Error: &Error{Condition: "c", Info: symMap("n", 1)}}},
		{"filter of a Go map", &Attach{Source: &Source{Filter: symMap("f", map[string]int{})}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.p.Encode(nil); err == nil {
				t.Fatal("Encode succeeded")
			}
			if _, err := AppendFrame(nil, FrameAMQP, 0, tt.p, nil); err == nil {
				t.Fatal("AppendFrame succeeded")
			}
		})
	}
}
