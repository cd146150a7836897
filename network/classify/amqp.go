package classify

import (
	"bytes"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/network"
)

const (
	// maxAMQPFrame is the largest frame classified by its performative; a
	// larger one is other. IoT Hub clients negotiate 64 KiB frames.
	maxAMQPFrame = 1 << 20
	// maxPerf bounds the performative bytes kept to decode one frame.
	maxPerf = 64 << 10
)

// AMQP classifies an AMQP 1.0 connection. The zero value is not usable; call
// NewAMQP.
type AMQP struct {
	dir      [2]amqpDir
	links    linkTable
	deliv    deliveryTable
	sessions [2]sessionTable
	nextSlot uint32
	// cbsAnswered is set once the first CBS put-token response has been read:
	// later CBS traffic renews a token on a live connection.
	cbsAnswered bool
}

type amqpState uint8

const (
	amqpStHeader amqpState = iota // the 8-byte frame or protocol header
	amqpStExt                     // the extended frame header
	amqpStPerf                    // the performative at the start of the body
	amqpStBody                    // the rest of the frame
	amqpStDead                    // not AMQP framing: the rest is other
)

type amqpDir struct {
	st     amqpState
	hdr    [8]byte
	hdrLen int
	ext    int   // extended-header bytes left
	body   int64 // body bytes left, performative included
	ch     uint16
	known  bool
	cls    network.Class
	held   int
	perf   []byte
	need   int // performative bytes wanted in perf before looking again
}

// NewAMQP returns a classifier for one AMQP 1.0 connection.
//
// Protocol headers, SASL frames and open, begin, end and close are connect;
// empty frames keepalive. Attach and detach are connect, and an attach
// remembers its link by address, per direction, session and handle: the
// source address when the cloud sends on the link, the target address when the
// device does. A transfer takes its link's class: $cbs is connect up to and
// including the first put-token response and token_renewal after it;
// /devices/{id}/messages/events (and the module form) telemetry;
// .../messages/devicebound (any case, and the service's /messages/devicebound)
// c2d; .../methods/devicebound method; .../twin twin; anything else other.
// Absolute amqps://host/... addresses are read by their path. A flow takes its
// link's class, or connect without a handle; a disposition takes the class of
// the first delivery it settles. A frame over 1 MiB, an unknown link or
// delivery, and anything that does not decode is other; a frame header that
// breaks the framing makes the rest of that direction other.
//
// Memory: 32 links, 64 unsettled deliveries and 16 sessions per direction, in
// fixed tables (the oldest entry is forgotten first), plus one reusable buffer
// per direction holding the largest performative seen (at most 64 KiB).
func NewAMQP() *AMQP {
	return &AMQP{}
}

// Classify implements network.Classifier.
func (a *AMQP) Classify(dir network.Direction, p []byte, attribute func(c network.Class, n int)) {
	o := out{fn: attribute}
	if !validDir(dir) {
		o.add(network.ClassOther, len(p))
		o.flush()
		return
	}
	a.classify(dir, p, &o)
	o.flush()
}

// Flush implements Flusher.
func (a *AMQP) Flush(dir network.Direction, attribute func(c network.Class, n int)) {
	if !validDir(dir) {
		return
	}
	d := &a.dir[dir]
	if d.held > 0 {
		attribute(network.ClassOther, d.held)
		d.held = 0
	}
}

func (a *AMQP) pending(dir network.Direction) int { return a.dir[dir].held }

func (a *AMQP) classify(dir network.Direction, p []byte, o *out) {
	d := &a.dir[dir]
	for len(p) > 0 {
		switch d.st {
		case amqpStHeader:
			if d.hdrLen == 0 {
				d.known = false
			}
			n := copy(d.hdr[d.hdrLen:], p)
			d.hdrLen += n
			d.held += n
			p = p[n:]
			if d.hdrLen == len(d.hdr) {
				a.headerDone(d, o)
			}

		case amqpStExt:
			n := min(d.ext, len(p))
			d.ext -= n
			d.consume(o, n)
			p = p[n:]
			if d.ext == 0 {
				d.afterHeader(o)
			}

		case amqpStPerf:
			n := int(min(int64(d.need-len(d.perf)), d.body, int64(len(p))))
			d.perf = append(d.perf, p[:n]...)
			d.body -= int64(n)
			d.held += n
			p = p[n:]
			if len(d.perf) == d.need || d.body == 0 {
				a.perfProgress(dir, d, o)
			}

		case amqpStBody:
			n := int(min(d.body, int64(len(p))))
			d.body -= int64(n)
			d.consume(o, n)
			p = p[n:]
			if d.body == 0 {
				d.st, d.hdrLen = amqpStHeader, 0
			}

		case amqpStDead:
			d.resolve(o, network.ClassOther)
			o.add(network.ClassOther, len(p))
			return
		}
	}
	if d.st == amqpStDead {
		d.resolve(o, network.ClassOther)
	}
}

