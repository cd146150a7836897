package classify

import (
	"bytes"
)

// Bounds of the HTTP/1.1 message reader. Only one line is ever kept, so memory
// per direction is at most maxLine; a head longer than maxHead is treated as a
// stream that is not HTTP.
const (
	maxLine = 2048
	maxHead = 64 << 10
	// maxChunkDigits keeps a chunk size within 60 bits.
	maxChunkDigits = 15
)

type httpPhase uint8

const (
	hStart      httpPhase = iota // between messages: blank lines are skipped
	hFirst                       // request line or status line
	hSkipFirst                   // the rest of a first line longer than maxLine
	hHeader                      // header lines
	hBody                        // a Content-Length body
	hChunkSize                   // hex digits of a chunk size
	hChunkExt                    // chunk extensions up to the end of the size line
	hChunkData                   // chunk data
	hChunkEnd                    // the CRLF after chunk data
	hTrailer                     // trailer lines after the last chunk
	hUntilClose                  // a response body delimited by the end of the stream
	hDead                        // not HTTP (any more)
)

type httpEvent uint8

const (
	evNone       httpEvent = iota // bytes consumed inside the current message
	evBlank                       // blank lines between messages
	evFirstLine                   // the first line is complete (or cut at maxLine)
	evHeadEnd                     // the empty line ending the head; call setBody
	evMessageEnd                  // the body ended
	evError                       // the stream does not follow HTTP/1.1 framing
)

// bodyMode is how a message's body is delimited (RFC 9112 §6.3).
type bodyMode uint8

const (
	bodyNone bodyMode = iota
	bodyLength
	bodyChunked
	bodyUntilClose
)

// httpStream reads the framing of one direction of an HTTP/1.1 connection:
// heads line by line, bodies by Content-Length or chunked encoding. It keeps
// the first line of the current message for the caller and the few header
// facts framing needs; it never buffers a body.
type httpStream struct {
	ph   httpPhase
	line []byte // the current line without its CRLF, cut at maxLine
	// lineLen counts the bytes of the current line including those not kept.
	lineLen  int
	lineCut  bool // the line was longer than maxLine and lost its end
	lineDone bool // the line ended; the next byte starts a new one
	headLen  int
	clen     int64
	hasCLen  bool
	chunked  bool
	teOther  bool // a transfer coding other than a final chunked
	badHead  bool
	chunkLen int64
	digits   int
	remain   int64
}

// step consumes bytes from p up to the next event and returns how many.
func (s *httpStream) step(p []byte) (int, httpEvent) {
	switch s.ph {
	case hStart:
		n := 0
		for n < len(p) && (p[n] == '\r' || p[n] == '\n') {
			n++
		}
		if n > 0 {
			return n, evBlank
		}
		s.headLen, s.clen, s.hasCLen, s.chunked, s.teOther, s.badHead = 0, 0, false, false, false, false
		s.ph = hFirst
		return 0, evNone

	case hFirst:
		// Consume no more than the line buffer holds before the event, so that
		// the event falls on the same byte however the stream is cut.
		limit := maxLine - len(s.line)
		if s.lineDone {
			limit = maxLine
		}
		if i := bytes.IndexByte(p, '\n'); i >= 0 && i <= limit {
			p = p[:i+1]
		} else if len(p) > limit {
			p = p[:limit]
		}
		n, done := s.readLine(p)
		// On evFirstLine the line stays in s.line until the next step.
		if done {
			s.ph = hHeader
			return n, evFirstLine
		}
		if len(s.line) == maxLine {
			// The caller needs only the method and the start of the target.
			s.lineCut = true
			s.ph = hSkipFirst
			return n, evFirstLine
		}
		return n, evNone

	case hSkipFirst:
		n, done := s.readLine(p)
		if done {
			s.ph = hHeader
		}
		return n, evNone

	case hHeader, hTrailer:
		n, done := s.readLine(p)
		if s.headLen += n; s.headLen > maxHead {
			s.ph = hDead
			return n, evError
		}
		if !done {
			return n, evNone
		}
		empty := len(s.line) == 0
		if !empty && s.ph == hHeader {
			s.header(s.line)
		}
		if !empty {
			return n, evNone
		}
		if s.ph == hTrailer {
			s.ph = hStart
			return n, evMessageEnd
		}
		if s.badHead {
			s.ph = hDead
			return n, evError
		}
		return n, evHeadEnd

	case hBody:
		n := int(min(s.remain, int64(len(p))))
		s.remain -= int64(n)
		if s.remain == 0 {
			s.ph = hStart
			return n, evMessageEnd
		}
		return n, evNone

	case hChunkSize:
		n := 0
		for n < len(p) {
			v, ok := unhex(p[n])
			if !ok {
				break
			}
			if s.digits++; s.digits > maxChunkDigits {
				s.ph = hDead
				return n, evError
			}
			s.chunkLen = s.chunkLen<<4 | int64(v)
			n++
		}
		if n < len(p) {
			if s.digits == 0 {
				s.ph = hDead
				return n, evError
			}
			s.ph = hChunkExt
		}
		return n, evNone

	case hChunkExt:
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return len(p), evNone
		}
		if s.chunkLen == 0 {
			s.ph = hTrailer
		} else {
			s.remain = s.chunkLen
			s.ph = hChunkData
		}
		return i + 1, evNone

	case hChunkData:
		n := int(min(s.remain, int64(len(p))))
		if s.remain -= int64(n); s.remain == 0 {
			s.ph = hChunkEnd
			s.digits = 0
		}
		return n, evNone

	case hChunkEnd:
		switch p[0] {
		case '\r':
			if s.digits > 0 { // a second CR
				s.ph = hDead
				return 1, evError
			}
			s.digits = 1
			return 1, evNone
		case '\n':
			s.ph = hChunkSize
			s.chunkLen, s.digits = 0, 0
			return 1, evNone
		}
		s.ph = hDead
		return 0, evError

	case hUntilClose:
		return len(p), evNone
	}
	return len(p), evNone // hDead
}

