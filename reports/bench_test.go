package reports

import (
	"fmt"
	"testing"
	"time"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// bigRun is a 20,000-device run with every layer, a few classes, counters
// and latencies filled in.
func bigRun(b *testing.B, n int) *metrics.Run {
	b.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := metrics.NewRun(func() time.Time { return start })
	groups := []struct{ name, proto string }{{"sensors", "mqtt"}, {"trackers", "amqp"}, {"meters", "https"}, {"gateways", "mqtt-ws"}}
	energy := func() network.EnergyReport { return network.EnergyReport{Elapsed: time.Hour, ChargeMAh: 3} }
	for i := range n {
		g := groups[i%len(groups)]
		l := network.NewLedger()
		for _, layer := range network.Layers() {
			l.Add(layer, network.Up, network.ClassTelemetry, 1000+i%977)
			l.Add(layer, network.Down, network.ClassTelemetry, 200+i%131)
			l.Add(layer, network.Up, network.ClassConnect, 3000+i%17)
			l.Add(layer, network.Down, network.ClassKeepAlive, 60)
		}
		d := run.Device(metrics.DeviceInfo{Index: i, ID: fmt.Sprintf("%s-%05d", g.name, i), Group: g.name, Profile: g.name, Protocol: g.proto, DataPlan: 5 << 20}, l, energy)
		d.Add(metrics.D2CSent, 120)
		d.Add(metrics.Connects, 1)
		d.Observe(metrics.LatencyD2C, time.Duration(50+i%400)*time.Millisecond)
		d.SetState(metrics.StateConnected)
	}
	run.Sample()
	return run
}

// BenchmarkBuild20k builds the report of a 20,000-device run: one ledger
// snapshot per device, no other copies.
func BenchmarkBuild20k(b *testing.B) {
	run := bigRun(b, 20_000)
	meta := Meta{Scenario: "bench", Duration: time.Hour, Shards: 1, Target: "embedded",
		Profiles: []ProfileMeta{{Name: "sensors", Billing: Billing{Increment: 1024, Per: PerSession}}}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Build(Input{Run: run, Meta: meta}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteDir20k writes every file of a 20,000-device report.
func BenchmarkWrite20k(b *testing.B) {
	r, err := Build(Input{Run: bigRun(b, 20_000), Meta: Meta{Scenario: "bench", Duration: time.Hour, Shards: 1}})
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range writers {
		b.Run(w.Name, func(b *testing.B) {
			var n int64
			b.ReportAllocs()
			for b.Loop() {
				cw := &countWriter{}
				if err := w.Write(cw, r); err != nil {
					b.Fatal(err)
				}
				n = cw.n
			}
			b.ReportMetric(float64(n), "bytes/file")
		})
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