func (d *amqpDir) consume(o *out, n int) {
	if d.known {
		o.add(d.cls, n)
	} else {
		d.held += n
	}
}

func (d *amqpDir) resolve(o *out, c network.Class) {
	if d.known {
		return
	}
	d.known, d.cls = true, c
	o.add(c, d.held)
	d.held = 0
}

// headerDone reads the 8 bytes at a frame boundary: a protocol header, which
// opens each layer ("AMQP" 3 1 0 0 for SASL, then "AMQP" 0 1 0 0), or a frame
// header.
func (a *AMQP) headerDone(d *amqpDir, o *out) {
	if string(d.hdr[:4]) == "AMQP" {
		d.resolve(o, network.ClassConnect)
		d.st, d.hdrLen = amqpStHeader, 0
		return
	}
	h, err := amqpwire.ParseFrameHeader(d.hdr[:])
	if err != nil {
		d.st = amqpStDead
		return
	}
	d.ch = h.Channel
	d.ext = h.BodyOffset() - amqpwire.FrameHeaderSize
	d.body = int64(h.Size) - int64(h.BodyOffset())
	switch {
	case d.body == 0:
		d.resolve(o, network.ClassKeepAlive)
	case h.Size > maxAMQPFrame:
		d.resolve(o, network.ClassOther)
	case h.Type == amqpwire.FrameSASL:
		d.resolve(o, network.ClassConnect)
	case h.Type != amqpwire.FrameAMQP:
		d.resolve(o, network.ClassOther)
	}
	if d.ext > 0 {
		d.st = amqpStExt
		return
	}
	d.afterHeader(o)
}

// afterHeader starts the body once the extended header is skipped.
func (d *amqpDir) afterHeader(o *out) {
	switch {
	case d.body == 0:
		d.st, d.hdrLen = amqpStHeader, 0
	case d.known:
		d.st = amqpStBody
	default:
		d.st = amqpStPerf
		d.perf = d.perf[:0]
		d.need, _, _ = perfLen(nil)
	}
}

// perfProgress runs when the performative bytes asked for have arrived, or
// the frame ended first.
func (a *AMQP) perfProgress(dir network.Direction, d *amqpDir, o *out) {
	n, known, ok := perfLen(d.perf)
	switch {
	case !ok || int64(n-len(d.perf)) > d.body:
		// Not a described list, or one that runs past the end of its frame.
		d.resolve(o, network.ClassOther)
	case known && n == len(d.perf):
		d.resolve(o, a.performative(dir, d.ch, d.perf))
	case n <= maxPerf:
		d.need = n
		return
	default:
		// Too large to keep: the descriptor alone decides.
		d.resolve(o, descriptorClass(d.perf))
	}
	if d.body == 0 {
		d.st, d.hdrLen = amqpStHeader, 0
	} else {
		d.st = amqpStBody
	}
}

// descriptorClass classifies a performative from its descriptor only.
func descriptorClass(perf []byte) network.Class {
	code, err := amqpwire.PeekDescriptor(perf)
	if err != nil {
		return network.ClassOther
	}
	switch code {
	case amqpwire.DescOpen, amqpwire.DescBegin, amqpwire.DescAttach, amqpwire.DescDetach,
		amqpwire.DescEnd, amqpwire.DescClose:
		return network.ClassConnect
	}
	return network.ClassOther
}

// performative classifies a complete performative and updates the link,
// session and delivery state it changes.
func (a *AMQP) performative(dir network.Direction, ch uint16, perf []byte) network.Class {
	code, err := amqpwire.PeekDescriptor(perf)
	if err != nil {
		return network.ClassOther
	}
	switch code {
	case amqpwire.DescOpen, amqpwire.DescClose:
		return network.ClassConnect
	case amqpwire.DescBegin:
		var b amqpwire.Begin
		if _, err := b.Decode(perf); err == nil {
			a.begin(dir, ch, b.RemoteChannel)
		}
		return network.ClassConnect
	case amqpwire.DescEnd:
		a.sessions[dir].remove(ch)
		a.links.removeSession(dir, ch)
		return network.ClassConnect
	case amqpwire.DescAttach:
		var at amqpwire.Attach
		if _, err := at.Decode(perf); err == nil {
			a.attach(dir, ch, &at)
		}
		return network.ClassConnect
	case amqpwire.DescDetach:
		r := newFieldReader(perf)
		if h, ok := r.uint(); ok && !r.bad {
			a.links.remove(dir, ch, h)
		}
		return network.ClassConnect
	case amqpwire.DescTransfer:
		return a.transfer(dir, ch, perf)
	case amqpwire.DescFlow:
		r := newFieldReader(perf)
		r.uint() // next-incoming-id
		r.uint() // incoming-window
		r.uint() // next-outgoing-id
		r.uint() // outgoing-window
		h, ok := r.uint()
		switch {
		case r.bad:
			return network.ClassOther
		case !ok:
			return network.ClassConnect
		}
		return a.linkClass(dir, ch, h)
	case amqpwire.DescDisposition:
		return a.disposition(dir, ch, perf)
	}
	return network.ClassOther
}

