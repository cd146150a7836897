package amqpwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ProtocolID is the protocol id byte of an 8-byte protocol header.
type ProtocolID uint8

// The protocol ids of AMQP 1.0 (spec §2.2, §5.1, §5.2).
const (
	ProtocolAMQP ProtocolID = 0 // plain AMQP
	ProtocolTLS  ProtocolID = 2 // TLS negotiated inside AMQP (not supported here)
	ProtocolSASL ProtocolID = 3 // SASL security layer
)

// ProtocolHeader is the 8-byte header "AMQP" id major minor revision that
// opens each protocol layer.
type ProtocolHeader struct {
	ID                     ProtocolID
	Major, Minor, Revision uint8
}

// Bytes returns the header's wire form.
func (h ProtocolHeader) Bytes() [8]byte {
	return [8]byte{'A', 'M', 'Q', 'P', byte(h.ID), h.Major, h.Minor, h.Revision}
}

// Header returns the AMQP 1.0.0 header for protocol id.
func (id ProtocolID) Header() ProtocolHeader {
	return ProtocolHeader{ID: id, Major: 1}
}

// ParseProtocolHeader parses the first 8 bytes of b. Headers that are
// well-formed but not AMQP 1.0.0 over plain or SASL (the TLS header among
// them) are returned together with an error wrapping ErrProtocolHeader; a
// server answers such a header with the header it does support and closes
// the connection (spec §2.2).
func ParseProtocolHeader(b []byte) (ProtocolHeader, error) {
	if len(b) < 8 {
		return ProtocolHeader{}, fmt.Errorf("%w: need 8 bytes, have %d", ErrProtocolHeader, len(b))
	}
	if string(b[:4]) != "AMQP" {
		return ProtocolHeader{}, fmt.Errorf("%w: % x is not an amqp header (a client speaking another protocol?)", ErrProtocolHeader, b[:8])
	}
	h := ProtocolHeader{ID: ProtocolID(b[4]), Major: b[5], Minor: b[6], Revision: b[7]}
	switch {
	case h.ID == ProtocolTLS:
		return h, fmt.Errorf("%w: tls inside amqp (id 2) is not supported; connect with tls on the socket instead", ErrProtocolHeader)
	case h.ID != ProtocolAMQP && h.ID != ProtocolSASL:
		return h, fmt.Errorf("%w: unknown protocol id %d", ErrProtocolHeader, h.ID)
	case h.Major != 1 || h.Minor != 0 || h.Revision != 0:
		return h, fmt.Errorf("%w: version %d.%d.%d, only 1.0.0 is supported", ErrProtocolHeader, h.Major, h.Minor, h.Revision)
	}
	return h, nil
}

// FrameType is the type byte of a frame header.
type FrameType uint8

// The frame types.
const (
	FrameAMQP FrameType = 0x00
	FrameSASL FrameType = 0x01
)

func (t FrameType) String() string {
	switch t {
	case FrameAMQP:
		return "amqp"
	case FrameSASL:
		return "sasl"
	}
	return fmt.Sprintf("FrameType(0x%02x)", uint8(t))
}

// FrameHeaderSize is the size of the fixed frame header.
const FrameHeaderSize = 8

// MinMaxFrameSize is the smallest max-frame-size a peer may set, and so the
// largest frame that must be accepted before open is exchanged.
const MinMaxFrameSize = 512

// FrameHeader is the fixed 8-byte frame header (spec §2.3.1).
type FrameHeader struct {
	Size       uint32 // whole frame, header included
	DataOffset uint8  // in 4-byte words; the body starts at 4*DataOffset
	Type       FrameType
	Channel    uint16 // for SASL frames the field is ignored
}

// BodyOffset returns where the body starts, counted from the frame's first
// byte; bytes between FrameHeaderSize and it are the extended header.
func (h FrameHeader) BodyOffset() int { return 4 * int(h.DataOffset) }

