package metrics

import (
	"time"

	"github.com/catmsim/catmsim/network"
)

// maxTimeline bounds the samples a run keeps for its charts: when full, every
// other sample is dropped, so a long run keeps an evenly spaced record.
const maxTimeline = 512

// Sample is the fleet at one moment, for the report's time charts.
type Sample struct {
	Elapsed time.Duration
	States  [numStates]int // devices by state
	D2CSent uint64         // cumulative
	IPBytes uint64         // cumulative, both directions
}

type timeline struct {
	max     int
	samples []Sample
	stride  int // keep one sample in stride
	skipped int
}

func (t *timeline) add(s Sample) {
	if t.stride == 0 {
		t.stride = 1
	}
	if t.skipped++; t.skipped < t.stride && len(t.samples) > 0 {
		return
	}
	t.skipped = 0
	t.samples = append(t.samples, s)
	if len(t.samples) >= t.max {
		kept := t.samples[:0]
		for i, x := range t.samples {
			if i%2 == 0 {
				kept = append(kept, x)
			}
		}
		t.samples = kept
		t.stride *= 2
	}
}

// Sample records the fleet's state now. The fleet calls it on a ticker.
func (r *Run) Sample() Sample {
	s := Sample{Elapsed: r.now().Sub(r.start)}
	var ip uint64
	for _, d := range r.Devices() {
		s.States[d.State()]++
		s.D2CSent += d.Get(D2CSent)
		if d.ledger != nil {
			snap := d.ledger.Snapshot()
			ip += snap.Total(network.LayerIP, network.Up) + snap.Total(network.LayerIP, network.Down)
		}
	}
	s.IPBytes = ip
	r.mu.Lock()
	r.line.add(s)
	r.mu.Unlock()
	return s
}

// Timeline returns the samples taken so far.
func (r *Run) Timeline() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.line.samples...)
}

// Count of devices in a state within a sample.
func (s Sample) Count(st State) int {
	if st < 0 || st >= numStates {
		return 0
	}
	return s.States[st]
}
