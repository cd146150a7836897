package classify

import (
	"bytes"

	"github.com/catmsim/catmsim/network"
)

// HTTP classifies an HTTP/1.1 connection whose requests travel up (the device is
// the client). The zero value is not usable; call NewHTTP.
type HTTP struct {
	rules []rule
	req   httpSide
	resp  httpSide
	queue reqQueue
	// tunnel is set after a 101 Switching Protocols: what follows in either
	// direction is no longer HTTP.
	tunnel bool
}

type httpSide struct {
	s       httpStream
	known   bool // the current request's class is decided
	cls     network.Class
	held    int
	code    int  // status code of the current response
	popped  bool // the current response's request has left the queue
	started bool // the current response has taken its class from the queue
}

// NewHTTP returns a classifier for one HTTP/1.1 connection. Requests are read
// for their request line, their headers (a head is at most 64 KiB; only one
// line, at most 2 KiB, is kept) and their body length, Content-Length or
// chunked. Responses are matched to requests in order, as HTTP/1.1 pipelining
// requires, and take the class of their request; a response to HEAD, a 1xx, a
// 204 or a 304 has no body, and a response with neither length nor chunking
// runs to the end of the stream. After a 101 both directions are other.
//
// Rules are matched against the request path without its query string, before
// the built-in table: IoT Hub device REST POST /devices/{id}/messages/events is
// telemetry and anything under /devices/{id}/messages/devicebound (poll,
// complete, reject, abandon) c2d; service REST /twins/{id}/methods (and the
// module form) is method and anything else under /twins/ twin; Event Hubs REST
// POST /{hub}/messages, /{hub}/publishers/{p}/messages and
// /{hub}/partitions/{p}/messages is telemetry; everything else is other. Fixed
// segments are compared case-insensitively.
//
// Memory: two line buffers of at most 2 KiB and an 8-entry queue of
// outstanding requests (consecutive requests of one class share an entry; past
// 8 runs, further requests are counted with the newest run).
func NewHTTP(rules ...Rule) *HTTP {
	return &HTTP{rules: compileRules(rules)}
}

// Classify implements network.Classifier.
func (h *HTTP) Classify(dir network.Direction, p []byte, attribute func(c network.Class, n int)) {
	o := out{fn: attribute}
	switch {
	case h.tunnel || !validDir(dir):
		o.add(network.ClassOther, len(p))
	case dir == network.Up:
		h.requests(p, &o)
	default:
		h.responses(p, &o)
	}
	o.flush()
}

// Flush implements Flusher.
func (h *HTTP) Flush(dir network.Direction, attribute func(c network.Class, n int)) {
	if !validDir(dir) {
		return
	}
	side := &h.req
	if dir == network.Down {
		side = &h.resp
	}
	if side.held > 0 {
		attribute(network.ClassOther, side.held)
		side.held = 0
	}
}

func (h *HTTP) pending(dir network.Direction) int {
	if dir == network.Down {
		return h.resp.held
	}
	return h.req.held
}

func (h *HTTP) requests(p []byte, o *out) {
	r := &h.req
	for len(p) > 0 {
		if r.s.ph == hDead {
			r.resolve(o, network.ClassOther)
			o.add(network.ClassOther, len(p))
			return
		}
		n, ev := r.s.step(p)
		p = p[n:]
		switch {
		case ev == evBlank:
			o.add(network.ClassOther, n)
			continue
		case r.known:
			o.add(r.cls, n)
		default:
			r.held += n
		}
		switch ev {
		case evFirstLine:
			method, target, ok := requestLine(r.s.line, r.s.lineCut)
			if !ok {
				r.s.ph = hDead
				break
			}
			r.resolve(o, h.requestClass(method, target))
			h.queue.push(r.cls, string(method) == "HEAD")
		case evHeadEnd:
			mode, ok := r.s.requestBody()
			if !ok {
				r.s.ph = hDead
				break
			}
			if r.s.setBody(mode) {
				r.known = false
			}
		case evMessageEnd:
			r.known = false
		}
	}
}

func (h *HTTP) responses(p []byte, o *out) {
	r := &h.resp
	for len(p) > 0 {
		if r.s.ph == hDead {
			o.add(network.ClassOther, len(p))
			return
		}
		if r.s.ph == hFirst && !r.started {
			// A response is known to belong to the oldest unanswered request
			// from its first byte; nothing needs to be held.
			r.started, r.popped = true, false
			r.cls, _ = h.queue.peek()
		}
		n, ev := r.s.step(p)
		p = p[n:]
		if ev == evBlank {
			o.add(network.ClassOther, n)
			continue
		}
		o.add(r.cls, n)
		switch ev {
		case evFirstLine:
			code, ok := statusCode(r.s.line)
			if !ok {
				r.s.ph = hDead
			}
			r.code = code
		case evHeadEnd:
			h.responseHeadEnd()
			if h.tunnel {
				o.add(network.ClassOther, len(p))
				return
			}
		case evMessageEnd:
			h.responseDone()
		}
	}
}

