package network

// This file attributes a connection's tls and ip bytes to operation classes.
// The protocol meter classifies the plaintext; here each TLS record is matched
// to the plaintext it carries, by position in the stream:
//
//   - up: the records crypto/tls writes while the meter's Write(p) is in
//     progress carry p, in order, each one (record length − record overhead)
//     bytes of it; the last takes whatever is left, so a wrong overhead guess
//     (CBC padding) only moves bytes between the records of one write.
//   - down: the link hands crypto/tls at most one record per Read, so the
//     records it consumed during one meter Read are known: all but the last
//     yielded no plaintext (TLS 1.3 session tickets, key updates, alerts) and
//     the last yielded what the Read returned; later Reads that consume no new
//     record return more of the same record.
//
// A record's bytes then go one for one to the classes of its plaintext bytes,
// and its remaining bytes (the record overhead) to the class of its first
// plaintext byte. Records that carry no plaintext — the handshake, alerts,
// close_notify, tickets — go to the connection's connect class. Every record
// is attributed whole, so the tls layer sums exactly to the bytes on the wire
// whatever the classes. Without TLS (plain mode) every link read or write is
// its own "record" with no overhead.
//
// ip bytes follow: the headers of the segments of a burst, and retransmitted
// segments, go with the next record attributed in that direction; a pure ACK
// goes to the class last attributed in the direction it acknowledges; SYN, FIN
// and their ACKs to the connect class.

const (
	maxQueuedRecs = 16 // records awaiting their plaintext's class, per direction
	maxHanded     = 8  // records handed to crypto/tls and not yet matched to a Read
)

type phase uint8

const (
	phaseSetup phase = iota // before the meter: everything is connect
	phaseApp
)

type recEntry struct {
	budget  int   // ciphertext bytes not attributed yet
	pStart  int64 // plaintext carried: [pStart, pEnd)
	pEnd    int64
	first   Class // class of the first plaintext byte, once touched
	touched bool
	open    bool // down: the newest record may still yield more plaintext
}

type dirAcct struct {
	recs    [maxQueuedRecs]recEntry
	head, n int
	pos     int64 // plaintext bytes classified so far
	seen    int64 // plaintext bytes that passed the meter so far
	hdr     int   // ip-only bytes waiting for the next record's class
	partial int   // ciphertext bytes of the record being scanned
	last    Class
	hasLast bool
}

type handedRec struct {
	length int
	typ    byte
}

// acct is the byte accounting of one connection. Conn.amu guards it.
type acct struct {
	ledger *Ledger
	reason ConnReason
	phase  phase
	plain  bool
	ovh    int // expected ciphertext overhead of one application-data record
	tcp    tcpModel
	scan   [numDirections]recordScanner
	dir    [numDirections]dirAcct
	stats  ConnStats

	inWindow bool
	winStart int64
	winEnd   int64
	winCur   int64
	winFirst int // records queued before the window began (count since the start)
	queued   int // up records ever queued

	handed  [maxHanded]handedRec
	nHanded int
}

// ConnStats are one connection's raw byte counts per direction (index Up,
// Down), before any attribution to classes.
type ConnStats struct {
	Protocol [numDirections]int64
	TLS      [numDirections]int64
	IP       [numDirections]int64
	// Segments counts every modelled TCP segment: data, pure ACKs, SYN, FIN.
	Segments [numDirections]int64
	// PureACKs counts ACK segments without data.
	PureACKs [numDirections]int64
	// Retransmitted counts the bytes (headers included) of retransmitted segments.
	Retransmitted [numDirections]int64
}

func (a *acct) class(c Class) Class {
	if c == ClassConnect {
		return a.reason.connectClass()
	}
	return c
}

// give attributes n ciphertext bytes, and the same bytes on the ip layer.
func (a *acct) give(d Direction, c Class, n int) {
	if n <= 0 {
		return
	}
	c = a.class(c)
	a.ledger.Add(LayerTLS, d, c, n)
	a.ledger.Add(LayerIP, d, c, n)
}

func (a *acct) giveIP(d Direction, c Class, n int) {
	if n > 0 {
		a.ledger.Add(LayerIP, d, a.class(c), n)
	}
}