func (a *AMQP) begin(dir network.Direction, ch uint16, remote *uint16) {
	if remote != nil {
		// The answer to the peer's begin: both channels name one session.
		if slot, ok := a.sessions[other(dir)].get(*remote); ok {
			a.sessions[dir].put(ch, slot)
			return
		}
	}
	a.nextSlot++
	a.sessions[dir].put(ch, a.nextSlot)
}

// slot identifies the session that channel ch of direction dir belongs to.
// Without a recorded begin, the same channel number in both directions is
// taken to be one session, as most clients and servers number them.
func (a *AMQP) slot(dir network.Direction, ch uint16) uint32 {
	if s, ok := a.sessions[dir].get(ch); ok {
		return s
	}
	return 1<<31 | uint32(ch)
}

func (a *AMQP) attach(dir network.Direction, ch uint16, at *amqpwire.Attach) {
	var src, tgt string
	if at.Source != nil {
		src = at.Source.Address
	}
	if at.Target != nil {
		tgt = at.Target.Address
	}
	// The attaching end is the sender when its role is sender; the device
	// sends on the link when the device is that end.
	deviceSends := (dir == network.Up) == (at.Role == amqpwire.RoleSender)
	addr := src
	if deviceSends {
		addr = tgt
	}
	if addr == "" {
		addr = src + tgt
	}
	c, cbs := linkAddrClass(addr)
	a.links.put(link{dir: dir, ch: ch, handle: at.Handle, cls: c, cbs: cbs})
}

// linkAddrClass classifies a link address (spec §3.2).
func linkAddrClass(addr string) (c network.Class, cbs bool) {
	p := []byte(addr)
	if i := bytes.Index(p, []byte("://")); i >= 0 {
		p = p[i+3:]
		j := bytes.IndexByte(p, '/')
		if j < 0 {
			return network.ClassOther, false
		}
		p = p[j:]
	}
	if i := bytes.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	p = bytes.TrimPrefix(p, []byte{'/'})
	if eqFold(p, "$cbs") {
		return network.ClassConnect, true
	}
	if c, ok := iothubPath(p); ok {
		return c, false
	}
	if eqFold(bytes.TrimSuffix(p, []byte{'/'}), "messages/devicebound") {
		return network.ClassC2D, false
	}
	return network.ClassOther, false
}

// linkClass is the class of traffic on a known link.
func (a *AMQP) linkClass(dir network.Direction, ch uint16, h uint32) network.Class {
	l, ok := a.links.get(dir, ch, h)
	switch {
	case !ok:
		return network.ClassOther
	case l.cbs && a.cbsAnswered:
		return network.ClassTokenRenewal
	}
	return l.cls
}

func (a *AMQP) transfer(dir network.Direction, ch uint16, perf []byte) network.Class {
	r := newFieldReader(perf)
	h, _ := r.uint()
	id, hasID := r.uint()
	r.skipBinary() // delivery-tag
	r.uint()       // message-format
	settled, _ := r.bool()
	more, _ := r.bool()
	if r.bad {
		return network.ClassOther
	}
	l, ok := a.links.get(dir, ch, h)
	if !ok {
		return network.ClassOther
	}
	c := l.cls
	if l.cbs && a.cbsAnswered {
		c = network.ClassTokenRenewal
	}
	if l.cbs && dir == network.Down && !more {
		a.cbsAnswered = true
	}
	if hasID && !settled {
		a.deliv.put(delivery{dir: dir, slot: a.slot(dir, ch), id: id, cls: c})
	}
	return c
}