func (h *HTTP) responseHeadEnd() {
	r := &h.resp
	_, head := h.queue.peek()
	switch {
	case r.code == 101:
		h.tunnel = true
		h.responseDone()
	case r.code < 200:
		// An interim response: the final one for the same request follows.
		r.s.setBody(bodyNone)
		r.started = false
	case head || r.code == 204 || r.code == 304:
		r.s.setBody(bodyNone)
		h.responseDone()
	default:
		mode := r.s.responseBody()
		if r.s.setBody(mode) {
			h.responseDone()
		} else if mode == bodyUntilClose {
			h.queue.pop()
			r.popped = true
		}
	}
}

func (h *HTTP) responseDone() {
	r := &h.resp
	if !r.popped {
		h.queue.pop()
	}
	r.started, r.popped = false, false
}

func (r *httpSide) resolve(o *out, c network.Class) {
	if r.known {
		return
	}
	r.known, r.cls = true, c
	o.add(c, r.held)
	r.held = 0
}

// requestClass classifies a request by its method and target.
func (h *HTTP) requestClass(method, target []byte) network.Class {
	path := requestPath(target)
	if c, ok := classifyByRules(h.rules, network.Up, method, path); ok {
		return c
	}
	return restClass(method, path)
}

var rootPath = []byte("/")

// requestPath returns the path of an origin-form or absolute-form target,
// without query or fragment.
func requestPath(t []byte) []byte {
	for _, scheme := range [...]string{"http://", "https://"} {
		if hasPrefixFold(t, scheme) {
			t = t[len(scheme):]
			i := bytes.IndexByte(t, '/')
			if i < 0 {
				return rootPath
			}
			t = t[i:]
			break
		}
	}
	if i := bytes.IndexAny(t, "?#"); i >= 0 {
		t = t[:i]
	}
	return t
}

// restClass is the built-in table for IoT Hub and Event Hubs REST paths.
func restClass(method, path []byte) network.Class {
	if len(path) == 0 || path[0] != '/' {
		return network.ClassOther
	}
	p := bytes.TrimSuffix(path[1:], []byte{'/'})
	post := string(method) == "POST"
	if c, ok := iothubPath(p); ok {
		switch {
		case c == network.ClassC2D:
			return c
		case c == network.ClassTelemetry && post:
			return c
		}
		return network.ClassOther
	}
	var segs [6][]byte
	n := splitSegs(p, &segs)
	if eqFold(segs[0], "twins") {
		if (n == 3 && eqFold(segs[2], "methods")) || (n == 5 && eqFold(segs[2], "modules") && eqFold(segs[4], "methods")) {
			return network.ClassMethod
		}
		return network.ClassTwin
	}
	if post && (n == 2 && eqFold(segs[1], "messages") ||
		n == 4 && (eqFold(segs[1], "publishers") || eqFold(segs[1], "partitions")) && eqFold(segs[3], "messages")) {
		return network.ClassTelemetry
	}
	return network.ClassOther
}

// splitSegs cuts p at '/' into segs and returns the number of segments, or
// len(segs)+1 when there are more than fit.
func splitSegs(p []byte, segs *[6][]byte) int {
	for n := range segs {
		var more bool
		segs[n], p, more = cutSeg(p)
		if !more {
			return n + 1
		}
	}
	return len(segs) + 1
}

// reqQueue is the FIFO of unanswered requests, run-length encoded so that a
// long pipeline of one kind of request costs one entry.
type reqQueue struct {
	ents  [8]reqRun
	first int
	count int
}

type reqRun struct {
	cls  network.Class
	head bool
	n    uint32
}

func (q *reqQueue) push(c network.Class, head bool) {
	if q.count > 0 {
		last := &q.ents[(q.first+q.count-1)%len(q.ents)]
		if (last.cls == c && last.head == head) || q.count == len(q.ents) {
			last.n++
			return
		}
	}
	q.ents[(q.first+q.count)%len(q.ents)] = reqRun{cls: c, head: head, n: 1}
	q.count++
}

// peek returns the class of the oldest unanswered request, or other when a
// response arrives for no request.
func (q *reqQueue) peek() (network.Class, bool) {
	if q.count == 0 {
		return network.ClassOther, false
	}
	e := q.ents[q.first]
	return e.cls, e.head
}

func (q *reqQueue) pop() {
	if q.count == 0 {
		return
	}
	e := &q.ents[q.first]
	if e.n--; e.n == 0 {
		q.first = (q.first + 1) % len(q.ents)
		q.count--
	}
}
