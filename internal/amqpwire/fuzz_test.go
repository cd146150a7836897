package amqpwire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// seedCorpus adds every proton vector and every encoding the unit tests
// build, so the fuzzer starts from valid input of each kind.
func seedCorpus(f *testing.F, kinds ...string) {
	for _, v := range loadVectors(f) {
		for _, k := range kinds {
			if v.Kind == k {
				raw, err := hex.DecodeString(v.Hex)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(raw)
			}
		}
	}
}

func loadVectors(f *testing.F) []protonVector {
	b, err := os.ReadFile(filepath.Join("testdata", "proton_vectors.json"))
	if err != nil {
		f.Fatal(err)
	}
	var vectors []protonVector
	if err := json.Unmarshal(b, &vectors); err != nil {
		f.Fatal(err)
	}
	return vectors
}

func FuzzDecodeValue(f *testing.F) {
	seedCorpus(f, "value", "message")
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := DecodeValue(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(b) {
				t.Fatalf("error %v is not a *DecodeError within the input", err)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		enc, err := AppendValue(nil, v)
		if err != nil {
			t.Fatalf("decoded value %#v does not encode: %v", v, err)
		}
		v2, n2, err := DecodeValue(enc)
		if err != nil || n2 != len(enc) {
			t.Fatalf("own encoding %x does not decode: %v (%d bytes)", enc, err, n2)
		}
		if !Equal(v, v2) {
			t.Fatalf("round trip changed %#v into %#v", v, v2)
		}
		if enc2, _ := AppendValue(nil, v2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
	})
}

func FuzzDecodeFrameBody(f *testing.F) {
	for _, p := range fullPerformatives(f) {
		b, err := p.Encode(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, v := range loadVectors(f) {
		if raw, _ := hex.DecodeString(v.Hex); v.Kind == "frame" && len(raw) > 8 && raw[4] == 2 {
			f.Add(raw[8:])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, payload, err := DecodeFrameBody(body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		if len(payload) > len(body) || (len(payload) > 0 && &payload[len(payload)-1] != &body[len(body)-1]) {
			t.Fatal("payload is not the tail of the body")
		}
		enc, err := p.Encode(nil)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", p, err)
		}
		p2, rest, err := DecodeFrameBody(enc)
		if err != nil || len(rest) != 0 {
			t.Fatalf("own encoding %x does not decode: %v (%d bytes left)", enc, err, len(rest))
		}
		if d := diff(p2, p); d != "" {
			t.Fatalf("round trip of %T differs at %s", p, d)
		}
		if enc2, _ := p2.Encode(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	seedCorpus(f, "message")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			return
		}
		enc, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("own encoding %x does not decode: %v", enc, err)
		}
		if d := diff(m2, m); d != "" {
			t.Fatalf("round trip differs at %s", d)
		}
		if enc2, _ := m2.Encode(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
		// Whatever decodes as a message may also arrive as a batch.
		if _, err := DecodeBatch(b); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeBatch error %v is not a *DecodeError", err)
			}
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	seedCorpus(f, "frame")
	var stream []byte
	for _, p := range fullPerformatives(f) {
		var err error
		if stream, err = AppendFrame(stream, p.FrameType(), 1, p, []byte("x")); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(stream)
	f.Add([]byte("AMQP\x03\x01\x00\x00\x00\x00\x00\x08\x02\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 4096
		fr := NewFrameReader(bytes.NewReader(b), limit)
		if len(b) >= 4 && string(b[:4]) == "AMQP" {
			if _, err := fr.ReadProtocolHeader(); err != nil {
				return
			}
		}
		for {
			fr.SetMaxFrameSize(limit)
			f, err := fr.ReadFrame()
			if err != nil {
				var de *DecodeError
				var fe *FrameSizeError
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &de) && !errors.As(err, &fe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if f.Size > limit || int(f.Size) < FrameHeaderSize+len(f.Body) {
				t.Fatalf("frame size %d with %d body bytes", f.Size, len(f.Body))
			}
			// The frame re-encodes and reads back the same.
			enc, err := AppendFrame(nil, f.Type, f.Channel, nil, f.Body)
			if err != nil {
				t.Fatal(err)
			}
			g, err := NewFrameReader(bytes.NewReader(enc), limit).ReadFrame()
			if err != nil || g.Type != f.Type || g.Channel != f.Channel || !bytes.Equal(g.Body, f.Body) {
				t.Fatalf("frame did not survive re-encoding: %+v, %v", g, err)
			}
			if f.Body == nil {
				continue
			}
			p, payload, err := f.Performative()
			if err != nil {
				continue
			}
			enc, err = AppendFrame(nil, f.Type, f.Channel, p, payload)
			if err != nil {
				t.Fatalf("decoded %T does not encode: %v", p, err)
			}
			g, err = NewFrameReader(bytes.NewReader(enc), uint32(len(enc))).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			p2, payload2, err := g.Performative()
			if err != nil || !bytes.Equal(payload2, payload) {
				t.Fatalf("re-encoded frame does not decode: %v", err)
			}
			if d := diff(p2, p); d != "" {
				t.Fatalf("round trip of %T differs at %s", p, d)
			}
		}
	})
}
