package classify

import (
	"github.com/catmsim/catmsim/network"
)

// Flusher is implemented by every classifier in this package. A classifier holds
// back the bytes of a packet whose class it cannot know yet (an MQTT topic split
// across reads, an AMQP performative, an HTTP request line); Flush attributes the
// bytes held for one direction to [network.ClassOther], so a meter can balance its
// ledger when a connection ends in the middle of a packet. Parsing state is kept:
// if more bytes follow, they are classified as if Flush had not been called.
type Flusher interface {
	Flush(dir network.Direction, attribute func(c network.Class, n int))
}

// out coalesces consecutive attributions of one class, so one call reports one
// run per class change rather than one per packet or per parser state.
type out struct {
	fn  func(network.Class, int)
	cls network.Class
	n   int
}

func (o *out) add(c network.Class, n int) {
	if n <= 0 {
		return
	}
	if o.n > 0 && o.cls != c {
		o.fn(o.cls, o.n)
		o.n = 0
	}
	o.cls = c
	o.n += n
}

func (o *out) flush() {
	if o.n > 0 {
		o.fn(o.cls, o.n)
		o.n = 0
	}
}

func other(d network.Direction) network.Direction { return d ^ 1 }

// validDir reports whether d indexes the per-direction state arrays; a meter
// that passes anything else still gets every byte attributed, to other.
func validDir(d network.Direction) bool { return d == network.Up || d == network.Down }

// growBuf appends b to buf without letting buf grow past limit; it returns the
// buffer and how many bytes of b were kept. Buffers are reused for the life of a
// connection, so a stream allocates only when a prefix larger than any before
// arrives, and never beyond limit.
func growBuf(buf, b []byte, limit int) ([]byte, int) {
	room := limit - len(buf)
	if room <= 0 {
		return buf, 0
	}
	if len(b) > room {
		b = b[:room]
	}
	return append(buf, b...), len(b)
}

// cutSeg splits s at its first '/'.
func cutSeg(s []byte) (seg, rest []byte, found bool) {
	for i, c := range s {
		if c == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, nil, false
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring ASCII
// case in b. IoT Hub compares its fixed path segments case-insensitively
// ("deviceBound" and "devicebound" are the same link).
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether b starts with the lower-case ASCII string s,
// ignoring ASCII case in b.
func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && eqFold(b[:len(s)], s)
}

// iothubPath classifies an IoT Hub resource path given without its leading
// slash: devices/{id}/messages/events (and the module form) is telemetry,
// .../messages/devicebound c2d, .../methods/devicebound a method link,
// .../twin the twin link. Fixed segments are compared case-insensitively; ids
// are opaque. ok is false for paths outside the device namespace.
func iothubPath(p []byte) (c network.Class, ok bool) {
	s, rest, _ := cutSeg(p)
	if !eqFold(s, "devices") {
		return network.ClassOther, false
	}
	if _, rest, ok = cutSeg(rest); !ok { // device id
		return network.ClassOther, false
	}
	s, rest, _ = cutSeg(rest)
	if eqFold(s, "modules") {
		if _, rest, ok = cutSeg(rest); !ok { // module id
			return network.ClassOther, false
		}
		s, rest, _ = cutSeg(rest)
	}
	switch {
	case eqFold(s, "messages"):
		s, _, _ = cutSeg(rest)
		switch {
		case eqFold(s, "events"):
			return network.ClassTelemetry, true
		case eqFold(s, "devicebound"):
			return network.ClassC2D, true
		}
	case eqFold(s, "methods"):
		if s, _, _ = cutSeg(rest); eqFold(s, "devicebound") {
			return network.ClassMethod, true
		}
	case eqFold(s, "twin"):
		return network.ClassTwin, true
	}
	return network.ClassOther, false
}
