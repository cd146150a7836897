package classify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/catmsim/catmsim/network"
)

var wsKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// wsFrame builds an RFC 6455 frame; masked frames use wsKey.
func wsFrame(op byte, fin, masked bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	out = append(out, wsKey[:]...)
	for i, c := range payload {
		out = append(out, c^wsKey[i&3])
	}
	return out
}

// Client frames are masked, server frames are not (RFC 6455 §5.1).
func wsUp(p []byte) []byte   { return wsFrame(wsBinary, true, true, p) }
func wsDown(p []byte) []byte { return wsFrame(wsBinary, true, false, p) }

func wsUpgradeReq(proto string) []byte {
	return httpReq("GET", "/$iothub/websocket?iothub-no-client-cert=true", "",
		"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: "+proto)
}

func wsSwitching(proto string) []byte {
	return httpResp(101, "", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Protocol: "+proto)
}

// runs is a trace compressed to (class, count) pairs, to assert order.
type runs []wsRun

func runsOf(cs []network.Class) runs {
	var r runs
	for _, c := range cs {
		if k := len(r); k > 0 && r[k-1].cls == c {
			r[k-1].n++
			continue
		}
		r = append(r, wsRun{c, 1})
	}
	return r
}

func (r runs) String() string {
	var b bytes.Buffer
	for _, x := range r {
		fmt.Fprintf(&b, "%s×%d ", x.cls, x.n)
	}
	return b.String()
}

func newWSPender(inner func() network.Classifier) func() pender {
	return func() pender { return NewWebSocket(inner()) }
}

func TestWebSocketMQTT(t *testing.T) {
	req, sw := wsUpgradeReq("mqtt"), wsSwitching("mqtt")
	connect := wsUp(mqttConnectPkt("d1", "hub/d1/?api-version=2021-04-12", "SharedAccessSignature sr=x"))
	connack := wsDown(mqttConnackPkt())
	telePkt := mqttPublishPkt("devices/d1/messages/events/", 1, 1, bytes.Repeat([]byte("t"), 300))
	tele := wsUp(telePkt)
	puback := wsDown(mqttAckPkt(mqttPuback, 1))
	ping, pong := wsFrame(wsPing, true, true, []byte("hb")), wsFrame(wsPong, true, false, []byte("hb"))
	// One MQTT PUBLISH split across a fragmented message, with a ping between
	// the fragments: the first fragment ends inside the topic.
	part1 := wsFrame(wsBinary, false, true, telePkt[:9])
	part2 := wsFrame(wsContinuation, true, true, telePkt[9:])
	// Two packets in one frame: the header goes with the first.
	pingAndTele := wsUp(cat(pingreqPkt, telePkt))
	// A 16-bit length, and a 64-bit length (not minimal, which the parser
	// accepts; a real 64 KiB+ frame is in TestWebSocketLargeFrame).
	bigFrame := wsUp(mqttPublishPkt("devices/d1/messages/events/", 0, 0, bytes.Repeat([]byte("b"), 3000)))
	long := wsUp(mqttPublishPkt("devices/d1/messages/events/", 0, 0, bytes.Repeat([]byte("l"), 50)))
	long64 := cat(long[:1], []byte{0x80 | 127}, binary.BigEndian.AppendUint64(nil, uint64(len(long)-6)), long[2:])
	bigFrame = cat(bigFrame, long64)
	c2dPkt := mqttPublishPkt("devices/d1/messages/devicebound/", 1, 9, []byte("on"))
	c2d := wsDown(c2dPkt)
	c2dAck := wsUp(mqttAckPkt(mqttPuback, 9))
	text := wsFrame(wsText, true, true, []byte("hello"))
	emptyBin := wsFrame(wsBinary, true, true, nil)
	reserved := wsFrame(0x3, true, true, []byte("r"))
	compressed := []byte{0x80 | 0x40 | wsBinary, 0x80 | 3, 1, 2, 3, 4, 9, 9, 9}
	closeUp, closeDown := wsFrame(wsClose, true, true, []byte{0x03, 0xe8}), wsFrame(wsClose, true, false, []byte{0x03, 0xe8})

	tests := []struct {
		name  string
		segs  []seg
		want  want
		order map[network.Direction]runs
	}{
		{
			name: "session",
			segs: []seg{
				up(req), down(sw), up(connect), down(connack), up(tele), down(puback), up(ping), down(pong),
				down(c2d), up(c2dAck), up(bigFrame), up(closeUp), down(closeDown),
			},
			want: want{
				network.Up: {
					network.ClassConnect: sum(req, connect, closeUp), network.ClassTelemetry: sum(tele, bigFrame),
					network.ClassKeepAlive: len(ping), network.ClassC2D: len(c2dAck),
				},
				network.Down: {
					network.ClassConnect: sum(sw, connack, closeDown), network.ClassTelemetry: len(puback),
					network.ClassKeepAlive: len(pong), network.ClassC2D: len(c2d),
				},
			},
		},
		{
			name: "packet split across fragments with a ping between",
			segs: []seg{up(req), down(sw), up(part1), up(ping), up(part2), up(pingAndTele)},
			want: want{
				network.Up: {
					network.ClassConnect: len(req), network.ClassTelemetry: sum(part1, part2, telePkt),
					network.ClassKeepAlive: sum(ping, pingreqPkt) + len(pingAndTele) - len(pingreqPkt) - len(telePkt),
				},
				network.Down: {network.ClassConnect: len(sw)},
			},
			order: map[network.Direction]runs{network.Up: {
				{network.ClassConnect, len(req)}, {network.ClassTelemetry, len(part1)},
				{network.ClassKeepAlive, len(ping)}, {network.ClassTelemetry, len(part2)},
				{network.ClassKeepAlive, len(pingAndTele) - len(telePkt)}, {network.ClassTelemetry, len(telePkt)},
			}},
		},
		{
			name: "empty final frame of a fragmented message",
			segs: []seg{up(req), down(sw), up(part1), up(wsFrame(wsContinuation, false, true, telePkt[9:])),
				up(wsFrame(wsContinuation, true, true, nil)), up(emptyBin)},
			want: want{
				network.Up: {
					network.ClassConnect:   len(req) + len(emptyBin),
					network.ClassTelemetry: len(part1) + len(wsFrame(wsContinuation, false, true, telePkt[9:])) + 6,
				},
				network.Down: {network.ClassConnect: len(sw)},
			},
		},
		{
			name: "frames the inner protocol never sees",
			segs: []seg{up(req), down(sw), up(text), up(emptyBin), up(reserved), up(compressed), up(tele)},
			want: want{network.Up: {
				network.ClassConnect: sum(req, emptyBin), network.ClassOther: sum(text, reserved, compressed),
				network.ClassTelemetry: len(tele),
			}, network.Down: {network.ClassConnect: len(sw)}},
		},
		{
			name: "refused upgrade then a second attempt",
			segs: []seg{
				up(req), down(httpResp(401, "no", "Content-Length: 2")), up(req), down(sw), up(tele), down(puback),
			},
			want: want{
				network.Up: {network.ClassConnect: 2 * len(req), network.ClassTelemetry: len(tele)},
				network.Down: {
					network.ClassConnect:   len(httpResp(401, "no", "Content-Length: 2")) + len(sw),
					network.ClassTelemetry: len(puback),
				},
			},
		},
		{
			name: "upgrade response and first frame in one read",
			segs: []seg{up(req), down(sw, connack, puback)},
			want: want{
				network.Up:   {network.ClassConnect: len(req)},
				network.Down: {network.ClassConnect: sum(sw, connack), network.ClassOther: len(puback)},
			},
		},
		{
			name: "an upgrade request that is not http",
			segs: []seg{up(bytes.Repeat([]byte("U"), 3000), []byte("\r\n\r\n")), down(sw)},
			want: want{
				network.Up:   {network.ClassOther: 3004},
				network.Down: {network.ClassConnect: len(sw)},
			},
		},
		{
			name: "64-bit length with the top bit set",
			segs: []seg{up(req), down(sw), up([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1}), up(tele)},
			want: want{
				network.Up:   {network.ClassConnect: len(req), network.ClassOther: 10 + len(tele)},
				network.Down: {network.ClassConnect: len(sw)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newC := newWSPender(func() network.Classifier { return NewMQTT() })
			checkSplits(t, newC, tc.segs, tc.want)
			tr := feed(t, newC(), tc.segs)
			for d, wantRuns := range tc.order {
				if got := runsOf(tr[d]); !slices.Equal(got, wantRuns) {
					t.Errorf("%s order:\n got  %v\n want %v", d, got, wantRuns)
				}
			}
		})
	}
}

// TestWebSocketLargeFrame streams a frame with a 64-bit length through the
// classifier in 4 KiB reads.
func TestWebSocketLargeFrame(t *testing.T) {
	pub := mqttPublishPkt("devices/d1/messages/events/", 0, 0, bytes.Repeat([]byte("b"), 70000))
	frame := wsUp(pub)
	if frame[1]&0x7f != 127 {
		t.Fatalf("frame uses length code %d, want 127", frame[1]&0x7f)
	}
	segs := []seg{up(wsUpgradeReq("mqtt")), down(wsSwitching("mqtt"))}
	for b := frame; len(b) > 0; {
		n := min(len(b), 4096)
		segs = append(segs, up(b[:n]))
		b = b[n:]
	}
	got := feed(t, NewWebSocket(NewMQTT()), segs).tally()
	if got[network.Up][network.ClassTelemetry] != len(frame) {
		t.Fatalf("telemetry = %d, want the whole %d-byte frame (%v)", got[network.Up][network.ClassTelemetry], len(frame), got)
	}
}

// holdAll is an inner classifier that never decides: it holds every byte it
// is given and attributes nothing until flushed.
type holdAll struct{ held [2]int }

func (h *holdAll) Classify(dir network.Direction, p []byte, _ func(network.Class, int)) {
	h.held[dir] += len(p)
}

func (h *holdAll) Flush(dir network.Direction, attribute func(network.Class, int)) {
	if h.held[dir] > 0 {
		attribute(network.ClassOther, h.held[dir])
		h.held[dir] = 0
	}
}

// TestWebSocketQueueBound feeds many frames to an inner classifier that holds
// everything: the queue stays bounded and Flush still balances the count.
func TestWebSocketQueueBound(t *testing.T) {
	segs := []seg{up(wsUpgradeReq("x")), down(wsSwitching("x"))}
	for i := range 1000 {
		segs = append(segs, up(wsUp([]byte{byte(i)})), up(wsFrame(wsPing, true, true, nil)))
	}
	w := NewWebSocket(&holdAll{})
	tr := feed(t, w, segs)
	if n := len(w.dir[network.Up].queue); n != 0 {
		t.Fatalf("queue after Flush = %d entries, want 0", n)
	}
	if c := cap(w.dir[network.Up].queue); c > wsMaxQueue {
		t.Fatalf("queue grew to %d entries, bound is %d", c, wsMaxQueue)
	}
	got := tr.tally()[network.Up]
	if want := 1000 * len(wsFrame(wsPing, true, true, nil)); got[network.ClassKeepAlive] != want {
		t.Errorf("keepalive = %d, want every ping frame (%d bytes)", got[network.ClassKeepAlive], want)
	}
}
