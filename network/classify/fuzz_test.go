package classify

import (
	"bytes"
	"testing"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/network"
)

// A fuzz input is a sequence of records: one control byte (top bit: 1 for
// down; low 7 bits: length-1) and then that many stream bytes, so the fuzzer
// mutates the interleaving of the two directions as well as their bytes.

func encodeSegs(segs []seg) []byte {
	var b []byte
	for _, s := range segs {
		for p := s.b; len(p) > 0; {
			n := min(len(p), 128)
			ctrl := byte(n - 1)
			if s.dir == network.Down {
				ctrl |= 0x80
			}
			b = append(append(b, ctrl), p[:n]...)
			p = p[n:]
		}
	}
	return b
}

func decodeSegs(b []byte) []seg {
	var segs []seg
	for len(b) > 0 {
		dir, n := network.Up, int(b[0]&0x7f)+1
		if b[0]&0x80 != 0 {
			dir = network.Down
		}
		b = b[1:]
		n = min(n, len(b))
		if n > 0 {
			segs = append(segs, seg{dir, b[:n]})
		}
		b = b[n:]
	}
	return segs
}

// fuzzClassifier checks, for arbitrary bytes: no panic; after every call the
// bytes attributed plus those held equal the bytes fed; Flush balances the
// books; and cutting the same stream differently (whole records, records of
// one direction merged, one byte at a time) classifies every byte the same.
func fuzzClassifier(f *testing.F, newC func() pender, bounded func(t *testing.T, c pender), seeds ...[]seg) {
	for _, s := range seeds {
		f.Add(encodeSegs(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			return
		}
		segs := decodeSegs(data)
		c := newC()
		ref := feed(t, c, segs)
		bounded(t, c)
		var merged, bytewise []seg
		for _, s := range segs {
			if n := len(merged); n > 0 && merged[n-1].dir == s.dir {
				merged[n-1].b = append(merged[n-1].b, s.b...)
			} else {
				merged = append(merged, seg{s.dir, bytes.Clone(s.b)})
			}
			for i := range s.b {
				bytewise = append(bytewise, seg{s.dir, s.b[i : i+1]})
			}
		}
		for name, chunks := range map[string][]seg{"merged": merged, "bytewise": bytewise} {
			tr := feed(t, newC(), chunks)
			for d := range tr {
				if i := firstDiff(tr[d], ref[d]); i >= 0 {
					t.Fatalf("%s: %s byte %d is %s, as recorded %s", name, network.Direction(d), i, at(tr[d], i), at(ref[d], i))
				}
			}
		}
	})
}

func FuzzMQTT(f *testing.F) {
	tele := mqttPublishPkt("devices/d1/messages/events/", 1, 2, []byte(`{"t":1}`))
	rules := []Rule{{Pattern: "measures/+", Class: network.ClassTelemetry}, {Pattern: "ack/#", Class: network.ClassC2D, Dir: DownOnly}}
	fuzzClassifier(f, func() pender { return NewMQTT(rules...) },
		func(t *testing.T, c pender) {
			for _, d := range c.(*MQTT).dir {
				if cap(d.pre) > maxTopicBuf*2 {
					t.Fatalf("topic buffer grew to %d", cap(d.pre))
				}
			}
		},
		[]seg{up(mqttConnectPkt("d1", "u", "p")), down(mqttConnackPkt()), up(tele), down(mqttAckPkt(mqttPuback, 2))},
		[]seg{up(mqttPublishPkt("measures/x", 2, 5, nil)), down(mqttAckPkt(mqttPubrec, 5)), up(mqttAckPkt(mqttPubrel, 5)),
			down(mqttPublishPkt("ack/x", 1, 1, []byte("a")), pingrespPkt)},
		[]seg{up([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})},
	)
}

