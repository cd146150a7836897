package network

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

func record(typ byte, body int) []byte {
	r := []byte{typ, 3, 3, byte(body >> 8), byte(body)}
	return append(r, bytes.Repeat([]byte{0xAA}, body)...)
}

type seenRec struct {
	typ    byte
	length int
}

// scanAll feeds p to a scanner in the given piece sizes, cycling.
func scanAll(p []byte, pieces []int) ([]seenRec, bool) {
	var s recordScanner
	var got []seenRec
	for i := 0; len(p) > 0; i++ {
		k := len(p)
		if len(pieces) > 0 {
			k = min(max(pieces[i%len(pieces)], 1), len(p))
		}
		s.scan(p[:k], func(typ byte, length int) { got = append(got, seenRec{typ, length}) })
		p = p[k:]
	}
	return got, s.opaque
}

func TestRecordScanner(t *testing.T) {
	stream := slices.Concat(record(recHandshake, 90), record(recChangeCipherSpec, 1),
		record(recApplicationData, 0), record(recApplicationData, 16384+256), record(recAlert, 2))
	want := []seenRec{{22, 95}, {20, 6}, {23, 5}, {23, 5 + 16384 + 256}, {21, 7}}
	tests := []struct {
		name   string
		data   []byte
		pieces []int
		want   []seenRec
		opaque bool
	}{
		{"whole", stream, nil, want, false},
		{"byte by byte", stream, []int{1}, want, false},
		{"odd pieces", stream, []int{3, 7, 1000, 2}, want, false},
		{"record split in the header", slices.Concat(record(23, 10), record(23, 20)), []int{17}, []seenRec{{23, 15}, {23, 25}}, false},
		{"not TLS: MQTT CONNACK and PUBLISH", []byte{0x20, 0x02, 0x00, 0x00, 0x30, 0x05}, nil, nil, true},
		{"too short to tell", []byte{0x20, 0x02, 0x00, 0x00}, nil, nil, false},
		{"not TLS after a record", slices.Concat(record(22, 4), []byte("HTTP/1.1 200 OK\r\n")), []int{2}, []seenRec{{22, 9}}, true},
		{"length beyond any record", []byte{23, 3, 3, 0xFF, 0xFF}, nil, nil, true},
		{"unknown version", []byte{23, 2, 0, 0, 1, 0}, nil, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, opaque := scanAll(tc.data, tc.pieces)
			if !slices.Equal(got, tc.want) || opaque != tc.opaque {
				t.Fatalf("records %v opaque=%v, want %v opaque=%v", got, opaque, tc.want, tc.opaque)
			}
		})
	}
}

