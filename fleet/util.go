package fleet

import (
	"encoding/json"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/catmsim/catmsim/scenarios"
)

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func appendJSON(b []byte, v any) []byte {
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, j...)
}

// backoff is a device's reconnect schedule: exponential with jitter, as
// firmware back-off loops are written.
type backoff struct {
	cfg  scenarios.Reconnect
	next time.Duration
}

func newBackoff(cfg scenarios.Reconnect) *backoff { return &backoff{cfg: cfg} }

// wait returns the next wait and grows the one after it.
func (b *backoff) wait(rnd *rand.Rand) time.Duration {
	if b.next <= 0 {
		b.next = b.cfg.Initial.D()
	}
	d := b.next
	if j := b.cfg.Jitter.Fraction(); j > 0 {
		d = time.Duration(float64(d) * (1 + j*(rnd.Float64()*2-1)))
	}
	m := b.cfg.Multiplier
	if m < 1 {
		m = 1
	}
	b.next = time.Duration(float64(b.next) * m)
	if max := b.cfg.Max.D(); max > 0 && b.next > max {
		b.next = max
	}
	return d
}

// reset starts the schedule over after a good connection.
func (b *backoff) reset() { b.next = 0 }

// jittered spreads d by ± fraction f.
func jittered(d time.Duration, f float64, rnd *rand.Rand) time.Duration {
	if f <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + f*(rnd.Float64()*2-1)))
}