// ParseFrameHeader parses and checks the 8-byte frame header at the start
// of b. It does not check the size against a limit; see FrameReader.
func ParseFrameHeader(b []byte) (FrameHeader, error) {
	if len(b) < FrameHeaderSize {
		return FrameHeader{}, &DecodeError{Field: "frame header", Expected: "8 bytes", Found: fmt.Sprintf("%d bytes", len(b))}
	}
	h := FrameHeader{
		Size:       binary.BigEndian.Uint32(b),
		DataOffset: b[4],
		Type:       FrameType(b[5]),
		Channel:    binary.BigEndian.Uint16(b[6:]),
	}
	switch {
	case h.Size < FrameHeaderSize:
		return h, &DecodeError{Field: "frame header", Expected: "a frame size of at least 8", Found: fmt.Sprintf("size %d", h.Size)}
	case h.DataOffset < 2:
		return h, &DecodeError{Offset: 4, Field: "frame header", Expected: "a data offset of at least 2", Found: fmt.Sprintf("doff %d", h.DataOffset)}
	case uint32(h.BodyOffset()) > h.Size:
		return h, &DecodeError{Offset: 4, Field: "frame header", Expected: fmt.Sprintf("a data offset within the %d-byte frame", h.Size), Found: fmt.Sprintf("doff %d", h.DataOffset)}
	}
	return h, nil
}

// Frame is one frame read from a stream.
type Frame struct {
	Type    FrameType
	Channel uint16
	Size    uint32 // bytes the frame took on the wire
	Body    []byte // nil for an empty (heartbeat) frame
}

// Performative decodes the frame body, checking that SASL performatives
// arrive in SASL frames and the others in AMQP frames. It returns the
// performative and the payload that follows it; both alias f.Body.
func (f Frame) Performative() (Performative, []byte, error) {
	if f.Body == nil {
		return nil, nil, &DecodeError{Field: "frame body", Expected: "a performative", Found: "an empty frame"}
	}
	p, payload, err := DecodeFrameBody(f.Body)
	if err != nil {
		return nil, nil, err
	}
	if p.FrameType() != f.Type {
		return nil, nil, &DecodeError{Field: "frame body", Expected: "a performative of a " + f.Type.String() + " frame", Found: fmt.Sprintf("%T", p)}
	}
	return p, payload, nil
}

// FrameReader reads protocol headers and frames from a stream. It is not
// safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	max uint32
	hdr [FrameHeaderSize]byte
}

// NewFrameReader returns a reader that rejects frames larger than
// maxFrameSize. Use MinMaxFrameSize until open has been exchanged, then
// SetMaxFrameSize with the value this side advertised. Wrap a net.Conn in a
// bufio.Reader to save system calls.
func NewFrameReader(r io.Reader, maxFrameSize uint32) *FrameReader {
	return &FrameReader{r: r, max: maxFrameSize}
}

// SetMaxFrameSize changes the size limit for later frames.
func (fr *FrameReader) SetMaxFrameSize(n uint32) { fr.max = n }

// ReadProtocolHeader reads and parses an 8-byte protocol header. On a
// header it does not support it returns the header and an error wrapping
// ErrProtocolHeader.
func (fr *FrameReader) ReadProtocolHeader() (ProtocolHeader, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return ProtocolHeader{}, fmt.Errorf("reading amqp protocol header: %w", err)
	}
	return ParseProtocolHeader(fr.hdr[:])
}

