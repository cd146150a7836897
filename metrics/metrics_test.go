package metrics

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/network"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRunAggregates(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	r := NewRun(c.now)
	la, lb := network.NewLedger(), network.NewLedger()
	a := r.Device(DeviceInfo{Index: 0, ID: "a", Group: "g1", Protocol: "mqtt"}, la, nil)
	b := r.Device(DeviceInfo{Index: 1, ID: "b", Group: "g1", Protocol: "mqtt"}, lb, nil)
	other := r.Device(DeviceInfo{Index: 2, ID: "c", Group: "g2", Protocol: "amqp"}, nil, nil)
	var wg sync.WaitGroup
	for _, d := range []*Device{a, b} {
		wg.Add(1)
		go func(d *Device) {
			defer wg.Done()
			for i := 1; i <= 100; i++ {
				d.Observe(LatencyD2C, time.Duration(i)*time.Millisecond)
				d.Add(D2CSent, 1)
				d.Acked(int64(i))
			}
		}(d)
	}
	wg.Wait()
	other.Add(D2CFailed, 3)
	other.Error("throttled", errors.New("429"))
	other.Error("throttled", errors.New("429 again"))
	la.Add(network.LayerIP, network.Up, network.ClassTelemetry, 1000)
	lb.Add(network.LayerIP, network.Down, network.ClassC2D, 500)

	tot := r.Totals()
	if tot[D2CSent] != 200 || tot[D2CFailed] != 3 {
		t.Fatalf("totals %v", tot)
	}
	groups := r.Groups()
	if len(groups) != 2 || groups[0].Name != "g1" || groups[1].Protocol != "amqp" {
		t.Fatalf("groups %+v", groups)
	}
	h := groups[0].Histogram(LatencyD2C)
	if h.TotalCount() != 200 || h.ValueAtQuantile(50) < 49_000 || h.ValueAtQuantile(50) > 51_000 || h.Max() < 99_900 {
		t.Fatalf("histogram count %d p50 %d max %d", h.TotalCount(), h.ValueAtQuantile(50), h.Max())
	}
	if a.LastAcked() != 100 {
		t.Fatalf("last acked %d", a.LastAcked())
	}
	if errs, last := other.Errors(); errs["throttled"] != 2 || last != "429 again" || r.Errors()["throttled"] != 2 {
		t.Fatalf("errors %v %q", errs, last)
	}
	bytes := r.Bytes()
	if bytes.Total(network.LayerIP, network.Up) != 1000 || bytes.Total(network.LayerIP, network.Down) != 500 {
		t.Fatal("ledger sums")
	}
	a.SetState(StateConnected)
	b.SetState(StateBackoff)
	if sc := r.StateCounts(); sc[StateConnected] != 1 || sc[StateBackoff] != 1 || sc[StateWaiting] != 1 {
		t.Fatalf("states %v", sc)
	}
}

func TestTimelineStaysBounded(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	r := NewRun(c.now)
	d := r.Device(DeviceInfo{ID: "a"}, nil, nil)
	d.SetState(StateConnected)
	for i := 0; i < 10_000; i++ {
		c.add(time.Second)
		r.Sample()
	}
	tl := r.Timeline()
	if len(tl) >= maxTimeline || len(tl) < maxTimeline/4 {
		t.Fatalf("%d samples kept", len(tl))
	}
	for i := 1; i < len(tl); i++ {
		if tl[i].Elapsed <= tl[i-1].Elapsed {
			t.Fatal("samples out of order")
		}
	}
	if tl[len(tl)-1].Count(StateConnected) != 1 {
		t.Fatal("state count")
	}
}
