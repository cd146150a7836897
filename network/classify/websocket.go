package classify

import (
	"github.com/catmsim/catmsim/network"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

const (
	// wsPiece is how much payload is unmasked and handed to the inner
	// classifier at a time; it bounds the scratch buffer and the runs one inner
	// call can report.
	wsPiece = 1024
	// wsMaxQueue bounds the frames waiting for the inner classifier to decide
	// the class of bytes it still holds.
	wsMaxQueue = 64
)

// WebSocket classifies a WebSocket connection (RFC 6455) carrying another
// protocol, such as MQTT over wss (subprotocol mqtt) or AMQP over wss
// (AMQPWSB10). The zero value is not usable; call NewWebSocket.
type WebSocket struct {
	inner   network.Classifier
	innerFn func(network.Class, int) // w.collect, bound once so calls do not allocate
	runs    []wsRun                  // what the inner classifier attributed during one call
	// upgraded is set by the 101 response: from then on both directions are frames.
	upgraded bool
	dir      [2]wsDir
	scratch  [wsPiece]byte
}

type wsMode uint8

const (
	wsModeHTTP wsMode = iota
	wsModeFrames
	wsModeDead
)

type wsDir struct {
	mode wsMode
	http httpStream
	code int
	// held counts the bytes of an upgrade's first line, which is connect only
	// once it reads as HTTP.
	held int

	hdr     [14]byte
	hdrLen  int
	hdrNeed int
	hdrPaid int // header bytes already attributed by Flush
	// The frame being read.
	opcode  byte
	masked  bool
	key     [4]byte
	keyPos  int
	remain  int64
	toInner bool          // the payload goes to the inner classifier
	cls     network.Class // the class of the frame when it does not
	// binaryMsg tells continuation frames which kind of message they continue.
	binaryMsg bool
	inMsg     bool

	// queue holds, in stream order, the bytes not yet attributed because an
	// earlier byte's class is still unknown to the inner classifier.
	queue []wsSeg
	// discard counts inner bytes already attributed by Flush on the inner
	// classifier's behalf; its later attributions of them are dropped.
	discard int
	// lastCls is the class of the last inner byte attributed.
	lastCls network.Class
}

type wsSegKind uint8

const (
	segKnown   wsSegKind = iota // n bytes of class cls
	segHeader                   // a data frame header: the class of its first payload byte
	segPayload                  // n payload bytes the inner classifier has been given
	segTrailer                  // an empty frame ending a message: the class of its last byte
)

type wsSeg struct {
	kind wsSegKind
	cls  network.Class
	n    int
}

type wsRun struct {
	cls network.Class
	n   int
}

// NewWebSocket returns a classifier for one WebSocket connection whose binary
// messages carry the protocol that inner classifies. The HTTP upgrade (request
// and response, and any refused attempt before it) is connect. Each frame's
// payload is unmasked into a copy when masked; binary frames and their
// continuations go to inner, and each frame header is charged to the class
// inner gives the first byte of that frame's payload. An empty frame that ends
// a fragmented binary message goes with the message's last byte; any other
// empty data frame is connect. Ping and pong frames are keepalive, close frames connect,
// text frames, compressed (RSV1) frames and reserved opcodes other. A 64-bit
// length with its top bit set makes the rest of that direction other.
//
// Memory: a 1 KiB unmasking buffer, one 2 KiB line buffer per direction for the
// upgrade, and per direction at most 64 queued frames waiting for inner to
// decide a held byte (past that, frame headers are charged to connect and
// control frames attributed ahead of the held bytes), plus inner's own.
func NewWebSocket(inner network.Classifier) *WebSocket {
	w := &WebSocket{inner: inner}
	w.innerFn = w.collect
	return w
}

// Classify implements network.Classifier.
func (w *WebSocket) Classify(dir network.Direction, p []byte, attribute func(c network.Class, n int)) {
	o := out{fn: attribute}
	if !validDir(dir) {
		o.add(network.ClassOther, len(p))
		o.flush()
		return
	}
	d := &w.dir[dir]
	for len(p) > 0 {
		switch d.mode {
		case wsModeHTTP:
			p = w.upgrade(dir, p, &o)
		case wsModeFrames:
			p = w.frames(dir, p, &o)
		default:
			w.emit(d, &o, network.ClassOther, len(p))
			p = nil
		}
	}
	o.flush()
}

// Flush implements Flusher: bytes the inner classifier holds, queued frames
// and a partial frame header are attributed (held bytes as other).
func (w *WebSocket) Flush(dir network.Direction, attribute func(c network.Class, n int)) {
	if !validDir(dir) {
		return
	}
	d := &w.dir[dir]
	o := out{fn: attribute}
	o.add(network.ClassOther, d.held)
	d.held = 0
	if f, ok := w.inner.(Flusher); ok {
		w.runs = w.runs[:0]
		f.Flush(dir, w.innerFn)
		w.drain(d, &o)
	}
	for _, s := range d.queue {
		switch s.kind {
		case segKnown:
			o.add(s.cls, s.n)
		case segPayload:
			d.discard += s.n
			o.add(network.ClassOther, s.n)
		default:
			o.add(network.ClassOther, s.n)
		}
	}
	d.queue = d.queue[:0]
	if d.mode == wsModeFrames && d.hdrLen < d.hdrNeed {
		o.add(network.ClassOther, d.hdrLen-d.hdrPaid)
		d.hdrPaid = d.hdrLen
	}
	o.flush()
}

func (w *WebSocket) pending(dir network.Direction) int {
	d := &w.dir[dir]
	n := d.held
	for _, s := range d.queue {
		n += s.n
	}
	if d.mode == wsModeFrames && d.hdrLen < d.hdrNeed {
		n += d.hdrLen - d.hdrPaid
	}
	return n
}

// upgrade reads the HTTP/1.1 upgrade exchange; every byte of it is connect.
func (w *WebSocket) upgrade(dir network.Direction, p []byte, o *out) []byte {
	d := &w.dir[dir]
	for len(p) > 0 {
		if dir == network.Up && w.upgraded && d.http.ph == hStart {
			d.startFrames()
			return p
		}
		inFirst := d.http.ph == hFirst
		n, ev := d.http.step(p)
		p = p[n:]
		if inFirst {
			d.held += n
		} else {
			o.add(network.ClassConnect, n)
		}
		switch ev {
		case evFirstLine:
			ok := false
			if dir == network.Up {
				_, _, ok = requestLine(d.http.line, d.http.lineCut)
			} else {
				d.code, ok = statusCode(d.http.line)
			}
			c := network.ClassConnect
			if !ok {
				d.http.ph, c = hDead, network.ClassOther
			}
			o.add(c, d.held)
			d.held = 0
		case evHeadEnd:
			if dir == network.Up {
				if mode, ok := d.http.requestBody(); !ok {
					d.http.ph = hDead
				} else {
					d.http.setBody(mode)
				}
				break
			}
			switch {
			case d.code == 101:
				w.upgraded = true
				d.startFrames()
				return p
			case d.code < 200, d.code == 204, d.code == 304:
				d.http.setBody(bodyNone)
			default:
				d.http.setBody(d.http.responseBody())
			}
		}
		if d.http.ph == hDead {
			d.mode = wsModeDead
			return p
		}
	}
	return p
}

func (d *wsDir) startFrames() {
	d.mode = wsModeFrames
	d.hdrLen, d.hdrNeed, d.hdrPaid, d.remain = 0, 2, 0, 0
}

// frames reads WebSocket frames until p is used up or the direction dies.
func (w *WebSocket) frames(dir network.Direction, p []byte, o *out) []byte {
	d := &w.dir[dir]
	for len(p) > 0 {
		if d.hdrLen < d.hdrNeed {
			n := min(d.hdrNeed-d.hdrLen, len(p))
			copy(d.hdr[d.hdrLen:], p[:n])
			d.hdrLen += n
			p = p[n:]
			if d.hdrLen == d.hdrNeed && !w.headerDone(d, o) {
				d.mode = wsModeDead
				w.emit(d, o, network.ClassOther, d.hdrLen-d.hdrPaid)
				return p
			}
			continue
		}
		n := int(min(d.remain, int64(len(p))))
		if d.toInner {
			n = min(n, wsPiece)
			w.feedInner(dir, d, o, p[:n])
		} else {
			w.emit(d, o, d.cls, n)
		}
		p = p[n:]
		if d.remain -= int64(n); d.remain == 0 {
			d.hdrLen, d.hdrNeed, d.hdrPaid = 0, 2, 0
		}
	}
	return p
}

// headerDone runs when hdrNeed header bytes are in: it either asks for the
// extended length and masking key, or starts the payload. It reports false for
// a length RFC 6455 forbids.
func (w *WebSocket) headerDone(d *wsDir, o *out) bool {
	b0, b1 := d.hdr[0], d.hdr[1]
	if d.hdrNeed == 2 {
		need := 2
		switch b1 & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if b1&0x80 != 0 {
			need += 4
		}
		if need > 2 {
			d.hdrNeed = need
			return true
		}
	}
	var length int64
	switch l := b1 & 0x7f; l {
	case 126:
		length = int64(d.hdr[2])<<8 | int64(d.hdr[3])
	case 127:
		if d.hdr[2]&0x80 != 0 {
			return false
		}
		for _, c := range d.hdr[2:10] {
			length = length<<8 | int64(c)
		}
	default:
		length = int64(l)
	}
	d.masked = b1&0x80 != 0
	if d.masked {
		copy(d.key[:], d.hdr[d.hdrNeed-4:d.hdrNeed])
	}
	d.keyPos = 0
	d.remain = length
	d.opcode = b0 & 0x0f
	fin, compressed := b0&0x80 != 0, b0&0x40 != 0

	d.toInner, d.cls = false, network.ClassOther
	kind := segKnown
	switch d.opcode {
	case wsPing, wsPong:
		d.cls = network.ClassKeepAlive
	case wsClose:
		d.cls = network.ClassConnect
	case wsBinary, wsText, wsContinuation:
		continued := d.opcode == wsContinuation && d.inMsg
		binary := d.opcode == wsBinary || (continued && d.binaryMsg)
		if d.opcode != wsContinuation {
			d.binaryMsg = d.opcode == wsBinary
		}
		d.inMsg = !fin
		switch {
		case !binary || compressed:
		case length == 0 && continued:
			// Some writers end a fragmented message with an empty final
			// frame; it belongs to the message it ends.
			kind = segTrailer
		case length == 0:
			d.cls = network.ClassConnect
		default:
			d.toInner = true
			kind = segHeader
		}
	}
	if n := d.hdrNeed - d.hdrPaid; kind != segKnown && n > 0 {
		w.enqueue(d, o, wsSeg{kind: kind, n: n})
	} else {
		w.emit(d, o, d.cls, n)
	}
	if d.remain == 0 {
		d.hdrLen, d.hdrNeed, d.hdrPaid = 0, 2, 0
	}
	return true
}

// feedInner hands one piece of payload, unmasked, to the inner classifier.
func (w *WebSocket) feedInner(dir network.Direction, d *wsDir, o *out, p []byte) {
	if d.masked {
		buf := w.scratch[:len(p)]
		for i, c := range p {
			buf[i] = c ^ d.key[d.keyPos&3]
			d.keyPos++
		}
		p = buf
	}
	w.enqueue(d, o, wsSeg{kind: segPayload, n: len(p)})
	w.runs = w.runs[:0]
	w.inner.Classify(dir, p, w.innerFn)
	w.drain(d, o)
}

// collect receives the inner classifier's attributions.
func (w *WebSocket) collect(c network.Class, n int) {
	if k := len(w.runs); k > 0 && w.runs[k-1].cls == c {
		w.runs[k-1].n += n
		return
	}
	w.runs = append(w.runs, wsRun{c, n})
}

// drain attributes queued segments in order for as far as the inner
// classifier's runs reach.
func (w *WebSocket) drain(d *wsDir, o *out) {
	runs := w.runs
	for len(runs) > 0 && d.discard > 0 {
		k := min(runs[0].n, d.discard)
		runs[0].n -= k
		d.discard -= k
		if runs[0].n == 0 {
			runs = runs[1:]
		}
	}
	q := d.queue
	for len(q) > 0 {
		s := &q[0]
		switch s.kind {
		case segKnown:
			o.add(s.cls, s.n)
		case segHeader:
			if len(runs) == 0 {
				goto done
			}
			o.add(runs[0].cls, s.n)
		case segTrailer:
			o.add(d.lastCls, s.n)
		case segPayload:
			if len(runs) == 0 {
				goto done
			}
			k := min(s.n, runs[0].n)
			d.lastCls = runs[0].cls
			o.add(runs[0].cls, k)
			s.n -= k
			if runs[0].n -= k; runs[0].n == 0 {
				runs = runs[1:]
			}
			if s.n > 0 {
				continue
			}
		}
		q = q[1:]
	}
done:
	// Runs beyond the queued payload would mean inner attributed bytes it was
	// never given; they are dropped so the outer count stays exact.
	w.runs = w.runs[:0]
	if len(q) == 0 {
		d.queue = d.queue[:0]
		return
	}
	d.queue = append(d.queue[:0], q...)
}

// emit attributes n bytes of a known class, behind any queued bytes.
func (w *WebSocket) emit(d *wsDir, o *out, c network.Class, n int) {
	if n <= 0 {
		return
	}
	w.enqueue(d, o, wsSeg{kind: segKnown, cls: c, n: n})
}

func (w *WebSocket) enqueue(d *wsDir, o *out, s wsSeg) {
	if len(d.queue) == 0 {
		switch s.kind {
		case segKnown:
			o.add(s.cls, s.n)
			return
		case segTrailer:
			o.add(d.lastCls, s.n)
			return
		}
	}
	if k := len(d.queue); k > 0 {
		last := &d.queue[k-1]
		if last.kind == s.kind && (s.kind == segPayload || (s.kind == segKnown && last.cls == s.cls)) {
			last.n += s.n
			return
		}
	}
	if len(d.queue) >= wsMaxQueue-2 {
		switch s.kind {
		case segKnown:
			o.add(s.cls, s.n)
			return
		case segHeader:
			o.add(network.ClassConnect, s.n)
			return
		case segTrailer:
			o.add(d.lastCls, s.n)
			return
		}
	}
	d.queue = append(d.queue, s)
}
