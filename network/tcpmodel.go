package network

import "time"

// tcpModel counts the TCP/IP bytes of one connection that the stream itself
// does not show: segment headers, pure ACKs, SYN and FIN. It is the ip formula
// of the package documentation, applied event by event. It computes; the caller
// supplies every time.
type tcpModel struct {
	hdr     int // per-segment header: IP + TCP (+ timestamps)
	payload int // stream bytes per full segment
	// delayed[d] is the delayed-ACK window of the receiver of data flowing in
	// direction d: the server's for Up, the device's for Down.
	delayed [numDirections]time.Duration
	ack     [numDirections]ackState
	carry   [numDirections]int // bytes of a segment whose burst goes on
	// peerFIN is set when the server's FIN arrived first; the device's ACK of it
	// may ride on its own FIN if it closes within its delayed-ACK window.
	peerFIN         bool
	peerFINDeadline time.Time
	closed          bool
}

// ackState is the receiver's side of data flowing in one direction.
type ackState struct {
	pending  bool      // something is received and not yet acknowledged
	full     int       // full-sized segments among it
	deadline time.Time // when the delayed ACK goes out unless data carries it first
}

// tcpCost collects what an event costs, per direction.
type tcpCost struct {
	dataHdr  [numDirections]int // headers of data segments
	ackBytes [numDirections]int // pure ACKs sent in that direction
	ctl      [numDirections]int // SYN, SYN-ACK, handshake ACK, FIN and their ACKs
	segs     [numDirections]int
	acks     [numDirections]int
}

func newTCPModel(p *Profile) tcpModel {
	return tcpModel{
		hdr:     p.segHeader(),
		payload: p.segPayload(),
		delayed: [numDirections]time.Duration{Up: p.PeerDelayedACK, Down: p.DelayedACK},
	}
}

func opposite(d Direction) Direction { return d ^ 1 }

// pureACK counts one pure ACK sent in direction d.
func (m *tcpModel) pureACK(d Direction, c *tcpCost) {
	c.ackBytes[d] += m.hdr
	c.acks[d]++
}

// expire sends the delayed ACK for data of direction d if its timer ran out
// before t.
func (m *tcpModel) expire(d Direction, t time.Time, c *tcpCost) {
	a := &m.ack[d]
	if a.pending && t.After(a.deadline) {
		m.pureACK(opposite(d), c)
		*a = ackState{}
	}
}

// data accounts n stream bytes in direction d, sent at sendAt and fully
// received at arriveAt. more says the burst goes on in the next call (the
// reader's buffer filled before the burst ended): the bytes of its last,
// incomplete segment are then carried over instead of counted as a segment
// of their own, so a burst's segments do not depend on how it is read.
func (m *tcpModel) data(d Direction, sendAt, arriveAt time.Time, n int, more bool, c *tcpCost) {
	if n <= 0 {
		return
	}
	// The sender's own pending ACK for the other direction rides on this data
	// if its delayed-ACK timer has not fired yet.
	back := opposite(d)
	m.expire(back, sendAt, c)
	m.ack[back] = ackState{}

	total := m.carry[d] + n
	full, rest := total/m.payload, total%m.payload
	segs := full
	m.carry[d] = 0
	switch {
	case more:
		m.carry[d] = rest
		rest = 0
	case rest > 0:
		segs++
	}
	c.dataHdr[d] += segs * m.hdr
	c.segs[d] += segs
	m.received(d, arriveAt, full, rest > 0, c)
}

// received applies the receiver's ACK policy to full-sized segments and
// possibly one short one arriving at t.
func (m *tcpModel) received(d Direction, t time.Time, full int, short bool, c *tcpCost) {
	if full == 0 && !short {
		return
	}
	back := opposite(d)
	m.expire(d, t, c)
	a := &m.ack[d]
	if m.delayed[d] <= 0 {
		for range full {
			m.pureACK(back, c)
		}
		if short {
			m.pureACK(back, c)
		}
		*a = ackState{}
		return
	}
	a.full += full
	// RFC 1122 §4.2.3.2: an ACK for at least every second full-sized segment.
	if pairs := a.full / 2; pairs > 0 {
		for range pairs {
			m.pureACK(back, c)
		}
		a.full -= 2 * pairs
		a.pending = false
	}
	if (a.full > 0 || short) && !a.pending {
		a.pending = true
		a.deadline = t.Add(m.delayed[d])
	}
}

// endBurst counts the carried-over bytes of direction d as the burst's last
// segment, received at t.
func (m *tcpModel) endBurst(d Direction, t time.Time, c *tcpCost) {
	if m.carry[d] == 0 {
		return
	}
	m.carry[d] = 0
	c.dataHdr[d] += m.hdr
	c.segs[d]++
	m.received(d, t, 0, true, c)
}

// settle sends every delayed ACK whose timer ran out before t.
func (m *tcpModel) settle(t time.Time, c *tcpCost) {
	m.expire(Up, t, c)
	m.expire(Down, t, c)
}

// open accounts the three-way handshake: SYN (with synLost retransmissions),
// SYN-ACK, ACK.
func (m *tcpModel) open(p *Profile, synLost int, c *tcpCost) {
	syn := p.ipHeader() + p.SYNOptions
	synack := p.ipHeader() + p.SYNACKOptions
	if p.TCPTimestamps {
		syn += 12
		synack += 12
	}
	c.ctl[Up] += (1+synLost)*syn + m.hdr
	c.ctl[Down] += synack
	c.segs[Up] += 2 + synLost
	c.segs[Down]++
}

// peerClosed accounts the server's FIN arriving at t.
func (m *tcpModel) peerClosed(t time.Time, c *tcpCost) {
	if m.closed || m.peerFIN {
		return
	}
	m.endBurst(Down, t, c)
	m.settle(t, c)
	m.ack[Up] = ackState{} // the FIN carries the server's ACK
	c.ctl[Down] += m.hdr
	c.segs[Down]++
	m.peerFIN = true
	m.peerFINDeadline = t.Add(m.delayed[Down])
}

// deviceClosed accounts the device's side of the teardown at t. When the
// device closes first: its FIN, then the server's ACK and FIN — one segment if
// the server has a delayed-ACK window to close in, two if it acknowledges at
// once — then the device's last ACK. When the server closed first: the
// device's ACK of that FIN (on its own FIN if it closes within its delayed-ACK
// window), its FIN, and the server's ACK.
func (m *tcpModel) deviceClosed(t time.Time, c *tcpCost) {
	if m.closed {
		return
	}
	m.endBurst(Down, t, c)
	m.closed = true
	m.settle(t, c)
	m.ack = [numDirections]ackState{} // FIN segments carry every pending ACK
	ctl := func(d Direction) {
		c.ctl[d] += m.hdr
		c.segs[d]++
	}
	if m.peerFIN {
		if m.delayed[Down] <= 0 || t.After(m.peerFINDeadline) {
			ctl(Up) // the ACK of the server's FIN went out alone
		}
		ctl(Up)
		ctl(Down)
		return
	}
	ctl(Up)
	if m.delayed[Up] <= 0 {
		ctl(Down)
	}
	ctl(Down)
	ctl(Up)
}