func (a *AMQP) disposition(dir network.Direction, ch uint16, perf []byte) network.Class {
	r := newFieldReader(perf)
	role, _ := r.bool()
	first, ok := r.uint()
	last, hasLast := r.uint()
	settled, _ := r.bool()
	if r.bad || !ok {
		return network.ClassOther
	}
	if !hasLast {
		last = first
	}
	// A receiver settles what the other side sent; a sender what it sent.
	sent := dir
	if role == bool(amqpwire.RoleReceiver) {
		sent = other(dir)
	}
	return a.deliv.settle(sent, a.slot(dir, ch), first, last, settled)
}

// link is one attached link end.
type link struct {
	used   bool
	cbs    bool
	dir    network.Direction
	cls    network.Class
	ch     uint16
	handle uint32
}

type linkTable struct {
	ents [32]link
	next uint8
}

func (t *linkTable) find(dir network.Direction, ch uint16, h uint32) int {
	for i := range t.ents {
		if e := &t.ents[i]; e.used && e.dir == dir && e.ch == ch && e.handle == h {
			return i
		}
	}
	return -1
}

func (t *linkTable) put(l link) {
	l.used = true
	i := t.find(l.dir, l.ch, l.handle)
	if i < 0 {
		for j := range t.ents {
			if !t.ents[j].used {
				i = j
				break
			}
		}
	}
	if i < 0 {
		i = int(t.next)
		t.next = (t.next + 1) % uint8(len(t.ents))
	}
	t.ents[i] = l
}

func (t *linkTable) get(dir network.Direction, ch uint16, h uint32) (link, bool) {
	if i := t.find(dir, ch, h); i >= 0 {
		return t.ents[i], true
	}
	return link{}, false
}

func (t *linkTable) remove(dir network.Direction, ch uint16, h uint32) {
	if i := t.find(dir, ch, h); i >= 0 {
		t.ents[i].used = false
	}
}

func (t *linkTable) removeSession(dir network.Direction, ch uint16) {
	for i := range t.ents {
		if e := &t.ents[i]; e.used && e.dir == dir && e.ch == ch {
			e.used = false
		}
	}
}

// delivery is an unsettled delivery and the class it was sent as.
type delivery struct {
	used bool
	dir  network.Direction
	cls  network.Class
	slot uint32
	id   uint32
}

type deliveryTable struct {
	ents [64]delivery
	next uint8
}

func (t *deliveryTable) put(d delivery) {
	d.used = true
	free := -1
	for i := range t.ents {
		e := &t.ents[i]
		if e.used && e.dir == d.dir && e.slot == d.slot && e.id == d.id {
			*e = d
			return
		}
		if !e.used && free < 0 {
			free = i
		}
	}
	if free < 0 {
		free = int(t.next)
		t.next = (t.next + 1) % uint8(len(t.ents))
	}
	t.ents[free] = d
}

// settle returns the class of delivery first (or, if it is unknown, of any
// delivery in first..last) and forgets the range when settled.
func (t *deliveryTable) settle(dir network.Direction, slot, first, last uint32, settled bool) network.Class {
	c, exact, found := network.ClassOther, false, false
	for i := range t.ents {
		e := &t.ents[i]
		if !e.used || e.dir != dir || e.slot != slot || !inSerialRange(e.id, first, last) {
			continue
		}
		if e.id == first && !exact {
			c, exact, found = e.cls, true, true
		} else if !found {
			c, found = e.cls, true
		}
		if settled {
			e.used = false
		}
	}
	return c
}

// inSerialRange reports whether id is in first..last, where the range may
// wrap around 2^32 (delivery ids are sequence numbers, spec §2.7.5).
func inSerialRange(id, first, last uint32) bool {
	return id-first <= last-first
}

// sessionTable maps the channels of one direction to session slots.
type sessionTable struct {
	ch   [16]uint16
	slot [16]uint32
	used uint16
	next uint8
}

func (t *sessionTable) find(ch uint16) int {
	for i := range t.ch {
		if t.used&(1<<i) != 0 && t.ch[i] == ch {
			return i
		}
	}
	return -1
}

func (t *sessionTable) put(ch uint16, slot uint32) {
	i := t.find(ch)
	if i < 0 {
		for j := range t.ch {
			if t.used&(1<<j) == 0 {
				i = j
				break
			}
		}
	}
	if i < 0 {
		i = int(t.next)
		t.next = (t.next + 1) % uint8(len(t.ch))
	}
	t.ch[i], t.slot[i] = ch, slot
	t.used |= 1 << i
}

func (t *sessionTable) get(ch uint16) (uint32, bool) {
	if i := t.find(ch); i >= 0 {
		return t.slot[i], true
	}
	return 0, false
}

func (t *sessionTable) remove(ch uint16) {
	if i := t.find(ch); i >= 0 {
		t.used &^= 1 << i
	}
}
