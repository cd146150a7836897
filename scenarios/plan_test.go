package scenarios

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *Scenario {
	t.Helper()
	s, _, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCompile(t testing.TB, s *Scenario, o PlanOptions) *Plan {
	t.Helper()
	p, err := Compile(s, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func planJSONOf(t testing.TB, p *Plan) []byte {
	t.Helper()
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// Plans are golden: a change in how a scenario compiles shows up as a diff.
func TestPlanGolden(t *testing.T) {
	tests := []struct {
		scenario, golden string
		opts             PlanOptions
	}{
		{"testdata/plan-small.yaml", "testdata/plan-small.plan.json", PlanOptions{}},
		{"testdata/plan-small.yaml", "testdata/plan-small.shard-1-of-3.plan.json", PlanOptions{Shard: 1, Shards: 3}},
		{"quickstart", "testdata/quickstart.plan.json", PlanOptions{}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.golden), func(t *testing.T) {
			golden(t, tt.golden, planJSONOf(t, mustCompile(t, mustLoad(t, tt.scenario), tt.opts)))
		})
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	for _, name := range append(Shipped(), "testdata/plan-small.yaml") {
		t.Run(name, func(t *testing.T) {
			a := planJSONOf(t, mustCompile(t, mustLoad(t, name), PlanOptions{Shard: 1, Shards: 2}))
			b := planJSONOf(t, mustCompile(t, mustLoad(t, name), PlanOptions{Shard: 1, Shards: 2}))
			if !bytes.Equal(a, b) {
				t.Fatal("two compilations of the same scenario differ")
			}
			s := mustLoad(t, name)
			s.Seed++
			if c := planJSONOf(t, mustCompile(t, s, PlanOptions{Shard: 1, Shards: 2})); bytes.Equal(a, c) {
				t.Fatal("another seed gave the same plan")
			}
		})
	}
}

// Shards partition the fleet: device i is in shard i mod N, every device is in
// exactly one shard, and a device looks the same in its shard as in the whole
// fleet's plan — so are the outage picks.
func TestShardsPartitionTheFleet(t *testing.T) {
	s := mustLoad(t, "testdata/plan-small.yaml")
	whole := mustCompile(t, s, PlanOptions{})
	all := map[int]Device{}
	for d := range whole.Devices() {
		all[d.Index] = d
	}
	if len(all) != whole.FleetSize || whole.FleetSize != 12 {
		t.Fatalf("whole plan has %d devices of %d", len(all), whole.FleetSize)
	}
	for _, n := range []int{1, 2, 3, 5, 12, 13} {
		t.Run(fmt.Sprintf("%d shards", n), func(t *testing.T) {
			seen := map[int]int{}
			picks := make([][]uint32, len(whole.Events))
			for k := range n {
				p := mustCompile(t, s, PlanOptions{Shard: k, Shards: n})
				if want := (whole.FleetSize - k + n - 1) / n; p.Len() != want {
					t.Errorf("shard %d has %d devices, want %d", k, p.Len(), want)
				}
				for d := range p.Devices() {
					if d.Index%n != k {
						t.Errorf("device %d in shard %d of %d", d.Index, k, n)
					}
					if prev, dup := seen[d.Index]; dup {
						t.Errorf("device %d in shards %d and %d", d.Index, prev, k)
					}
					seen[d.Index] = k
					if d != all[d.Index] {
						t.Errorf("device %d differs in shard %d:\n%+v\n%+v", d.Index, k, d, all[d.Index])
					}
				}
				for i, e := range p.Events {
					if e.Selected != whole.Events[i].Selected {
						t.Errorf("event %d selects %d in shard %d, %d overall", i, e.Selected, k, whole.Events[i].Selected)
					}
					picks[i] = append(picks[i], e.Devices...)
				}
			}
			if len(seen) != whole.FleetSize {
				t.Errorf("the shards hold %d devices, the fleet %d", len(seen), whole.FleetSize)
			}
			for i := range picks {
				slices.Sort(picks[i])
				if !slices.Equal(picks[i], whole.Events[i].Devices) {
					t.Errorf("event %d: shards pick %v, the whole plan %v", i, picks[i], whole.Events[i].Devices)
				}
			}
		})
	}
}

func TestCompileOptions(t *testing.T) {
	s := mustLoad(t, "testdata/plan-small.yaml")
	for _, o := range []PlanOptions{{Shard: 3, Shards: 3}, {Shard: -1, Shards: 2}, {Shard: 0, Shards: -2}, {Shard: 1}} {
		if _, err := Compile(s, o); err == nil || !strings.Contains(err.Error(), "the shard must be from") {
			t.Errorf("Compile(%+v): %v", o, err)
		}
	}
	if _, err := Compile(nil, PlanOptions{}); err == nil {
		t.Error("Compile(nil) succeeded")
	}
	p := mustCompile(t, s, PlanOptions{Duration: Duration(30 * time.Second)})
	if p.Duration.D() != 30*time.Second {
		t.Errorf("duration override: %s", p.Duration)
	}
}

func arrivals(p *Plan, group string) []time.Duration {
	var out []time.Duration
	for d := range p.Devices() {
		if d.Group == group {
			out = append(out, d.Arrival.D())
		}
	}
	return out
}

func TestArrivals(t *testing.T) {
	s, _, err := Parse("a.yaml", []byte(`
version: 1
duration: 2h
profiles: {p: {protocol: mqtt}}
fleet:
  - {name: ramp, profile: p, count: 4, arrival: {kind: ramp, at: 10s, over: 1m}}
  - {name: burst, profile: p, count: 3, arrival: {kind: all_at_once, at: 5s}}
  - {name: poisson, profile: p, count: 20000, arrival: {kind: poisson, at: 1s, rate: 5/s}}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, s, PlanOptions{})
	want := []time.Duration{10 * time.Second, 25 * time.Second, 40 * time.Second, 55 * time.Second}
	if got := arrivals(p, "ramp"); !slices.Equal(got, want) {
		t.Errorf("ramp %v, want %v", got, want)
	}
	if got := arrivals(p, "burst"); !slices.Equal(got, []time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second}) {
		t.Errorf("burst %v", got)
	}
	// Poisson: increasing, after at, gaps exponential with mean 1/rate. With
	// 20,000 gaps the mean is within 3 % and the share of gaps above the mean
	// near e⁻¹; both are properties of this seed's draw, asserted loosely so
	// they test the distribution, not the numbers.
	got := arrivals(p, "poisson")
	if !slices.IsSorted(got) || got[0] <= time.Second {
		t.Fatalf("poisson arrivals not increasing after at: %v…", got[:3])
	}
	mean := (got[len(got)-1] - time.Second).Seconds() / float64(len(got))
	if math.Abs(mean-0.2) > 0.2*0.03 {
		t.Errorf("mean gap %.4fs, want about 0.2s", mean)
	}
	long := 0
	for i := 1; i < len(got); i++ {
		if (got[i] - got[i-1]).Seconds() > 0.2 {
			long++
		}
	}
	if share := float64(long) / float64(len(got)-1); math.Abs(share-math.Exp(-1)) > 0.02 {
		t.Errorf("%.3f of gaps above the mean, want about %.3f", share, math.Exp(-1))
	}
}

func TestOutagePicks(t *testing.T) {
	s, _, err := Parse("o.yaml", []byte(`
version: 1
duration: 1h
profiles: {p: {protocol: mqtt}}
fleet:
  - {name: a, profile: p, count: 1000}
  - {name: b, profile: p, count: 333}
events:
  - {at: 1m, kind: outage, fraction: 10%, duration: 5m}
  - {at: 1m, kind: outage, fraction: 10%, duration: 5m, group: b}
  - {at: 1m, kind: outage, fraction: 100%, duration: 5m, group: b}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, s, PlanOptions{})
	tests := []struct {
		event    int
		want     int
		min, max uint32
	}{{0, 133, 0, 1333}, {1, 33, 1000, 1333}, {2, 333, 1000, 1333}}
	for _, tt := range tests {
		e := p.Events[tt.event]
		if e.Selected != tt.want || len(e.Devices) != tt.want {
			t.Errorf("event %d picks %d (%d listed), want %d", tt.event, e.Selected, len(e.Devices), tt.want)
		}
		if !slices.IsSorted(e.Devices) || slices.Compact(slices.Clone(e.Devices)) == nil {
			t.Errorf("event %d picks not ascending", tt.event)
		}
		for _, d := range e.Devices {
			if d < tt.min || d >= tt.max {
				t.Errorf("event %d picks device %d outside [%d, %d)", tt.event, d, tt.min, tt.max)
			}
		}
	}
	if slices.Equal(p.Events[0].Devices[:33], p.Events[1].Devices) {
		t.Error("two events picked alike")
	}
}

func TestDevices(t *testing.T) {
	p := mustCompile(t, mustLoad(t, "testdata/plan-small.yaml"), PlanOptions{})
	ids := map[string]bool{}
	seeds := map[uint64]bool{}
	for d := range p.Devices() {
		if ids[d.ID] || seeds[d.Seed] {
			t.Errorf("device %d repeats an id or a seed: %+v", d.Index, d)
		}
		ids[d.ID], seeds[d.Seed] = true, true
		if pp := p.Profile(d.Profile); pp == nil || pp.Name != d.Profile {
			t.Errorf("device %d profile %q not found", d.Index, d.Profile)
		}
		// Its generator is its own and repeatable.
		a, b := d.Rand(), d.Rand()
		if a.Uint64() != b.Uint64() {
			t.Errorf("device %d generator is not repeatable", d.Index)
		}
	}
	if p.Device(5).ID != "p99-0" || p.Device(9).ID != "burst-00" || p.Device(0).ID != "ramp-00000" {
		t.Errorf("ids: %s %s %s", p.Device(0).ID, p.Device(5).ID, p.Device(9).ID)
	}
	if p.Profile("nope") != nil {
		t.Error("found a profile that does not exist")
	}
	if fw := p.Profile("fw-dev").Firmware; fw != filepath.Join("testdata", "noop.wasm") {
		t.Errorf("firmware resolved to %q", fw)
	}
	if p.Target.Tier != "" || p.Cloud.MethodGroups[0] != "poisson" || !slices.Equal(p.Cloud.DesiredGroups, []string{"ramp", "poisson"}) {
		t.Errorf("cloud %+v", p.Cloud)
	}
	if !strings.HasPrefix(p.String(), "plan-small: 12 of 12 devices") {
		t.Errorf("String() = %q", p.String())
	}
}

// BenchmarkCompile compiles a 20,000-device plan: the per-device cost in
// bytes and allocations is what matters for big fleets.
func BenchmarkCompile(b *testing.B) {
	s, _, err := Parse("bench.yaml", []byte(`
version: 1
duration: 1h
profiles: {p: {protocol: mqtt}, q: {protocol: amqp}}
fleet:
  - {name: ramp, profile: p, count: 10000, arrival: {kind: ramp, over: 10m}}
  - {name: poisson, profile: q, count: 10000, arrival: {kind: poisson, rate: 50/s}}
events:
  - {at: 20m, kind: outage, fraction: 10%, duration: 5m}
`))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var p *Plan
	for b.Loop() {
		p, err = Compile(s, PlanOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var ms testingMem
	ms.measure(func() { p, _ = Compile(s, PlanOptions{}) })
	b.ReportMetric(float64(ms.bytes)/float64(p.Len()), "B/device")
	b.ReportMetric(float64(ms.allocs)/float64(p.Len()), "allocs/device")
}
