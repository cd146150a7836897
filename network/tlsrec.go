package network

// TLS record framing (RFC 5246 §6.2, RFC 8446 §5.1): a 5-byte header — content
// type, protocol version, 16-bit length — and the body.
const (
	recHeaderLen = 5
	// maxRecordBody is the largest TLSCiphertext.length any version allows
	// (2^14 + 2048, RFC 5246 §6.2.3).
	maxRecordBody = 1<<14 + 2048

	recChangeCipherSpec = 20
	recAlert            = 21
	recHandshake        = 22
	recApplicationData  = 23
	recHeartbeat        = 24
)

// recordScanner follows the record framing of one direction of a TLS stream.
// It is fed the ciphertext in whatever pieces it comes and reports each record
// as it completes. Bytes that cannot be TLS framing (wrong type, version or
// length) make it opaque for the rest of the stream: it then reports no more
// records, and the stream's bytes are attributed without them. Its state is a
// fixed few bytes whatever it is fed.
type recordScanner struct {
	hdr    [recHeaderLen]byte
	hn     int // header bytes seen of the current record
	left   int // body bytes still to come
	opaque bool
}

// valid reports whether h can start a TLS record.
func validHeader(h []byte) bool {
	t := h[0]
	if t < recChangeCipherSpec || t > recHeartbeat {
		return false
	}
	if h[1] != 3 || h[2] > 4 {
		return false
	}
	return int(h[3])<<8|int(h[4]) <= maxRecordBody
}

// span returns how many bytes of p, from the start, belong to the current
// record, up to and including its last byte. It does not consume them. When the
// record's length is not known yet, or the stream is opaque, it is len(p).
func (s *recordScanner) span(p []byte) int {
	if s.opaque || len(p) == 0 {
		return len(p)
	}
	if s.hn < recHeaderLen {
		need := recHeaderLen - s.hn
		if len(p) < need {
			return len(p)
		}
		var h [recHeaderLen]byte
		copy(h[:], s.hdr[:s.hn])
		copy(h[s.hn:], p[:need])
		if !validHeader(h[:]) {
			return len(p)
		}
		return min(len(p), need+(int(h[3])<<8|int(h[4])))
	}
	return min(len(p), s.left)
}

// scan consumes p and calls done(recType, length) for every record that
// completes in it, length including the header.
func (s *recordScanner) scan(p []byte, done func(typ byte, length int)) {
	for len(p) > 0 && !s.opaque {
		if s.hn < recHeaderLen {
			k := copy(s.hdr[s.hn:], p)
			s.hn += k
			p = p[k:]
			if s.hn < recHeaderLen {
				return
			}
			if !validHeader(s.hdr[:]) {
				s.opaque = true
				return
			}
			s.left = int(s.hdr[3])<<8 | int(s.hdr[4])
		}
		k := min(len(p), s.left)
		s.left -= k
		p = p[k:]
		if s.left == 0 {
			done(s.hdr[0], recHeaderLen+(int(s.hdr[3])<<8|int(s.hdr[4])))
			s.hn = 0
		}
	}
}