func (a *acct) lastClass(d Direction) Class {
	if a.dir[d].hasLast {
		return a.dir[d].last
	}
	return ClassConnect
}

// cost books what the TCP model says an event cost.
func (a *acct) cost(c *tcpCost, retrans [numDirections]int) {
	for d := Up; d < numDirections; d++ {
		a.stats.IP[d] += int64(c.dataHdr[d] + c.ackBytes[d] + c.ctl[d] + retrans[d])
		a.stats.Segments[d] += int64(c.segs[d] + c.acks[d])
		a.stats.PureACKs[d] += int64(c.acks[d])
		a.stats.Retransmitted[d] += int64(retrans[d])
		a.giveIP(d, ClassConnect, c.ctl[d])
		a.giveIP(d, a.lastClass(opposite(d)), c.ackBytes[d])
		if h := c.dataHdr[d] + retrans[d]; h > 0 {
			if a.phase == phaseSetup {
				a.giveIP(d, ClassConnect, h)
			} else {
				a.dir[d].hdr += h
			}
		}
	}
}

// wire books ciphertext bytes that crossed the link: written to the server
// (Up) or handed to the device's TLS (Down).
func (a *acct) wire(d Direction, p []byte) {
	a.stats.TLS[d] += int64(len(p))
	a.stats.IP[d] += int64(len(p))
	if a.phase == phaseApp && a.plain {
		a.record(d, recApplicationData, len(p))
		return
	}
	s := &a.scan[d]
	if s.opaque {
		a.give(d, ClassOther, len(p))
		return
	}
	da := &a.dir[d]
	da.partial += len(p)
	s.scan(p, func(typ byte, length int) {
		da.partial -= length
		a.record(d, typ, length)
	})
	if s.opaque {
		a.give(d, ClassOther, da.partial) // not TLS after all: nothing to match
		da.partial = 0
	}
}

// record handles one complete record (or plain-mode chunk).
func (a *acct) record(d Direction, typ byte, length int) {
	if a.phase == phaseSetup {
		a.give(d, ClassConnect, length)
		return
	}
	if d == Down {
		if a.nHanded == maxHanded {
			a.zeroPlain(Down, a.handed[0].length)
			copy(a.handed[:], a.handed[1:])
			a.nHanded--
		}
		a.handed[a.nHanded] = handedRec{length: length, typ: typ}
		a.nHanded++
		return
	}
	if typ != recApplicationData || !a.inWindow {
		a.zeroPlain(Up, length)
		return
	}
	plain := length
	if !a.plain {
		plain = max(length-a.ovh, 0)
	}
	end := min(a.winCur+int64(plain), a.winEnd)
	a.push(Up, recEntry{budget: length, pStart: a.winCur, pEnd: end})
	a.winCur = end
}

// zeroPlain attributes a record that carries no plaintext.
func (a *acct) zeroPlain(d Direction, length int) {
	a.give(d, ClassConnect, length)
	da := &a.dir[d]
	a.giveIP(d, ClassConnect, da.hdr)
	da.hdr = 0
}

func (a *acct) push(d Direction, r recEntry) {
	da := &a.dir[d]
	if da.n == maxQueuedRecs {
		a.finish(d, &da.recs[da.head], da.last) // keep memory bounded: settle the oldest now
		da.head = (da.head + 1) % maxQueuedRecs
		da.n--
	}
	da.recs[(da.head+da.n)%maxQueuedRecs] = r
	da.n++
	if d == Up {
		a.queued++
	}
}

// finish attributes what is left of a record: its overhead to the class of its
// first plaintext byte, or to c if nothing touched it.
func (a *acct) finish(d Direction, r *recEntry, c Class) {
	if !r.touched {
		r.first = c
		a.touch(d, r)
	}
	a.give(d, r.first, r.budget)
	r.budget = 0
}

// touch gives a record its class and books the ip bytes waiting for it.
func (a *acct) touch(d Direction, r *recEntry) {
	r.touched = true
	da := &a.dir[d]
	a.giveIP(d, r.first, da.hdr)
	da.hdr = 0
	if !a.plain {
		k := min(a.ovh, r.budget)
		a.give(d, r.first, k)
		r.budget -= k
	}
}

