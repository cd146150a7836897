package reports

import (
	"errors"
	"fmt"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// HistSnapshot is an HDR histogram as hdrhistogram-go's Histogram.Export
// gives it, with the zero counts left out: Counts holds [index, count] pairs
// in ascending index order. Importing it gives back the same histogram, so
// histograms from shards merge exactly.
type HistSnapshot struct {
	Lowest  int64      `json:"lowest"`
	Highest int64      `json:"highest"`
	Digits  int64      `json:"digits"`
	Counts  [][2]int64 `json:"counts"`
}

// Histogram geometry a report accepts. metrics records latencies from 1 µs to
// one hour with three significant digits; the bounds here are wider, but keep
// what importing an untrusted snapshot allocates small (at most a few MB).
const (
	maxHistDigits  = 3
	maxHistHighest = int64(1) << 40
)

func exportHist(h *hdrhistogram.Histogram) HistSnapshot {
	s := h.Export()
	out := HistSnapshot{Lowest: s.LowestTrackableValue, Highest: s.HighestTrackableValue, Digits: s.SignificantFigures}
	for i, c := range s.Counts {
		if c != 0 {
			out.Counts = append(out.Counts, [2]int64{int64(i), c})
		}
	}
	return out
}

// check validates a snapshot read from a file before anything is allocated
// for it.
func (s *HistSnapshot) check() error {
	switch {
	case s.Digits < 1 || s.Digits > maxHistDigits:
		return fmt.Errorf("histogram has %d significant digits; reports hold 1 to %d", s.Digits, maxHistDigits)
	case s.Lowest < 1 || s.Highest > maxHistHighest || s.Highest < 2*s.Lowest:
		return fmt.Errorf("histogram range %d to %d is outside what reports hold (1 to %d)", s.Lowest, s.Highest, maxHistHighest)
	}
	last := int64(-1)
	for _, p := range s.Counts {
		if p[0] <= last {
			return errors.New("histogram counts are not in ascending index order")
		}
		if p[1] <= 0 {
			return fmt.Errorf("histogram count at index %d is %d; counts are positive", p[0], p[1])
		}
		last = p[0]
	}
	return nil
}

// importHist rebuilds the histogram. The snapshot must have passed check.
func importHist(s HistSnapshot) (*hdrhistogram.Histogram, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	h := hdrhistogram.New(s.Lowest, s.Highest, int(s.Digits))
	full := h.Export()
	n := int64(len(full.Counts))
	for _, p := range s.Counts {
		if p[0] >= n {
			return nil, fmt.Errorf("histogram count at index %d is beyond its %d buckets", p[0], n)
		}
		full.Counts[p[0]] = p[1]
	}
	if err := full.Validate(); err != nil {
		return nil, fmt.Errorf("histogram: %w", err)
	}
	return hdrhistogram.Import(full), nil
}

// sameGeometry reports whether two snapshots can be merged bucket by bucket.
func (s *HistSnapshot) sameGeometry(o *HistSnapshot) bool {
	return s.Lowest == o.Lowest && s.Highest == o.Highest && s.Digits == o.Digits
}
