package amqpwire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"
)

func TestParseProtocolHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ProtocolHeader
		wantErr bool
	}{
		{"amqp", "AMQP\x00\x01\x00\x00", ProtocolHeader{ID: ProtocolAMQP, Major: 1}, false},
		{"sasl", "AMQP\x03\x01\x00\x00", ProtocolHeader{ID: ProtocolSASL, Major: 1}, false},
		{"tls is refused but parsed", "AMQP\x02\x01\x00\x00", ProtocolHeader{ID: ProtocolTLS, Major: 1}, true},
		{"unknown id", "AMQP\x01\x01\x00\x00", ProtocolHeader{ID: 1, Major: 1}, true},
		{"amqp 0-10", "AMQP\x01\x01\x00\x0a", ProtocolHeader{ID: 1, Major: 1, Revision: 10}, true},
		{"version 2", "AMQP\x00\x02\x00\x00", ProtocolHeader{Major: 2}, true},
		{"http", "GET / HTTP/1.1", ProtocolHeader{}, true},
		{"mqtt connect", "\x10\x1c\x00\x04MQTT", ProtocolHeader{}, true},
		{"short", "AMQP", ProtocolHeader{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseProtocolHeader([]byte(tt.in))
			if h != tt.want {
				t.Errorf("header %+v, want %+v", h, tt.want)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, ErrProtocolHeader) || ErrorCondition(err) != ConditionFramingError) {
				t.Errorf("error %v does not wrap ErrProtocolHeader", err)
			}
			if err == nil {
				if b := h.Bytes(); string(b[:]) != tt.in {
					t.Errorf("Bytes() = %q", b)
				}
			}
		})
	}
}

