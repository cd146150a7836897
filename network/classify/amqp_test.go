package classify

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/network"
)

// AMQP frames are built with internal/amqpwire's encoder.

func amqpFrame(t testing.TB, ch uint16, p amqpwire.Performative, payload []byte) []byte {
	t.Helper()
	typ := amqpwire.FrameAMQP
	if p != nil {
		typ = p.FrameType()
	}
	b, err := amqpwire.AppendFrame(nil, typ, ch, p, payload)
	if err != nil {
		t.Fatalf("encoding %T: %v", p, err)
	}
	return b
}

func amqpMsg(t testing.TB, body string) []byte {
	t.Helper()
	m := &amqpwire.Message{
		Properties: &amqpwire.Properties{MessageID: "m-1", To: "/devices/d1/messages/events"},
		Data:       [][]byte{[]byte(body)},
	}
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatalf("encoding message: %v", err)
	}
	return b
}

func u32p(v uint32) *uint32 { return &v }
func u16p(v uint16) *uint16 { return &v }

func attachPkt(t testing.TB, ch uint16, h uint32, role amqpwire.Role, src, tgt string) []byte {
	at := &amqpwire.Attach{Name: "link-" + src + tgt, Handle: h, Role: role,
		Source: &amqpwire.Source{Address: src}, Target: &amqpwire.Target{Address: tgt}}
	if role == amqpwire.RoleSender {
		at.InitialDeliveryCount = u32p(0)
	}
	return amqpFrame(t, ch, at, nil)
}

func transferPkt(t testing.TB, ch uint16, h uint32, id *uint32, settled, more bool, payload []byte) []byte {
	return amqpFrame(t, ch, &amqpwire.Transfer{Handle: h, DeliveryID: id, DeliveryTag: []byte{0, 0, 0, byte(h)},
		Settled: settled, More: more}, payload)
}

func dispositionPkt(t testing.TB, ch uint16, role amqpwire.Role, first uint32) []byte {
	return amqpFrame(t, ch, &amqpwire.Disposition{Role: role, First: first, Settled: true, State: &amqpwire.Accepted{}}, nil)
}

func flowPkt(t testing.TB, ch uint16, h *uint32) []byte {
	return amqpFrame(t, ch, &amqpwire.Flow{NextIncomingID: u32p(0), IncomingWindow: 5000, NextOutgoingID: 0,
		OutgoingWindow: 5000, Handle: h, DeliveryCount: u32p(0), LinkCredit: u32p(100)}, nil)
}

func protoHeader(id amqpwire.ProtocolID) []byte {
	h := id.Header().Bytes()
	return h[:]
}

func newAMQPPender() pender { return NewAMQP() }