func FuzzHTTP(f *testing.F) {
	fuzzClassifier(f, func() pender { return NewHTTP(Rule{Pattern: "/m/+", Class: network.ClassTelemetry}) },
		func(t *testing.T, c pender) {
			h := c.(*HTTP)
			for _, s := range []*httpStream{&h.req.s, &h.resp.s} {
				if cap(s.line) > maxLine*2 {
					t.Fatalf("line buffer grew to %d", cap(s.line))
				}
			}
		},
		[]seg{up(httpReq("POST", "/devices/d1/messages/events?api-version=1", "abc")), down(httpResp(204, ""))},
		[]seg{up(httpReq("GET", "/devices/d1/messages/devicebound", "")), down(httpResp(200, "", "Transfer-Encoding: chunked"), []byte(chunked("ab")))},
		[]seg{up(httpReq("HEAD", "/m/1", ""), httpReq("POST", "/m/2", "", "Transfer-Encoding: chunked"), []byte(chunked("x"))),
			down(httpResp(100, ""), httpResp(200, "", "Content-Length: 5"), httpResp(200, "tail"))},
	)
}

func FuzzAMQP(f *testing.F) {
	hdr := protoHeader(amqpwire.ProtocolAMQP)
	begin := amqpFrame(f, 0, &amqpwire.Begin{NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	beginR := amqpFrame(f, 0, &amqpwire.Begin{RemoteChannel: u16p(0), NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	cbs := attachPkt(f, 0, 0, amqpwire.RoleSender, "c", "$cbs")
	cbsR := attachPkt(f, 0, 1, amqpwire.RoleSender, "$cbs", "c")
	tele := attachPkt(f, 0, 2, amqpwire.RoleSender, "d", "amqps://h/devices/d/messages/events")
	fuzzClassifier(f, func() pender { return NewAMQP() },
		func(t *testing.T, c pender) {
			for _, d := range c.(*AMQP).dir {
				if cap(d.perf) > maxPerf*2 {
					t.Fatalf("performative buffer grew to %d", cap(d.perf))
				}
			}
		},
		[]seg{up(protoHeader(amqpwire.ProtocolSASL)), down(protoHeader(amqpwire.ProtocolSASL),
			amqpFrame(f, 0, &amqpwire.SASLMechanisms{Mechanisms: []amqpwire.Symbol{"MSSBCBS"}}, nil)),
			up(hdr, begin, cbs, tele), down(hdr, beginR, cbsR),
			up(transferPkt(f, 0, 0, u32p(0), false, false, []byte("tok"))), down(dispositionPkt(f, 0, amqpwire.RoleReceiver, 0)),
			down(transferPkt(f, 0, 1, u32p(0), false, true, []byte("r")), transferPkt(f, 0, 1, nil, false, false, []byte("r"))),
			up(transferPkt(f, 0, 2, u32p(1), false, false, []byte("t")), flowPkt(f, 0, u32p(2)), amqpFrame(f, 0, nil, nil))},
	)
}

func FuzzWebSocket(f *testing.F) {
	fuzzClassifier(f, func() pender { return NewWebSocket(NewMQTT()) },
		func(t *testing.T, c pender) {
			w := c.(*WebSocket)
			for _, d := range w.dir {
				if cap(d.queue) > wsMaxQueue {
					t.Fatalf("frame queue grew to %d", cap(d.queue))
				}
			}
			if cap(w.runs) > 2*wsPiece {
				t.Fatalf("run buffer grew to %d", cap(w.runs))
			}
		},
		[]seg{up(wsUpgradeReq("mqtt")), down(wsSwitching("mqtt")),
			up(wsUp(mqttConnectPkt("d", "u", "p"))), down(wsDown(mqttConnackPkt())),
			up(wsFrame(wsBinary, false, true, mqttPublishPkt("devices/d/messages/events/", 1, 1, []byte("x"))[:6])),
			up(wsFrame(wsPing, true, true, nil)),
			up(wsFrame(wsContinuation, true, true, mqttPublishPkt("devices/d/messages/events/", 1, 1, []byte("x"))[6:])),
			down(wsDown(mqttAckPkt(mqttPuback, 1)), wsFrame(wsClose, true, false, nil))},
	)
}
