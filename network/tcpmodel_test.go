package network

import (
	"testing"
	"time"
)

// tcpEvent is one step of a TCP exchange for the model.
type tcpEvent struct {
	kind     string // "data", "peerfin", "close"
	dir      Direction
	at, recv time.Duration // sent, received (after t0)
	n        int
	more     bool
}

func runTCP(p Profile, events []tcpEvent) tcpCost {
	m := newTCPModel(&p)
	var c tcpCost
	m.open(&p, 0, &c)
	for _, e := range events {
		switch e.kind {
		case "data":
			m.data(e.dir, t0.Add(e.at), t0.Add(e.recv), e.n, e.more, &c)
		case "peerfin":
			m.peerClosed(t0.Add(e.at), &c)
		case "close":
			m.deviceClosed(t0.Add(e.at), &c)
		}
	}
	return c
}

func TestTCPModel(t *testing.T) {
	ms := time.Millisecond
	base := func() Profile {
		p, _ := BuiltinProfile("typical") // device delayed ACK 250 ms, server 40 ms
		return p
	}
	withTS := func() Profile { p := base(); p.TCPTimestamps = true; return p }
	v6 := func() Profile { p := base(); p.IPv6 = true; return p }
	quick := func() Profile { p := base(); p.DelayedACK, p.PeerDelayedACK = 0, 0; return p }

	type want struct {
		up, down         int // total bytes of headers, ACKs and control
		segsUp, segsDown int
		acksUp, acksDown int
	}
	tests := []struct {
		name   string
		p      Profile
		events []tcpEvent
		want   want
	}{
		{"handshake only", base(), nil,
			// SYN 44 + ACK 40 up; SYN-ACK 52 down.
			want{up: 84, down: 52, segsUp: 2, segsDown: 1}},
		{"handshake with timestamps", withTS(), nil,
			want{up: 56 + 52, down: 64, segsUp: 2, segsDown: 1}},
		{"handshake over IPv6", v6(), nil,
			want{up: 64 + 60, down: 72, segsUp: 2, segsDown: 1}},
		{"request answered within the server's window: ACK rides on the answer", base(), []tcpEvent{
			{kind: "data", dir: Up, at: 0, recv: 60 * ms, n: 100},
			{kind: "data", dir: Down, at: 70 * ms, recv: 130 * ms, n: 50},
		}, want{up: 84 + 40, down: 52 + 40, segsUp: 3, segsDown: 2}},
		{"slow answer: the server's delayed ACK goes out alone", base(), []tcpEvent{
			{kind: "data", dir: Up, at: 0, recv: 60 * ms, n: 100},
			{kind: "data", dir: Down, at: 200 * ms, recv: 260 * ms, n: 50},
		}, want{up: 84 + 40, down: 52 + 40 + 40, segsUp: 3, segsDown: 3, acksDown: 1}},
		{"device answers within 250 ms: no pure ACK up", base(), []tcpEvent{
			{kind: "data", dir: Down, at: 0, recv: 60 * ms, n: 300},
			{kind: "data", dir: Up, at: 200 * ms, recv: 260 * ms, n: 4},
		}, want{up: 84 + 40, down: 52 + 40, segsUp: 3, segsDown: 2}},
		{"device silent: its delayed ACK fires before the next data", base(), []tcpEvent{
			{kind: "data", dir: Down, at: 0, recv: 60 * ms, n: 300},
			{kind: "data", dir: Down, at: 1000 * ms, recv: 1060 * ms, n: 300},
		}, want{up: 84 + 40, down: 52 + 80, segsUp: 3, segsDown: 3, acksUp: 1}},
		{"bulk: an ACK every second full segment", base(), []tcpEvent{
			{kind: "data", dir: Up, at: 0, recv: 60 * ms, n: 10 * 1390},
		}, want{up: 84 + 400, down: 52 + 5*40, segsUp: 12, segsDown: 6, acksDown: 5}},
		{"odd bulk: the last two segments' ACK rides on the answer", base(), []tcpEvent{
			{kind: "data", dir: Up, at: 0, recv: 60 * ms, n: 3*1390 + 10},
			{kind: "data", dir: Down, at: 80 * ms, recv: 140 * ms, n: 4},
		}, want{up: 84 + 160, down: 52 + 40 + 40, segsUp: 6, segsDown: 3, acksDown: 1}},
		{"quick ACKs: every segment", quick(), []tcpEvent{
			{kind: "data", dir: Up, at: 0, recv: 60 * ms, n: 3*1390 + 10},
			{kind: "data", dir: Down, at: 70 * ms, recv: 130 * ms, n: 4},
		}, want{up: 84 + 160 + 40, down: 52 + 4*40 + 40, segsUp: 7, segsDown: 6, acksUp: 1, acksDown: 4}},
		{"a burst read in pieces counts its segments once", base(), []tcpEvent{
			{kind: "data", dir: Down, at: 0, recv: 60 * ms, n: 1000, more: true},
			{kind: "data", dir: Down, at: 0, recv: 60 * ms, n: 1000, more: true},
			{kind: "data", dir: Down, at: 0, recv: 60 * ms, n: 780},
			{kind: "data", dir: Up, at: 100 * ms, recv: 160 * ms, n: 4},
		}, want{up: 84 + 40 + 40, down: 52 + 80, segsUp: 4, segsDown: 3, acksUp: 1}},
		{"timestamps: 52-byte headers", withTS(), []tcpEvent{
			{kind: "data", dir: Up, at: 0, recv: 60 * ms, n: 100},
			{kind: "data", dir: Down, at: 70 * ms, recv: 130 * ms, n: 50},
		}, want{up: 108 + 52, down: 64 + 52, segsUp: 3, segsDown: 2}},
		{"device closes first", base(), []tcpEvent{
			{kind: "close", at: time.Second},
		}, want{up: 84 + 80, down: 52 + 40, segsUp: 4, segsDown: 2}},
		{"device closes first, server ACKs at once", quick(), []tcpEvent{
			{kind: "close", at: time.Second},
		}, want{up: 84 + 80, down: 52 + 80, segsUp: 4, segsDown: 3}},
		{"server closes first, device quick: FIN-ACK", base(), []tcpEvent{
			{kind: "peerfin", at: time.Second},
			{kind: "close", at: time.Second + 100*ms},
		}, want{up: 84 + 40, down: 52 + 80, segsUp: 3, segsDown: 3}},
		{"server closes first, device slow: ACK then FIN", base(), []tcpEvent{
			{kind: "peerfin", at: time.Second},
			{kind: "close", at: 2 * time.Second},
		}, want{up: 84 + 80, down: 52 + 80, segsUp: 4, segsDown: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := runTCP(tc.p, tc.events)
			got := want{
				up: c.dataHdr[Up] + c.ackBytes[Up] + c.ctl[Up], down: c.dataHdr[Down] + c.ackBytes[Down] + c.ctl[Down],
				segsUp: c.segs[Up] + c.acks[Up], segsDown: c.segs[Down] + c.acks[Down],
				acksUp: c.acks[Up], acksDown: c.acks[Down],
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTCPSettle(t *testing.T) {
	p, _ := BuiltinProfile("typical")
	m := newTCPModel(&p)
	var c tcpCost
	m.data(Down, t0, t0.Add(50*time.Millisecond), 100, false, &c)
	m.settle(t0.Add(200*time.Millisecond), &c)
	if c.acks[Up] != 0 {
		t.Fatal("the device's delayed ACK fired inside its 250 ms window")
	}
	m.settle(t0.Add(301*time.Millisecond), &c)
	if c.acks[Up] != 1 {
		t.Fatalf("pure ACKs up = %d after the window, want 1", c.acks[Up])
	}
	m.settle(t0.Add(time.Hour), &c)
	if c.acks[Up] != 1 {
		t.Fatal("one delayed ACK counted twice")
	}
}
