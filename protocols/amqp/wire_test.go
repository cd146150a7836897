package amqp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
	"github.com/catmsim/catmsim/sas"
)

// tap keeps a copy of the plaintext the device sends, on its way to the
// AMQP classifier.
type tap struct {
	inner *classify.AMQP
	mu    sync.Mutex
	up    bytes.Buffer
}

func (t *tap) Classify(dir network.Direction, p []byte, attribute func(network.Class, int)) {
	if dir == network.Up {
		t.mu.Lock()
		t.up.Write(p)
		t.mu.Unlock()
	}
	t.inner.Classify(dir, p, attribute)
}

func (t *tap) Flush(dir network.Direction, attribute func(network.Class, int)) {
	t.inner.Flush(dir, attribute)
}

func (t *tap) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.up.Bytes())
}

// sent is what a device put on the wire, decoded with the emulator's codec.
type sent struct {
	headers  []amqpwire.ProtocolID
	sasl     []*amqpwire.SASLInit
	open     *amqpwire.Open
	attaches map[uint32]*amqpwire.Attach // by handle; one session
	// transfers by the address of their link, whole messages only.
	transfers map[string][]*amqpwire.Transfer
	messages  map[string][]*amqpwire.Message
}

func decodeSent(t *testing.T, b []byte) *sent {
	t.Helper()
	s := &sent{attaches: map[uint32]*amqpwire.Attach{}, transfers: map[string][]*amqpwire.Transfer{}, messages: map[string][]*amqpwire.Message{}}
	br := bufio.NewReader(bytes.NewReader(b))
	fr := amqpwire.NewFrameReader(br, 1<<20)
	for {
		if head, err := br.Peek(4); err == nil && string(head) == "AMQP" {
			h, err := fr.ReadProtocolHeader()
			if err != nil {
				t.Fatal(err)
			}
			s.headers = append(s.headers, h.ID)
			continue
		}
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return s
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Body == nil {
			continue
		}
		p, payload, err := f.Performative()
		if err != nil {
			t.Fatalf("the client sent a frame the hub's codec refuses: %v", err)
		}
		switch p := p.(type) {
		case *amqpwire.SASLInit:
			s.sasl = append(s.sasl, p)
		case *amqpwire.Open:
			s.open = p
		case *amqpwire.Attach:
			s.attaches[p.Handle] = p
		case *amqpwire.Transfer:
			a := s.attaches[p.Handle]
			if a == nil || a.Target == nil || p.More {
				t.Fatalf("transfer on handle %d: attach %+v, more %v", p.Handle, a, p.More)
			}
			m, err := amqpwire.DecodeMessage(payload)
			if err != nil {
				t.Fatalf("a message to %s does not decode: %v", a.Target.Address, err)
			}
			s.transfers[a.Target.Address] = append(s.transfers[a.Target.Address], p)
			s.messages[a.Target.Address] = append(s.messages[a.Target.Address], m)
		}
	}
}

// link returns the device's attach for address in role.
func (s *sent) link(t *testing.T, role amqpwire.Role, address string) *amqpwire.Attach {
	t.Helper()
	for _, a := range s.attaches {
		if a.Role != role {
			continue
		}
		if role == amqpwire.RoleSender && a.Target != nil && a.Target.Address == address ||
			role == amqpwire.RoleReceiver && a.Source != nil && a.Source.Address == address {
			return a
		}
	}
	t.Fatalf("no %s link on %s", role, address)
	return nil
}

func symbolProp(a *amqpwire.Attach, key string) string {
	v, _ := a.Properties.GetSymbol(key)
	s, _ := iothub.AMQPValueText(v)
	return s
}