// beginWrite opens an up window of n plaintext bytes.
func (a *acct) beginWrite(n int) {
	a.inWindow = true
	a.winStart = a.dir[Up].seen
	a.winCur = a.winStart
	a.winEnd = a.winStart + int64(n)
	a.winFirst = a.queued
}

// endWrite closes the window once the write returned n.
func (a *acct) endWrite(n int) {
	a.inWindow = false
	end := a.winStart + int64(n)
	da := &a.dir[Up]
	da.seen = end
	k := a.queued - a.winFirst // records of this window, the newest k in the queue
	for i := max(da.n-k, 0); i < da.n; i++ {
		r := &da.recs[(da.head+i)%maxQueuedRecs]
		r.pStart = min(r.pStart, end)
		r.pEnd = min(r.pEnd, end)
		if i == da.n-1 {
			r.pEnd = end // the last record of the write carries the rest
		}
	}
}

// readDone matches the records crypto/tls consumed during one meter Read that
// returned n plaintext bytes.
func (a *acct) readDone(n int) {
	da := &a.dir[Down]
	start := da.seen
	da.seen += int64(n)
	if a.nHanded == 0 {
		if n > 0 && da.n > 0 {
			if r := &da.recs[(da.head+da.n-1)%maxQueuedRecs]; r.open {
				r.pEnd += int64(n)
			}
		}
		return
	}
	if da.n > 0 {
		da.recs[(da.head+da.n-1)%maxQueuedRecs].open = false
	}
	for i := 0; i < a.nHanded-1; i++ {
		a.zeroPlain(Down, a.handed[i].length)
	}
	last := a.handed[a.nHanded-1]
	a.nHanded = 0
	if n == 0 {
		a.zeroPlain(Down, last.length)
		return
	}
	a.push(Down, recEntry{budget: last.length, pStart: start, pEnd: start + int64(n), open: true})
}

// classified books n plaintext bytes of class c, the next ones in direction d,
// and attributes the records that carried them.
func (a *acct) classified(d Direction, c Class, n int) {
	if n <= 0 {
		return
	}
	a.stats.Protocol[d] += int64(n)
	a.ledger.Add(LayerProtocol, d, a.class(c), n)
	da := &a.dir[d]
	lo := da.pos
	hi := lo + int64(n)
	da.pos = hi
	da.last, da.hasLast = c, true
	if a.phase == phaseSetup {
		return
	}
	for i := 0; i < da.n; i++ {
		r := &da.recs[(da.head+i)%maxQueuedRecs]
		if r.pStart > hi || (r.pStart == hi && r.pEnd > hi) {
			break
		}
		if !r.touched {
			r.first = c
			a.touch(d, r)
		}
		if ov := min(hi, r.pEnd) - max(lo, r.pStart); ov > 0 {
			k := min(int(ov), r.budget)
			a.give(d, c, k)
			r.budget -= k
		}
	}
	for da.n > 0 {
		r := &da.recs[da.head]
		if r.open || r.pEnd > hi {
			break
		}
		a.finish(d, r, c)
		da.head = (da.head + 1) % maxQueuedRecs
		da.n--
	}
}

// enterApp ends the set-up phase: from now on records are matched to the
// plaintext the meter classifies.
func (a *acct) enterApp(plain bool, ovh int) {
	if a.phase == phaseApp {
		return
	}
	a.phase = phaseApp
	a.plain = plain
	a.ovh = ovh
	if plain {
		for d := Up; d < numDirections; d++ {
			a.give(d, ClassConnect, a.dir[d].partial)
			a.dir[d].partial = 0
		}
	}
}

// flush attributes everything still waiting, at the end of the connection.
func (a *acct) flush() {
	for i := 0; i < a.nHanded; i++ {
		a.zeroPlain(Down, a.handed[i].length)
	}
	a.nHanded = 0
	for d := Up; d < numDirections; d++ {
		da := &a.dir[d]
		for da.n > 0 {
			a.finish(d, &da.recs[da.head], ClassOther)
			da.head = (da.head + 1) % maxQueuedRecs
			da.n--
		}
		a.give(d, ClassOther, da.partial) // a record cut off mid-way
		da.partial = 0
		a.giveIP(d, a.lastClass(d), da.hdr)
		da.hdr = 0
	}
}