func TestAMQP(t *testing.T) {
	const (
		snd = amqpwire.RoleSender
		rcv = amqpwire.RoleReceiver
		dev = "/devices/d1"
		abs = "amqps://hub.azure-devices.net/devices/d1"
	)
	saslHdr, amqpHdr := protoHeader(amqpwire.ProtocolSASL), protoHeader(amqpwire.ProtocolAMQP)
	mechs := amqpFrame(t, 0, &amqpwire.SASLMechanisms{Mechanisms: []amqpwire.Symbol{"MSSBCBS", "PLAIN"}}, nil)
	init := amqpFrame(t, 0, &amqpwire.SASLInit{Mechanism: "MSSBCBS"}, nil)
	outcome := amqpFrame(t, 0, &amqpwire.SASLOutcome{Code: amqpwire.SASLOK}, nil)
	openUp := amqpFrame(t, 0, &amqpwire.Open{ContainerID: "d1-container", Hostname: "hub.azure-devices.net",
		MaxFrameSize: 65536, ChannelMax: 9, IdleTimeout: 240000}, nil)
	openDown := amqpFrame(t, 0, &amqpwire.Open{ContainerID: "hub", MaxFrameSize: 65536, ChannelMax: 9, IdleTimeout: 240000}, nil)
	beginUp := amqpFrame(t, 0, &amqpwire.Begin{NextOutgoingID: 0, IncomingWindow: 5000, OutgoingWindow: 5000}, nil)
	beginDown := amqpFrame(t, 0, &amqpwire.Begin{RemoteChannel: u16p(0), NextOutgoingID: 0, IncomingWindow: 5000, OutgoingWindow: 5000}, nil)

	// CBS request/response links, handles 0 and 1 on both sides.
	cbsAttach := cat(attachPkt(t, 0, 0, snd, "cbs", "$cbs"), attachPkt(t, 0, 1, rcv, "$cbs", "cbs"))
	cbsAttached := cat(attachPkt(t, 0, 0, rcv, "cbs", "$cbs"), attachPkt(t, 0, 1, snd, "$cbs", "cbs"))
	cbsCredit := flowPkt(t, 0, u32p(0))
	cbsCreditUp := flowPkt(t, 0, u32p(1))
	putToken := transferPkt(t, 0, 0, u32p(0), false, false, amqpMsg(t, "SharedAccessSignature sr=hub%2Fdevices%2Fd1&sig=x&se=1"))
	putTokenAck := dispositionPkt(t, 0, rcv, 0)
	putTokenResp := transferPkt(t, 0, 1, u32p(0), false, false, amqpMsg(t, ""))
	putTokenRespAck := dispositionPkt(t, 0, rcv, 0)

	// Telemetry (absolute address, as the C and .NET SDKs send it).
	teleAttach := attachPkt(t, 0, 2, snd, "d1", abs+"/messages/events")
	teleAttached := attachPkt(t, 0, 2, rcv, "d1", abs+"/messages/events")
	teleCredit := flowPkt(t, 0, u32p(2))
	tele := transferPkt(t, 0, 2, u32p(1), false, false, amqpMsg(t, `{"t":21.5}`))
	teleAck := dispositionPkt(t, 0, rcv, 1)

	// C2D (path address with "deviceBound" as .NET spells it).
	c2dAttach := attachPkt(t, 0, 3, rcv, dev+"/messages/deviceBound", "d1")
	c2dAttached := attachPkt(t, 0, 3, snd, dev+"/messages/deviceBound", "d1")
	c2dCredit := flowPkt(t, 0, u32p(3))
	c2d := transferPkt(t, 0, 3, u32p(1), false, false, amqpMsg(t, "led=on"))
	c2dAck := dispositionPkt(t, 0, rcv, 1)

	// Methods and twin: pre-settled transfers.
	methAttach := cat(attachPkt(t, 0, 4, rcv, dev+"/methods/devicebound", "d1"), attachPkt(t, 0, 5, snd, "d1", dev+"/methods/devicebound"))
	methAttached := cat(attachPkt(t, 0, 4, snd, dev+"/methods/devicebound", "d1"), attachPkt(t, 0, 5, rcv, "d1", dev+"/methods/devicebound"))
	methReq := transferPkt(t, 0, 4, u32p(2), true, false, amqpMsg(t, "{}"))
	methResp := transferPkt(t, 0, 5, u32p(2), true, false, amqpMsg(t, `{"ok":1}`))
	twinAttach := cat(attachPkt(t, 0, 6, snd, "d1", dev+"/twin"), attachPkt(t, 0, 7, rcv, dev+"/twin", "d1"))
	twinAttached := cat(attachPkt(t, 0, 6, rcv, "d1", dev+"/twin"), attachPkt(t, 0, 7, snd, dev+"/twin", "d1"))
	twinGet := transferPkt(t, 0, 6, u32p(3), true, false, amqpMsg(t, " "))
	twinResp := transferPkt(t, 0, 7, u32p(3), true, false, amqpMsg(t, `{"desired":{}}`))

	heartbeat := amqpFrame(t, 0, nil, nil)
	sessionFlow := flowPkt(t, 0, nil)

	// A second put-token on the live connection renews the token.
	renew := transferPkt(t, 0, 0, u32p(4), false, false, amqpMsg(t, "SharedAccessSignature sr=...&se=2"))
	renewAck := dispositionPkt(t, 0, rcv, 4)
	renewResp := transferPkt(t, 0, 1, u32p(4), false, false, amqpMsg(t, ""))
	renewRespAck := dispositionPkt(t, 0, rcv, 4)

	detachUp := amqpFrame(t, 0, &amqpwire.Detach{Handle: 2, Closed: true}, nil)
	detachDown := amqpFrame(t, 0, &amqpwire.Detach{Handle: 2, Closed: true}, nil)
	afterDetach := transferPkt(t, 0, 2, u32p(5), true, false, amqpMsg(t, "late"))
	endUp, endDown := amqpFrame(t, 0, &amqpwire.End{}, nil), amqpFrame(t, 0, &amqpwire.End{}, nil)
	closeUp, closeDown := amqpFrame(t, 0, &amqpwire.Close{}, nil), amqpFrame(t, 0, &amqpwire.Close{}, nil)

	sessionUp := []seg{
		up(saslHdr), down(saslHdr, mechs), up(init), down(outcome), up(amqpHdr), down(amqpHdr),
		up(openUp), down(openDown), up(beginUp), down(beginDown),
		up(cbsAttach), down(cbsAttached), down(cbsCredit), up(cbsCreditUp),
		up(putToken), down(putTokenAck), down(putTokenResp), up(putTokenRespAck),
		up(teleAttach), down(teleAttached), down(teleCredit), up(tele), down(teleAck),
		up(c2dAttach), down(c2dAttached), up(c2dCredit), down(c2d), up(c2dAck),
		up(methAttach), down(methAttached), down(methReq), up(methResp),
		up(twinAttach), down(twinAttached), up(twinGet), down(twinResp),
		up(heartbeat), down(heartbeat), up(sessionFlow),
		up(renew), down(renewAck), down(renewResp), up(renewRespAck), up(cbsCreditUp),
		up(detachUp), down(detachDown), up(afterDetach),
		up(endUp), down(endDown), up(closeUp), down(closeDown),
	}
	sessionWant := want{
		network.Up: {
			network.ClassConnect: sum(saslHdr, init, amqpHdr, openUp, beginUp, cbsAttach, cbsCreditUp, putToken,
				putTokenRespAck, teleAttach, c2dAttach, methAttach, twinAttach, sessionFlow, detachUp, endUp, closeUp),
			network.ClassTelemetry:    len(tele),
			network.ClassC2D:          sum(c2dCredit, c2dAck),
			network.ClassMethod:       len(methResp),
			network.ClassTwin:         len(twinGet),
			network.ClassKeepAlive:    len(heartbeat),
			network.ClassTokenRenewal: sum(renew, renewRespAck, cbsCreditUp),
			network.ClassOther:        len(afterDetach),
		},
		network.Down: {
			network.ClassConnect: sum(saslHdr, mechs, outcome, amqpHdr, openDown, beginDown, cbsAttached, cbsCredit,
				putTokenAck, putTokenResp, teleAttached, c2dAttached, methAttached, twinAttached, detachDown, endDown, closeDown),
			network.ClassTelemetry:    sum(teleCredit, teleAck),
			network.ClassC2D:          len(c2d),
			network.ClassMethod:       len(methReq),
			network.ClassTwin:         len(twinResp),
			network.ClassKeepAlive:    len(heartbeat),
			network.ClassTokenRenewal: sum(renewAck, renewResp),
		},
	}

	// Sessions on different channel numbers, paired by begin's remote-channel.
	beginUp3 := amqpFrame(t, 3, &amqpwire.Begin{NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	beginDown7 := amqpFrame(t, 7, &amqpwire.Begin{RemoteChannel: u16p(3), NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	teleAttach3 := attachPkt(t, 3, 9, snd, "d1", dev+"/modules/m1/messages/events")
	teleAttached7 := attachPkt(t, 7, 0, rcv, "d1", dev+"/modules/m1/messages/events")
	tele3 := transferPkt(t, 3, 9, u32p(42), false, false, amqpMsg(t, "t"))
	teleAck7 := dispositionPkt(t, 7, rcv, 42)
	// The same handle on another channel is another link.
	wrongChannel := transferPkt(t, 0, 9, u32p(43), false, false, amqpMsg(t, "t"))

	// A delivery split over frames: only the first carries the delivery id.
	part1 := transferPkt(t, 0, 2, u32p(8), false, true, bytes.Repeat([]byte{'a'}, 500))
	part2 := transferPkt(t, 0, 2, nil, false, false, bytes.Repeat([]byte{'b'}, 500))
	part2Ack := dispositionPkt(t, 0, rcv, 8)

	// An extended header (doff 3) before the body.
	ext := transferPkt(t, 0, 2, u32p(9), true, false, []byte("x"))
	ext = slicesInsert(ext, 8, 0, 0, 0, 0)
	ext[4] = 3
	binary.BigEndian.PutUint32(ext, uint32(len(ext)))

	// A symbolic descriptor instead of 0x13.
	flowSym := flowPkt(t, 0, u32p(2))
	flowSym = append(append(cat(flowSym[:8], []byte{0x00, 0xa3, 14}), "amqp:flow:list"...), flowSym[11:]...)
	binary.BigEndian.PutUint32(flowSym, uint32(len(flowSym)))

	notDescribed := amqpFrame(t, 0, nil, []byte{0xa1, 3, 'a', 'b', 'c'})
	truncatedPerf := amqpFrame(t, 0, nil, []byte{0x00, 0x53, 0x14, 0xc0, 0x20, 0x02}) // list runs past the frame
	saslInAMQP := amqpFrame(t, 0, nil, cat(init[8:]))
	badHeader := []byte{0, 0, 0, 4, 2, 0, 0, 0}

	teleSetup := []seg{up(amqpHdr), down(amqpHdr), up(beginUp), down(beginDown), up(teleAttach), down(teleAttached)}
	setupUp := sum(amqpHdr, beginUp, teleAttach)
	setupDown := sum(amqpHdr, beginDown, teleAttached)

	tests := []struct {
		name string
		segs []seg
		want want
	}{
		{name: "iothub session with sasl, cbs and renewal", segs: sessionUp, want: sessionWant},
		{
			name: "sessions paired by remote channel",
			segs: []seg{up(amqpHdr), down(amqpHdr), up(beginUp3), down(beginDown7), up(teleAttach3), down(teleAttached7),
				up(tele3), down(teleAck7), up(wrongChannel)},
			want: want{
				network.Up:   {network.ClassConnect: sum(amqpHdr, beginUp3, teleAttach3), network.ClassTelemetry: len(tele3), network.ClassOther: len(wrongChannel)},
				network.Down: {network.ClassConnect: sum(amqpHdr, beginDown7, teleAttached7), network.ClassTelemetry: len(teleAck7)},
			},
		},
		{
			name: "multi-frame delivery, extended header, symbolic descriptor",
			segs: append(teleSetup, up(part1), up(part2), down(part2Ack), up(ext), down(flowSym)),
			want: want{
				network.Up:   {network.ClassConnect: setupUp, network.ClassTelemetry: sum(part1, part2, ext)},
				network.Down: {network.ClassConnect: setupDown, network.ClassTelemetry: sum(part2Ack, flowSym)},
			},
		},
		{
			name: "frames that do not decode are other",
			segs: append(teleSetup, up(notDescribed), up(truncatedPerf), up(saslInAMQP), up(tele)),
			want: want{
				network.Up: {network.ClassConnect: setupUp, network.ClassTelemetry: len(tele),
					network.ClassOther: sum(notDescribed, truncatedPerf, saslInAMQP)},
				network.Down: {network.ClassConnect: setupDown},
			},
		},
		{
			name: "broken framing poisons only its direction",
			segs: append(teleSetup, up(badHeader), up(tele), down(teleAck), down(heartbeat)),
			want: want{
				network.Up: {network.ClassConnect: setupUp, network.ClassOther: sum(badHeader, tele)},
				network.Down: {network.ClassConnect: setupDown, network.ClassOther: len(teleAck),
					network.ClassKeepAlive: len(heartbeat)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkSplits(t, newAMQPPender, tc.segs, tc.want)
		})
	}
}

// TestAMQPHugeFrame checks that a frame over the size bound is other and is
// streamed, not kept: the classifier holds only the frame header while the
// megabyte passes through in pieces.
func TestAMQPHugeFrame(t *testing.T) {
	amqpHdr := protoHeader(amqpwire.ProtocolAMQP)
	begin := amqpFrame(t, 0, &amqpwire.Begin{NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	attach := attachPkt(t, 0, 2, amqpwire.RoleSender, "d1", "/devices/d1/messages/events")
	huge := transferPkt(t, 0, 2, u32p(10), true, false, make([]byte, maxAMQPFrame))
	small := transferPkt(t, 0, 2, u32p(11), true, false, make([]byte, maxAMQPFrame/2))
	a := NewAMQP()
	var chunks []seg
	chunks = append(chunks, up(amqpHdr, begin, attach))
	for _, f := range [][]byte{huge, small} {
		for b := f; len(b) > 0; {
			n := min(len(b), 4096)
			chunks = append(chunks, up(b[:n]))
			b = b[n:]
		}
	}
	got := feed(t, a, chunks).tally()[network.Up]
	if got[network.ClassOther] != len(huge) || got[network.ClassTelemetry] != len(small) {
		t.Fatalf("other = %d, telemetry = %d; want %d and %d", got[network.ClassOther], got[network.ClassTelemetry], len(huge), len(small))
	}
	if c := cap(a.dir[network.Up].perf); c > 1024 {
		t.Fatalf("performative buffer grew to %d bytes for frames with small performatives", c)
	}
}

func TestAMQPOverWebSocket(t *testing.T) {
	amqpHdr := protoHeader(amqpwire.ProtocolAMQP)
	begin := amqpFrame(t, 0, &amqpwire.Begin{NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	attach := attachPkt(t, 0, 0, amqpwire.RoleSender, "d1", "/devices/d1/messages/events")
	tele := transferPkt(t, 0, 0, u32p(0), true, false, amqpMsg(t, `{"t":1}`))
	heartbeat := amqpFrame(t, 0, nil, nil)
	req, sw := wsUpgradeReq("AMQPWSB10"), wsSwitching("AMQPWSB10")
	// go-amqp writes each frame in its own message; some clients pack several.
	f1, f2 := wsUp(cat(amqpHdr, begin)), wsUp(attach)
	f3 := wsUp(cat(tele, heartbeat))
	f4 := wsUp(heartbeat)
	hdrLen := func(frame, payload []byte) int { return len(frame) - len(payload) }
	checkSplits(t, newWSPender(func() network.Classifier { return NewAMQP() }),
		[]seg{up(req), down(sw), down(wsDown(amqpHdr)), up(f1), up(f2), up(f3), up(f4)},
		want{
			network.Up: {
				network.ClassConnect:   len(req) + sum(f1, f2),
				network.ClassTelemetry: len(tele) + hdrLen(f3, cat(tele, heartbeat)),
				network.ClassKeepAlive: len(heartbeat) + len(f4),
			},
			network.Down: {network.ClassConnect: len(sw) + len(wsDown(amqpHdr))},
		})
}

func TestLinkAddrClass(t *testing.T) {
	tests := []struct {
		addr string
		want network.Class
		cbs  bool
	}{
		{"$cbs", network.ClassConnect, true},
		{"/devices/d1/messages/events", network.ClassTelemetry, false},
		{"amqps://hub.azure-devices.net/devices/d%2F1/messages/events", network.ClassTelemetry, false},
		{"amqps://hub.azure-devices.net/devices/d1/modules/m1/messages/events?api-version=x", network.ClassTelemetry, false},
		{"/devices/d1/messages/deviceBound", network.ClassC2D, false},
		{"/DEVICES/d1/MESSAGES/DEVICEBOUND", network.ClassC2D, false},
		{"/messages/devicebound", network.ClassC2D, false},
		{"/devices/d1/methods/devicebound", network.ClassMethod, false},
		{"/devices/d1/methods/deviceBound", network.ClassMethod, false},
		{"/devices/d1/twin", network.ClassTwin, false},
		{"/devices/d1/modules/m1/twin", network.ClassTwin, false},
		{"/messages/serviceBound/feedback", network.ClassOther, false},
		{"/devices/d1", network.ClassOther, false},
		{"amqps://hub.azure-devices.net", network.ClassOther, false},
		{"", network.ClassOther, false},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			c, cbs := linkAddrClass(tc.addr)
			if c != tc.want || cbs != tc.cbs {
				t.Fatalf("linkAddrClass(%q) = %s, cbs %v; want %s, cbs %v", tc.addr, c, cbs, tc.want, tc.cbs)
			}
		})
	}
}

// TestAMQPTableBounds shows the fixed tables forgetting their oldest entries
// instead of growing.
func TestAMQPTableBounds(t *testing.T) {
	a := NewAMQP()
	for h := range uint32(100) {
		a.links.put(link{dir: network.Up, handle: h, cls: network.ClassTelemetry})
		a.deliv.put(delivery{dir: network.Up, id: h, cls: network.ClassTelemetry})
	}
	if _, ok := a.links.get(network.Up, 0, 99); !ok {
		t.Errorf("newest link forgotten")
	}
	if _, ok := a.links.get(network.Up, 0, 0); ok {
		t.Errorf("oldest of 100 links still known in a %d-entry table", len(a.links.ents))
	}
	if c := a.deliv.settle(network.Up, 0, 99, 99, true); c != network.ClassTelemetry {
		t.Errorf("newest delivery = %s, want telemetry", c)
	}
	if c := a.deliv.settle(network.Up, 0, 0, 0, true); c != network.ClassOther {
		t.Errorf("oldest delivery = %s, want other (forgotten)", c)
	}
	if c := a.deliv.settle(network.Up, 0, 99, 99, true); c != network.ClassOther {
		t.Errorf("settled delivery = %s, want other (settled twice)", c)
	}
}

func slicesInsert(b []byte, i int, v ...byte) []byte {
	return append(b[:i:i], append(v, b[i:]...)...)
}
