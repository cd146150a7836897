package network

import "sync/atomic"

const numReasons = 3

// Ledger is one device's byte ledger: bytes per layer, direction and operation
// class, and connections per reason. Every counter is atomic, so meters on
// several goroutines add to it and the metrics package snapshots it without
// locks. A Ledger is about 600 bytes.
type Ledger struct {
	bytes [numLayers][numDirections][numClasses]atomic.Uint64
	conns [numReasons]atomic.Uint64
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return new(Ledger) }

// Add counts n bytes. A class out of range counts as ClassOther; a layer or
// direction out of range is a caller's bug and is ignored.
func (l *Ledger) Add(layer Layer, dir Direction, c Class, n int) {
	if n <= 0 || layer >= numLayers || dir >= numDirections {
		return
	}
	if c >= numClasses {
		c = ClassOther
	}
	l.bytes[layer][dir][c].Add(uint64(n))
}

// AddPayload counts n bytes of application body — what the device meant to
// send or got — in class c. Protocol clients call it; the meters below cannot
// tell a body from its framing.
func (l *Ledger) AddPayload(dir Direction, c Class, n int) {
	l.Add(LayerPayload, dir, c, n)
}

// addConn counts a connection opened for reason r.
func (l *Ledger) addConn(r ConnReason) {
	if int(r) < numReasons {
		l.conns[r].Add(1)
	}
}

// Snapshot copies the counters. Counters are read one by one, so a snapshot
// taken while bytes flow may be a few bytes inside a single operation; every
// counter only grows.
func (l *Ledger) Snapshot() Snapshot {
	var s Snapshot
	for i := range l.bytes {
		for j := range l.bytes[i] {
			for k := range l.bytes[i][j] {
				s.bytes[i][j][k] = l.bytes[i][j][k].Load()
			}
		}
	}
	for i := range l.conns {
		s.conns[i] = l.conns[i].Load()
	}
	return s
}

// Snapshot is a copy of a Ledger's counters; the zero value is empty, and
// snapshots of many devices add up with Add.
type Snapshot struct {
	bytes [numLayers][numDirections][numClasses]uint64
	conns [numReasons]uint64
}

// Bytes returns the bytes counted for one layer, direction and class.
func (s *Snapshot) Bytes(layer Layer, dir Direction, c Class) uint64 {
	if layer >= numLayers || dir >= numDirections || c >= numClasses {
		return 0
	}
	return s.bytes[layer][dir][c]
}

// Total returns the bytes of one layer and direction over all classes.
func (s *Snapshot) Total(layer Layer, dir Direction) uint64 {
	if layer >= numLayers || dir >= numDirections {
		return 0
	}
	var t uint64
	for _, n := range s.bytes[layer][dir] {
		t += n
	}
	return t
}

// Conns returns how many connections were opened for reason r.
func (s *Snapshot) Conns(r ConnReason) uint64 {
	if int(r) >= numReasons {
		return 0
	}
	return s.conns[r]
}

// Add adds o's counters to s.
func (s *Snapshot) Add(o *Snapshot) {
	for i := range s.bytes {
		for j := range s.bytes[i] {
			for k := range s.bytes[i][j] {
				s.bytes[i][j][k] += o.bytes[i][j][k]
			}
		}
	}
	for i := range s.conns {
		s.conns[i] += o.conns[i]
	}
}

// Layers lists every layer, payload first.
func Layers() []Layer {
	return []Layer{LayerPayload, LayerProtocol, LayerTLS, LayerIP}
}