// readLine appends p up to and including the next LF to the current line and
// reports whether the line ended. Bytes past maxLine are counted, not kept.
func (s *httpStream) readLine(p []byte) (int, bool) {
	if s.lineDone {
		s.line, s.lineLen, s.lineDone = s.line[:0], 0, false
	}
	i := bytes.IndexByte(p, '\n')
	n, done := len(p), false
	if i >= 0 {
		n, done = i+1, true
	}
	body := p[:n]
	if done {
		body = body[:len(body)-1]
	}
	s.line, _ = growBuf(s.line, body, maxLine)
	s.lineLen += n
	if done {
		s.lineDone = true
		s.lineCut = s.lineLen-1 > len(s.line)
		if !s.lineCut && len(s.line) > 0 && s.line[len(s.line)-1] == '\r' {
			s.line = s.line[:len(s.line)-1]
		}
	}
	return n, done
}

// header records the header fields that decide where the body ends.
func (s *httpStream) header(l []byte) {
	name, value, ok := bytes.Cut(l, []byte{':'})
	if !ok {
		return
	}
	value = bytes.Trim(value, " \t")
	switch {
	case eqFold(name, "content-length"):
		v, ok := parseDecimal(value)
		if !ok || (s.hasCLen && v != s.clen) {
			s.badHead = true
			return
		}
		s.clen, s.hasCLen = v, true
	case eqFold(name, "transfer-encoding"):
		// The final coding decides: "gzip, chunked" is chunked.
		last := value
		if i := bytes.LastIndexByte(value, ','); i >= 0 {
			last = bytes.Trim(value[i+1:], " \t")
		}
		if eqFold(last, "chunked") {
			s.chunked, s.teOther = true, false
		} else if len(last) > 0 {
			s.chunked, s.teOther = false, true
		}
	}
}

// setBody starts reading the body; it reports whether the message ended with
// its head.
func (s *httpStream) setBody(m bodyMode) bool {
	switch m {
	case bodyLength:
		if s.clen > 0 {
			s.ph, s.remain = hBody, s.clen
			return false
		}
	case bodyChunked:
		s.ph, s.chunkLen, s.digits = hChunkSize, 0, 0
		return false
	case bodyUntilClose:
		s.ph = hUntilClose
		return false
	}
	s.ph = hStart
	return true
}

// requestBody is the body mode of a request (RFC 9112 §6.3 rules 4-7): a
// transfer coding other than chunked cannot be framed, so the stream is lost.
func (s *httpStream) requestBody() (bodyMode, bool) {
	switch {
	case s.chunked:
		return bodyChunked, true
	case s.teOther:
		return bodyNone, false
	case s.hasCLen:
		return bodyLength, true
	}
	return bodyNone, true
}

// responseBody is the body mode of a final response that may carry a body.
func (s *httpStream) responseBody() bodyMode {
	switch {
	case s.chunked:
		return bodyChunked
	case s.teOther:
		return bodyUntilClose
	case s.hasCLen:
		return bodyLength
	}
	return bodyUntilClose
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseDecimal parses a non-negative Content-Length of at most 18 digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// requestLine splits "METHOD target HTTP/x.y"; ok is false for anything else.
// A line cut at maxLine may lack its version and is accepted without it.
func requestLine(l []byte, cut bool) (method, target []byte, ok bool) {
	method, rest, ok := bytes.Cut(l, []byte{' '})
	if !ok || len(method) == 0 {
		return nil, nil, false
	}
	for _, c := range method {
		if c <= ' ' || c >= 0x7f {
			return nil, nil, false
		}
	}
	target, version, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return method, rest, cut && len(rest) > 0
	}
	return method, target, len(target) > 0 && bytes.HasPrefix(version, []byte("HTTP/"))
}

// statusCode returns the code of "HTTP/x.y NNN reason".
func statusCode(l []byte) (int, bool) {
	if !bytes.HasPrefix(l, []byte("HTTP/")) {
		return 0, false
	}
	_, rest, ok := bytes.Cut(l, []byte{' '})
	if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, false
	}
	code := 0
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 100
}
