package classify

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/network"
)

const nClasses = int(network.ClassOther) + 1

// seg is one write or read on a connection, in the order they happened.
type seg struct {
	dir network.Direction
	b   []byte
}

func up(b ...[]byte) seg   { return seg{network.Up, slices.Concat(b...)} }
func down(b ...[]byte) seg { return seg{network.Down, slices.Concat(b...)} }

// want is the expected byte count per direction and class.
type want map[network.Direction]map[network.Class]int

type tally [2][nClasses]int

func (w want) tally() tally {
	var t tally
	for d, m := range w {
		for c, n := range m {
			t[d][c] += n
		}
	}
	return t
}

func (t tally) String() string {
	var b strings.Builder
	for d := range t {
		fmt.Fprintf(&b, "%s:", network.Direction(d))
		for c, n := range t[d] {
			if n != 0 {
				fmt.Fprintf(&b, " %s=%d", network.Class(c), n)
			}
		}
		b.WriteString("  ")
	}
	return b.String()
}

type pender interface {
	network.Classifier
	Flusher
	pending(network.Direction) int
}

// trace is the class of every byte of each direction, in stream order.
type trace [2][]network.Class

// feed runs the chunks through a fresh classifier and checks the accounting
// invariants after every call: bytes are never attributed before they were
// fed, attributed plus held always equals fed, and Flush balances the books.
func feed(t testing.TB, c pender, chunks []seg) trace {
	t.Helper()
	var tr trace
	var fed [2]int
	for i, ch := range chunks {
		d := ch.dir
		c.Classify(d, ch.b, func(cl network.Class, n int) {
			if n <= 0 {
				t.Fatalf("chunk %d: attribute(%s, %d): n must be positive", i, cl, n)
			}
			if cl > network.ClassOther {
				t.Fatalf("chunk %d: attribute(%d, %d): invalid class", i, cl, n)
			}
			for range n {
				tr[d] = append(tr[d], cl)
			}
		})
		fed[d] += len(ch.b)
		if len(tr[d]) > fed[d] {
			t.Fatalf("chunk %d (%s): %d bytes attributed but only %d fed", i, d, len(tr[d]), fed[d])
		}
		if got := len(tr[d]) + c.pending(d); got != fed[d] {
			t.Fatalf("chunk %d (%s): attributed %d + held %d != fed %d", i, d, len(tr[d]), c.pending(d), fed[d])
		}
	}
	for d := range network.Direction(2) {
		c.Flush(d, func(cl network.Class, n int) {
			for range n {
				tr[d] = append(tr[d], cl)
			}
		})
		if len(tr[d]) != fed[d] {
			t.Fatalf("%s after Flush: attributed %d != fed %d", d, len(tr[d]), fed[d])
		}
	}
	return tr
}

func (tr trace) tally() tally {
	var t tally
	for d := range tr {
		for _, c := range tr[d] {
			t[d][c]++
		}
	}
	return t
}

// splits returns the ways a test stream is cut into calls: as written, with
// consecutive same-direction writes merged into one call, one byte per call,
// every write cut at every offset k, and seeded random cuts of the merged
// stream.
func splits(segs []seg) map[string][]seg {
	out := map[string][]seg{"as-written": segs}
	var merged []seg
	for _, s := range segs {
		if n := len(merged); n > 0 && merged[n-1].dir == s.dir {
			merged[n-1].b = slices.Concat(merged[n-1].b, s.b)
			continue
		}
		merged = append(merged, seg{s.dir, slices.Clone(s.b)})
	}
	out["merged"] = merged
	var bytewise []seg
	maxLen := 0
	for _, s := range segs {
		maxLen = max(maxLen, len(s.b))
		for i := range s.b {
			bytewise = append(bytewise, seg{s.dir, s.b[i : i+1]})
		}
	}
	out["bytewise"] = bytewise
	// Cutting at every offset of long payloads adds nothing after the headers;
	// long streams get fewer cut points to keep the test fast.
	total := 0
	for _, s := range segs {
		total += len(s.b)
	}
	for k := 1; k < min(maxLen, 300, 1+(4<<20)/max(total, 1)); k++ {
		var cut []seg
		for _, s := range segs {
			if k < len(s.b) {
				cut = append(cut, seg{s.dir, s.b[:k]}, seg{s.dir, s.b[k:]})
			} else {
				cut = append(cut, s)
			}
		}
		out[fmt.Sprintf("cut-at-%d", k)] = cut
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for r := range 20 {
		var cut []seg
		for _, s := range merged {
			b := s.b
			for len(b) > 0 {
				n := 1 + rng.IntN(min(len(b), 64))
				cut = append(cut, seg{s.dir, b[:n]})
				b = b[n:]
			}
		}
		out[fmt.Sprintf("random-%d", r)] = cut
	}
	return out
}

// checkSplits runs the stream whole and split every way, and requires the
// expected totals and the same class for every byte in every split.
func checkSplits(t *testing.T, newC func() pender, segs []seg, w want) {
	t.Helper()
	ref := feed(t, newC(), segs)
	if got, exp := ref.tally(), w.tally(); got != exp {
		t.Fatalf("totals:\n got  %v\n want %v", got, exp)
	}
	for name, chunks := range splits(segs) {
		tr := feed(t, newC(), chunks)
		for d := range tr {
			if i := firstDiff(tr[d], ref[d]); i >= 0 {
				t.Fatalf("split %s: %s byte %d classified %s, whole stream says %s (totals %v)",
					name, network.Direction(d), i, at(tr[d], i), at(ref[d], i), tr.tally())
			}
		}
	}
}

func firstDiff(a, b []network.Class) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func at(cs []network.Class, i int) string {
	if i < len(cs) {
		return cs[i].String()
	}
	return "nothing"
}

func sum(b ...[]byte) int {
	n := 0
	for _, x := range b {
		n += len(x)
	}
	return n
}