func TestFrameReader(t *testing.T) {
	open, err := AppendFrame(nil, FrameAMQP, 0, &Open{ContainerID: "c", MaxFrameSize: 512, ChannelMax: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A frame with a 4-byte extended header (doff 3) that must be skipped.
	ext := append([]byte{0, 0, 0, 0, 3, 1, 0, 9, 0xee, 0xee, 0xee, 0xee}, 0x00, 0x53, 0x44, 0xc0, 0x03, 0x01, 0x50, 0x00)
	ext[3] = byte(len(ext))
	var stream []byte
	stream = append(stream, "AMQP\x00\x01\x00\x00"...)
	stream = append(stream, open...)
	stream = append(stream, 0, 0, 0, 8, 2, 0, 0, 0) // heartbeat
	stream = append(stream, ext...)

	fr := NewFrameReader(bytes.NewReader(stream), MinMaxFrameSize)
	h, err := fr.ReadProtocolHeader()
	if err != nil || h != ProtocolAMQP.Header() {
		t.Fatalf("ReadProtocolHeader = %+v, %v", h, err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if p, _, err := f.Performative(); err != nil || p.(*Open).ContainerID != "c" || f.Size != uint32(len(open)) {
		t.Fatalf("open frame: %+v, %v", p, err)
	}
	f, err = fr.ReadFrame()
	if err != nil || f.Body != nil || f.Size != 8 || f.Type != FrameAMQP {
		t.Fatalf("heartbeat: %+v, %v", f, err)
	}
	f, err = fr.ReadFrame()
	if err != nil || f.Type != FrameSASL || f.Channel != 9 || f.Size != uint32(len(ext)) {
		t.Fatalf("extended frame: %+v, %v", f, err)
	}
	if p, _, err := f.Performative(); err != nil || p.(*SASLOutcome).Code != SASLOK {
		t.Fatalf("extended frame body: %+v, %v", p, err)
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

// hugeReader claims to be a stream and counts how much is read from it.
type hugeReader struct {
	prefix []byte
	read   int
}

func (r *hugeReader) Read(p []byte) (int, error) {
	n := copy(p, r.prefix[min(r.read, len(r.prefix)):])
	if n == 0 {
		n = len(p) // an endless supply of zeros after the prefix
		clear(p)
	}
	r.read += n
	return n, nil
}

func TestFrameReaderRejectsOversizedFrames(t *testing.T) {
	// A header claiming a 4 GiB frame: rejected before the body is read.
	r := &hugeReader{prefix: []byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0}}
	fr := NewFrameReader(r, 65536)
	var err error
	allocs := testing.AllocsPerRun(1, func() {
		r.read = 0
		_, err = fr.ReadFrame()
	})
	var fe *FrameSizeError
	if !errors.As(err, &fe) || fe.Size != math.MaxUint32 || fe.Max != 65536 {
		t.Fatalf("ReadFrame = %v, want *FrameSizeError", err)
	}
	if r.read != 8 {
		t.Errorf("read %d bytes of an oversized frame, want only its 8-byte header", r.read)
	}
	if allocs > 2 {
		t.Errorf("rejecting took %v allocations", allocs)
	}
	if ErrorCondition(err) != ConditionFramingError {
		t.Errorf("ErrorCondition = %q", ErrorCondition(err))
	}

	// Raising the limit lets the same size through.
	fr.SetMaxFrameSize(1 << 20)
	r2 := bytes.NewReader(append([]byte{0, 0x10, 0, 0, 2, 0, 0, 0}, make([]byte, 1<<20-8)...))
	fr = NewFrameReader(r2, 1<<20)
	if f, err := fr.ReadFrame(); err != nil || len(f.Body) != 1<<20-8 {
		t.Fatalf("1 MiB frame: %d bytes, %v", len(f.Body), err)
	}
}

func TestFrameReaderTruncatedAndMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error // matched with errors.Is; nil means a *DecodeError
	}{
		{"partial header", []byte{0, 0, 0}, io.ErrUnexpectedEOF},
		{"partial body", []byte{0, 0, 0, 20, 2, 0, 0, 0, 0x00, 0x53}, io.ErrUnexpectedEOF},
		{"big frame cut short", append([]byte{0, 0x10, 0, 0, 2, 0, 0, 0}, make([]byte, 100000)...), io.ErrUnexpectedEOF},
		{"partial extended header", []byte{0, 0, 0, 16, 4, 0, 0, 0, 1}, io.ErrUnexpectedEOF},
		{"size below header", []byte{0, 0, 0, 7, 2, 0, 0, 0}, nil},
		{"doff below 2", []byte{0, 0, 0, 8, 1, 0, 0, 0}, nil},
		{"doff beyond size", []byte{0, 0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFrameReader(bytes.NewReader(tt.in), 1<<20).ReadFrame()
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || ErrorCondition(err) != ConditionFramingError {
				t.Fatalf("err = %v, want a framing *DecodeError", err)
			}
		})
	}
}

func TestFrameWriter(t *testing.T) {
	var w countingWriter
	fw := NewFrameWriter(&w)
	if err := fw.WriteProtocolHeader(ProtocolSASL.Header()); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteFrame(FrameSASL, 0, &SASLMechanisms{Mechanisms: []Symbol{"PLAIN"}}, nil); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 300)
	if err := fw.WriteFrame(FrameAMQP, 3, &Transfer{Handle: 1, DeliveryID: ptr(uint32(0)), DeliveryTag: []byte{1}}, payload); err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteEmpty(); err != nil {
		t.Fatal(err)
	}
	fw.SetMaxFrameSize(512)
	err := fw.WriteFrame(FrameAMQP, 3, &Transfer{Handle: 1}, make([]byte, 600))
	var fe *FrameSizeError
	if !errors.As(err, &fe) || fe.Max != 512 {
		t.Fatalf("oversized write: %v", err)
	}

	// One Write per header and per frame, nothing for the refused frame.
	fr := NewFrameReader(bytes.NewReader(w.Bytes()), 1<<16)
	if _, err := fr.ReadProtocolHeader(); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, int(f.Size))
		if f.Channel == 3 {
			if _, p, err := f.Performative(); err != nil || !bytes.Equal(p, payload) {
				t.Fatalf("transfer payload %d bytes, %v", len(p), err)
			}
		}
	}
	want := append([]int{8}, sizes...)
	if len(w.writes) != len(want) {
		t.Fatalf("%d writes %v for header and frames %v", len(w.writes), w.writes, sizes)
	}
	for i := range want {
		if w.writes[i] != want[i] {
			t.Errorf("write %d was %d bytes, want %d", i, w.writes[i], want[i])
		}
	}
	if sizes[2] != 8 {
		t.Errorf("heartbeat frame of %d bytes", sizes[2])
	}
}