// ReadFrame reads one frame, skipping its extended header. It returns
// io.EOF if the stream ends cleanly before a frame starts and
// io.ErrUnexpectedEOF if it ends inside one. A frame above the size limit
// fails with *FrameSizeError before its body is read or allocated. The body
// is a fresh slice that the reader never touches again, so values decoded
// from it may alias it safely.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("reading amqp frame header: %w", err)
	}
	h, err := ParseFrameHeader(fr.hdr[:])
	if err != nil {
		return Frame{}, err
	}
	if h.Size > fr.max {
		return Frame{}, &FrameSizeError{Size: h.Size, Max: fr.max}
	}
	f := Frame{Type: h.Type, Channel: h.Channel, Size: h.Size}
	if ext := h.BodyOffset() - FrameHeaderSize; ext > 0 {
		if _, err := io.CopyN(io.Discard, fr.r, int64(ext)); err != nil {
			return Frame{}, fmt.Errorf("reading amqp extended frame header: %w", unexpected(err))
		}
	}
	n := int(h.Size) - h.BodyOffset()
	if n == 0 {
		return f, nil
	}
	if f.Body, err = readBody(fr.r, n); err != nil {
		return Frame{}, fmt.Errorf("reading amqp frame body of %d bytes: %w", n, unexpected(err))
	}
	return f, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readBody reads n bytes, growing the buffer as data arrives, so that a
// peer announcing a large frame and then sending nothing costs at most
// bodyChunk bytes of memory rather than the size it announced.
func readBody(r io.Reader, n int) ([]byte, error) {
	const bodyChunk = 64 << 10
	b := make([]byte, min(n, bodyChunk))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	for len(b) < n {
		have := len(b)
		b = append(b, make([]byte, min(n-have, have))...)
		if _, err := io.ReadFull(r, b[have:]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// AppendFrame appends a whole frame to dst: header, the encoded
// performative p and payload. A nil p with no payload makes an empty frame,
// which keeps an idle connection alive.
func AppendFrame(dst []byte, typ FrameType, channel uint16, p Performative, payload []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 2, byte(typ), byte(channel>>8), byte(channel))
	if p != nil {
		var err error
		if dst, err = p.Encode(dst); err != nil {
			return dst[:start], fmt.Errorf("encoding %T: %w", p, err)
		}
	}
	dst = append(dst, payload...)
	size := len(dst) - start
	if uint64(size) > math.MaxUint32 {
		return dst[:start], &FrameSizeError{Size: math.MaxUint32, Max: math.MaxUint32}
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(size))
	return dst, nil
}

// FrameWriter writes protocol headers and frames, each with a single Write
// call so that a byte meter below sees whole frames. It is not safe for
// concurrent use.
type FrameWriter struct {
	w   io.Writer
	max uint32
	buf []byte
}

// NewFrameWriter returns a writer with no frame size limit until
// SetMaxFrameSize is called with the peer's max-frame-size.
func NewFrameWriter(w io.Writer) *FrameWriter {
	return &FrameWriter{w: w, max: math.MaxUint32}
}

// SetMaxFrameSize sets the largest frame the peer accepts.
func (fw *FrameWriter) SetMaxFrameSize(n uint32) { fw.max = n }

// WriteProtocolHeader writes an 8-byte protocol header.
func (fw *FrameWriter) WriteProtocolHeader(h ProtocolHeader) error {
	b := h.Bytes()
	if _, err := fw.w.Write(b[:]); err != nil {
		return fmt.Errorf("writing amqp protocol header: %w", err)
	}
	return nil
}

// WriteFrame encodes and writes one frame (see AppendFrame). A frame larger
// than the peer's limit is not written and fails with *FrameSizeError;
// splitting a large message over several transfers is the caller's job.
func (fw *FrameWriter) WriteFrame(typ FrameType, channel uint16, p Performative, payload []byte) error {
	b, err := AppendFrame(fw.buf[:0], typ, channel, p, payload)
	if err != nil {
		return err
	}
	// Keep the buffer for the next frame unless one large frame grew it.
	if cap(b) <= 1<<20 {
		fw.buf = b
	} else {
		fw.buf = nil
	}
	if uint64(len(b)) > uint64(fw.max) {
		return &FrameSizeError{Size: uint32(len(b)), Max: fw.max}
	}
	if _, err := fw.w.Write(b); err != nil {
		return fmt.Errorf("writing amqp frame: %w", err)
	}
	return nil
}

// WriteEmpty writes an empty frame, the AMQP heartbeat.
func (fw *FrameWriter) WriteEmpty() error {
	return fw.WriteFrame(FrameAMQP, 0, nil, nil)
}