// TestWire checks what the client puts on the wire against what the Node and
// .NET SDKs send (spec §3): SASL ANONYMOUS, the open, the link addresses and
// properties, the put-token, a batch's message format, the method answer's
// status type and the twin requests' annotations.
func TestWire(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	id := iothub.Identity{DeviceID: "dev#1%"} // an id that needs encoding in addresses
	cfg, _ := device(t, env, protocols.AMQP, id.DeviceID)
	cfg.Identity = id
	cfg.ModelID = "dtmi:com:example:Thermostat;1"
	cfg.ClientType = "catmsim/test"
	cfg.APIVersion = "2021-04-12"
	cfg.IdleTimeout = 100 * time.Second
	c := newClient(t, cfg)
	tp := &tap{inner: classify.NewAMQP()}
	c.classifier = func() network.Classifier { return tp }
	rec := newRecorder()
	rec.register(c)
	ctx := hubtest.Ctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SendBatch(ctx, []*iothub.Message{{Body: []byte("a")}, {Body: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Hub.InvokeMethod(ctx, id, "m", nil, 5*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTwin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s := decodeSent(t, tp.bytes())

	if len(s.headers) != 2 || s.headers[0] != amqpwire.ProtocolSASL || s.headers[1] != amqpwire.ProtocolAMQP {
		t.Errorf("protocol headers %v, want SASL then AMQP", s.headers)
	}
	if len(s.sasl) != 1 || s.sasl[0].Mechanism != "ANONYMOUS" {
		t.Errorf("sasl-init %+v, want ANONYMOUS", s.sasl)
	}
	if s.open == nil || s.open.Hostname != hubtest.HostName || s.open.IdleTimeout != 100_000 || s.open.MaxFrameSize != maxFrameSize || len(s.open.ContainerID) != 36 {
		t.Fatalf("open %+v", s.open)
	}

	cbsSnd := s.link(t, amqpwire.RoleSender, iothub.AMQPCBSAddress)
	cbsRcv := s.link(t, amqpwire.RoleReceiver, iothub.AMQPCBSAddress)
	if cbsRcv.Target == nil || cbsRcv.Target.Address != iothub.CBSReplyTo {
		t.Errorf("the $cbs receiver's target is %+v, want %q", cbsRcv.Target, iothub.CBSReplyTo)
	}
	events := s.link(t, amqpwire.RoleSender, iothub.AMQPPath(iothub.AMQPNodeEvents, id))
	if events.SndSettleMode != amqpwire.SndUnsettled {
		t.Errorf("telemetry link snd-settle-mode %v, want unsettled", events.SndSettleMode)
	}
	s.link(t, amqpwire.RoleReceiver, iothub.AMQPPath(iothub.AMQPNodeDeviceBound, id))
	methodRcv := s.link(t, amqpwire.RoleReceiver, iothub.AMQPPath(iothub.AMQPNodeMethods, id))
	methodSnd := s.link(t, amqpwire.RoleSender, iothub.AMQPPath(iothub.AMQPNodeMethods, id))
	twinRcv := s.link(t, amqpwire.RoleReceiver, iothub.AMQPPath(iothub.AMQPNodeTwin, id))
	twinSnd := s.link(t, amqpwire.RoleSender, iothub.AMQPPath(iothub.AMQPNodeTwin, id))
	for _, a := range []*amqpwire.Attach{cbsSnd, cbsRcv, events, methodRcv, methodSnd, twinRcv, twinSnd} {
		if got := symbolProp(a, iothub.LinkPropClientVersion); got != cfg.ClientType {
			t.Errorf("link %s: client-version %q", a.Name, got)
		}
		if len(a.Name) != 36 {
			t.Errorf("link name %q, want a uuid", a.Name)
		}
	}
	for _, pair := range []struct {
		prefix   string
		rcv, snd *amqpwire.Attach
	}{{"methods:", methodRcv, methodSnd}, {"twin:", twinRcv, twinSnd}} {
		rc, sc := symbolProp(pair.rcv, iothub.LinkPropChannelCorrelationID), symbolProp(pair.snd, iothub.LinkPropChannelCorrelationID)
		if !strings.HasPrefix(rc, pair.prefix) || rc != sc {
			t.Errorf("channel-correlation-ids %q and %q, want one %s{uuid}", rc, sc, pair.prefix)
		}
		for _, a := range []*amqpwire.Attach{pair.rcv, pair.snd} {
			if got := symbolProp(a, iothub.LinkPropAPIVersion); got != cfg.APIVersion {
				t.Errorf("link %s: api-version %q", a.Name, got)
			}
			if a.Role == amqpwire.RoleSender && a.SndSettleMode != amqpwire.SndSettled || a.Role == amqpwire.RoleReceiver && a.RcvSettleMode != amqpwire.RcvFirst {
				t.Errorf("link %s: settle modes %v %v", a.Name, a.SndSettleMode, a.RcvSettleMode)
			}
		}
	}
	for _, a := range []*amqpwire.Attach{events, methodSnd, twinSnd} {
		if got := symbolProp(a, iothub.LinkPropModelID); got != cfg.ModelID {
			t.Errorf("sender %s: model-id %q", a.Target.Address, got)
		}
	}

	// The put-token.
	puts := s.messages[iothub.AMQPCBSAddress]
	if len(puts) != 1 || puts[0].Properties == nil {
		t.Fatalf("%d put-tokens", len(puts))
	}
	put := puts[0]
	app := func(m *amqpwire.Message, key string) string {
		v, _ := m.ApplicationProperties.GetString(key)
		s, _ := iothub.AMQPValueText(v)
		return s
	}
	wantName := sas.Encode(sas.DeviceResource(hubtest.HostName, id.DeviceID, ""))
	if app(put, iothub.CBSOperation) != iothub.CBSPutToken || app(put, iothub.CBSType) != iothub.CBSTokenTypeSAS || app(put, iothub.CBSName) != wantName {
		t.Errorf("put-token application properties %+v, want name %q", put.ApplicationProperties.Entries(), wantName)
	}
	if put.Properties.ReplyTo != iothub.CBSReplyTo || put.Properties.To != iothub.AMQPCBSAddress {
		t.Errorf("put-token reply-to %q, to %q", put.Properties.ReplyTo, put.Properties.To)
	}
	if tok, _ := put.Value.(string); !put.HasValue || !strings.HasPrefix(tok, "SharedAccessSignature sr="+wantName+"&") {
		t.Errorf("put-token body %T %v, want the SAS token as an amqp-value string", put.Value, put.Value)
	}

	// The batch, the method answer and the twin GET.
	evs := s.transfers[iothub.AMQPPath(iothub.AMQPNodeEvents, id)]
	if len(evs) != 1 || evs[0].MessageFormat != iothub.AMQPBatchFormat || evs[0].Settled {
		t.Errorf("telemetry transfers %+v, want one unsettled batch", evs)
	}
	if b := s.messages[iothub.AMQPPath(iothub.AMQPNodeEvents, id)]; len(b) != 1 || len(b[0].Data) != 2 {
		t.Errorf("the batch has %d data sections, want one per message", len(b[0].Data))
	}
	answers := s.messages[iothub.AMQPPath(iothub.AMQPNodeMethods, id)]
	if len(answers) != 1 {
		t.Fatalf("%d method answers", len(answers))
	}
	if v, _ := answers[0].ApplicationProperties.GetString(iothub.AMQPPropMethodStatus); v != int32(201) {
		t.Errorf("method status %T %v, want int32 201", v, v)
	}
	if _, ok := answers[0].Properties.CorrelationID.(amqpwire.UUID); !ok {
		t.Errorf("method answer correlation-id %T, want the request's uuid", answers[0].Properties.CorrelationID)
	}
	twins := s.messages[iothub.AMQPPath(iothub.AMQPNodeTwin, id)]
	// PUT of desired notifications at connect, then the GET.
	if len(twins) != 2 {
		t.Fatalf("%d twin requests", len(twins))
	}
	for i, want := range []struct{ op, resource string }{{iothub.TwinOpPut, iothub.TwinResourceDesired}, {iothub.TwinOpGet, ""}} {
		op, _ := twins[i].MessageAnnotations.GetSymbol(iothub.AnnotationOperation)
		res, _ := twins[i].MessageAnnotations.GetSymbol(iothub.AnnotationResource)
		if op != want.op || (want.resource != "" && res != want.resource) || (want.resource == "" && res != nil) {
			t.Errorf("twin request %d: operation %v resource %v, want %s %s", i, op, res, want.op, want.resource)
		}
		if _, ok := twins[i].Properties.CorrelationID.(string); !ok {
			t.Errorf("twin request %d: correlation-id %T, want a string", i, twins[i].Properties.CorrelationID)
		}
	}
}

// TestIDsRepeat: the uuids a client puts on the wire come from a generator
// seeded by the device, so the same device sends the same ids run after run,
// and another device others.
func TestIDsRepeat(t *testing.T) {
	a, b, other := newIDs("dev1"), newIDs("dev1"), newIDs("dev2")
	for i := range 5 {
		ua, ub, uo := a.uuid(), b.uuid(), other.uuid()
		if ua != ub {
			t.Fatalf("uuid %d: %s and %s for the same device", i, ua, ub)
		}
		if ua == uo {
			t.Fatalf("uuid %d: %s for two devices", i, ua)
		}
		if ua[6]>>4 != 4 || ua[8]>>6 != 2 {
			t.Fatalf("uuid %s is not shaped as version 4", ua)
		}
		if u, ok := parseUUID(ua.String()); !ok || u != ua {
			t.Fatalf("uuid %s does not read back", ua)
		}
	}
}
