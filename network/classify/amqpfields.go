package classify

import (
	"encoding/binary"
)

// The few AMQP 1.0 encodings (spec part 1 §1.6) needed to read the leading
// fields of transfer, flow, disposition and detach without allocating. The
// full codec, internal/amqpwire, decodes the rarer performatives whose
// strings matter (attach, begin); on the per-message path its decoders
// allocate several objects per frame.
const (
	amqpNull       = 0x40
	amqpTrue       = 0x41
	amqpFalse      = 0x42
	amqpBoolean    = 0x56
	amqpUint0      = 0x43
	amqpSmallUint  = 0x52
	amqpUint       = 0x70
	amqpUlong0     = 0x44
	amqpSmallUlong = 0x53
	amqpUlong      = 0x80
	amqpVbin8      = 0xa0
	amqpVbin32     = 0xb0
	amqpSym8       = 0xa3
	amqpSym32      = 0xb3
	amqpList0      = 0x45
	amqpList8      = 0xc0
	amqpList32     = 0xd0
)

// perfLen reports the length of the described list at the start of b (a
// performative). When b is too short to tell, known is false and n is how many
// bytes are needed to learn more. ok is false when b does not start with a
// described list.
func perfLen(b []byte) (n int, known, ok bool) {
	if len(b) < 2 {
		return 2, false, true
	}
	if b[0] != 0 {
		return 0, false, false
	}
	var desc int // bytes of 0x00 and the descriptor
	switch b[1] {
	case amqpUlong0:
		desc = 2
	case amqpSmallUlong:
		desc = 3
	case amqpUlong:
		desc = 10
	case amqpSym8:
		if len(b) < 3 {
			return 3, false, true
		}
		desc = 3 + int(b[2])
	case amqpSym32:
		if len(b) < 6 {
			return 6, false, true
		}
		l := binary.BigEndian.Uint32(b[2:])
		if l > 1<<20 {
			return 0, false, false
		}
		desc = 6 + int(l)
	default:
		return 0, false, false
	}
	if len(b) < desc+1 {
		return desc + 1, false, true
	}
	switch b[desc] {
	case amqpList0:
		return desc + 1, true, true
	case amqpList8:
		if len(b) < desc+2 {
			return desc + 2, false, true
		}
		return desc + 2 + int(b[desc+1]), true, true
	case amqpList32:
		if len(b) < desc+5 {
			return desc + 5, false, true
		}
		size := binary.BigEndian.Uint32(b[desc+1:])
		if size > 1<<30 {
			return 0, false, false
		}
		return desc + 5 + int(size), true, true
	}
	return 0, false, false
}

// fieldReader reads the fields of a complete performative in order.
type fieldReader struct {
	b     []byte
	off   int
	count int // fields in the list
	i     int // fields read
	bad   bool
}

// newFieldReader positions r on the first field of the described list that
// makes up all of perf (as measured by perfLen).
func newFieldReader(perf []byte) fieldReader {
	r := fieldReader{b: perf}
	switch perf[1] {
	case amqpUlong0:
		r.off = 2
	case amqpSmallUlong:
		r.off = 3
	case amqpUlong:
		r.off = 10
	case amqpSym8:
		r.off = 3 + int(perf[2])
	case amqpSym32:
		r.off = 6 + int(binary.BigEndian.Uint32(perf[2:]))
	}
	switch perf[r.off] {
	case amqpList0:
		r.off++
	case amqpList8:
		if r.off+3 > len(perf) {
			r.bad = true
			return r
		}
		r.count = int(perf[r.off+2])
		r.off += 3
	case amqpList32:
		if r.off+9 > len(perf) {
			r.bad = true
			return r
		}
		r.count = int(binary.BigEndian.Uint32(perf[r.off+5:]))
		r.off += 9
	}
	return r
}

// next returns the constructor of the next field; present is false for a
// null or a field past the end of the list.
func (r *fieldReader) next() (code byte, present bool) {
	if r.bad || r.i >= r.count {
		return 0, false
	}
	r.i++
	if r.off >= len(r.b) {
		r.bad = true
		return 0, false
	}
	code = r.b[r.off]
	r.off++
	if code == amqpNull {
		return 0, false
	}
	return code, true
}

func (r *fieldReader) take(n int) []byte {
	if r.bad || n > len(r.b)-r.off {
		r.bad = true
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

// uint reads a uint field.
func (r *fieldReader) uint() (v uint32, present bool) {
	code, ok := r.next()
	if !ok {
		return 0, false
	}
	switch code {
	case amqpUint0:
		return 0, true
	case amqpSmallUint:
		if p := r.take(1); p != nil {
			return uint32(p[0]), true
		}
	case amqpUint:
		if p := r.take(4); p != nil {
			return binary.BigEndian.Uint32(p), true
		}
	default:
		r.bad = true
	}
	return 0, false
}

// bool reads a boolean field.
func (r *fieldReader) bool() (v, present bool) {
	code, ok := r.next()
	if !ok {
		return false, false
	}
	switch code {
	case amqpTrue:
		return true, true
	case amqpFalse:
		return false, true
	case amqpBoolean:
		if p := r.take(1); p != nil {
			return p[0] != 0, true
		}
	default:
		r.bad = true
	}
	return false, false
}

// skipBinary skips a binary field (a delivery tag).
func (r *fieldReader) skipBinary() {
	code, ok := r.next()
	if !ok {
		return
	}
	switch code {
	case amqpVbin8:
		if p := r.take(1); p != nil {
			r.take(int(p[0]))
		}
	case amqpVbin32:
		if p := r.take(4); p != nil {
			r.take(int(binary.BigEndian.Uint32(p)))
		}
	default:
		r.bad = true
	}
}