func TestRecordScannerSpan(t *testing.T) {
	stream := slices.Concat(record(22, 90), record(23, 30))
	var s recordScanner
	tests := []struct {
		name    string
		consume int // bytes consumed before asking
		offer   int // bytes offered to span
		want    int
	}{
		{"whole first record", 0, len(stream), 95},
		{"less than the header", 0, 3, 3},
		{"mid-record", 50, len(stream) - 50, 45},
		{"next record", 95, len(stream) - 95, 35},
		{"inside the header of the next", 96, 2, 2},
		{"rest of a split header", 97, len(stream) - 97, 33},
	}
	pos := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.scan(stream[pos:tc.consume], func(byte, int) {})
			pos = tc.consume
			if got := s.span(stream[pos : pos+tc.offer]); got != tc.want {
				t.Fatalf("span = %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzRecordScanner feeds arbitrary bytes in arbitrary pieces: the scanner must
// not panic, must see the same records however the stream is cut, and must
// never report more bytes than it was fed; span must stay within its input and
// agree with where scan ends a record.
func FuzzRecordScanner(f *testing.F) {
	f.Add(slices.Concat(record(22, 90), record(23, 30), record(21, 2)), uint64(1))
	f.Add([]byte{23, 3, 3, 0, 0, 23, 3, 3, 0, 1, 9}, uint64(7))
	f.Add([]byte{0x10, 0x20, 3, 3}, uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		whole, wholeOpaque := scanAll(data, nil)
		rng := rand.New(rand.NewPCG(seed, 1))
		var s recordScanner
		var got []seenRec
		total := 0
		for p := data; len(p) > 0; {
			k := 1 + rng.IntN(len(p))
			sp := s.span(p[:k])
			if sp < 1 || sp > k {
				t.Fatalf("span %d of %d bytes", sp, k)
			}
			ended := false
			s.scan(p[:sp], func(typ byte, length int) {
				got = append(got, seenRec{typ, length})
				total += length
				ended = true
			})
			if ended && sp < k && s.hn != 0 {
				t.Fatal("a record ended before the end of span's bytes")
			}
			p = p[sp:]
		}
		if !slices.Equal(got, whole) || s.opaque != wholeOpaque {
			t.Fatalf("pieces saw %v opaque=%v, whole stream %v opaque=%v", got, s.opaque, whole, wholeOpaque)
		}
		if total > len(data) {
			t.Fatalf("records of %d bytes in %d bytes of input", total, len(data))
		}
	})
}

// FuzzAttribution drives one connection's accounting with arbitrary downlink
// ciphertext, read sizes and plaintext classes: every byte that crossed the
// link must land in exactly one class of the tls layer, whatever the bytes.
func FuzzAttribution(f *testing.F) {
	f.Add(slices.Concat(record(22, 90), record(23, 30), record(23, 300)), []byte{1, 2, 3, 200, 9}, false)
	f.Add([]byte{0x20, 2, 0, 0, 0x30, 5, 0, 1, 'a', 'b', 'c'}, []byte{4, 4, 4}, true)
	f.Fuzz(func(t *testing.T, down []byte, ops []byte, plain bool) {
		l := NewLedger()
		a := acct{ledger: l, reason: ReasonReconnect}
		p, _ := BuiltinProfile("good")
		a.tcp = newTCPModel(&p)
		if len(ops) == 0 {
			ops = []byte{0}
		}
		var sent int64
		up := slices.Concat(record(22, 200), record(23, 50))
		for i, rest := 0, down; len(rest) > 0; i++ {
			op := ops[i%len(ops)]
			if i == 2 {
				a.enterApp(plain, int(op%40))
			}
			k := min(1+int(op)%97, len(rest))
			if a.phase == phaseApp && !a.plain {
				k = max(1, min(k, a.scan[Down].span(rest[:k])))
			}
			a.wire(Down, rest[:k])
			sent += int64(k)
			rest = rest[k:]
			n := int(op) % 50
			a.readDone(n)
			for n > 0 { // classify the "plaintext" in two runs
				h := max(n/2, 1)
				a.classified(Down, Class(op)%numClasses, h)
				n -= h
			}
			if op%5 == 0 {
				a.beginWrite(len(up))
				a.wire(Up, up)
				a.endWrite(len(up) - int(op)%3)
				a.classified(Up, ClassTelemetry, len(up))
			}
			if op%7 == 0 {
				var c tcpCost
				a.tcp.data(Up, t0, t0, int(op)*10, false, &c)
				a.cost(&c, [numDirections]int{})
			}
		}
		a.flush()
		s := l.Snapshot()
		if got := s.Total(LayerTLS, Down); int64(got) != sent || a.stats.TLS[Down] != sent {
			t.Fatalf("tls down: ledger %d, stats %d, want %d", got, a.stats.TLS[Down], sent)
		}
		if got := s.Total(LayerTLS, Up); int64(got) != a.stats.TLS[Up] {
			t.Fatalf("tls up: ledger %d, stats %d", got, a.stats.TLS[Up])
		}
		for _, d := range []Direction{Up, Down} {
			if got := s.Total(LayerIP, d); int64(got) != a.stats.IP[d] {
				t.Fatalf("ip %s: ledger %d, stats %d", d, got, a.stats.IP[d])
			}
		}
		if s.Bytes(LayerTLS, Down, ClassConnect) != 0 {
			t.Fatal("connect bytes of a reconnection were not charged to reconnect")
		}
	})
}
