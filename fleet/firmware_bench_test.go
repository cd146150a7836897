package fleet

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/scenarios"
)

// BenchmarkFirmwareFleet runs 1,000 devices of the C sensor-node firmware
// against the embedded hub over MQTT, and the same fleet with the
// declarative twin of that firmware, and reports what a device costs in each:
// peak Go heap per device while all are connected, and for the firmware the
// linear memory of each instance. The difference of the two heap figures is
// what running a device's own firmware costs. Each run lasts 40 s, so that
// every device sends at least one reading at the firmware's 30 s pace:
//
//	go test -run '^$' -bench BenchmarkFirmwareFleet -benchtime 1x ./fleet
func BenchmarkFirmwareFleet(b *testing.B) {
	const devices = 1000
	device := map[string]string{
		"firmware": `firmware: example:c/sensornode.wasm`,
		"declarative": `behaviour:
      reported_on_connect: {firmware: "1.0.0", interval: 30, sleep: false}
      telemetry:
        interval: 30s
        payload:
          kind: json
          fields:
            temperature: {random_walk: {start: 20.0, step: 0.3, decimals: 1}}
            humidity: {random_walk: {start: 50, step: 1, decimals: 0}}
            seq: sequence`,
	}
	for _, kind := range []string{"firmware", "declarative"} {
		b.Run(kind, func(b *testing.B) {
			p := plan(b, `
version: 1
name: bench
seed: 3
duration: 40s
target: {kind: embedded}
profiles:
  node:
    protocol: mqtt
    link: `+fastLink+`
    `+device[kind]+`
fleet:
  - {name: nodes, profile: node, count: 1000, arrival: {kind: ramp, over: 5s}}
`, scenarios.PlanOptions{})
			for b.Loop() {
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				var mu sync.Mutex
				var peak uint64
				sample := func(pr Progress) {
					if pr.Sample.Count(metrics.StateConnected) < devices {
						return
					}
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					mu.Lock()
					peak = max(peak, m.HeapInuse)
					mu.Unlock()
				}
				res, err := Run(context.Background(), p, Options{Progress: sample, ProgressEvery: 2e9, SkipPreflight: true})
				if err != nil {
					b.Fatal(err)
				}
				tot := res.Run.Totals()
				if peak == 0 || tot[metrics.D2CSent] < devices {
					b.Fatalf("peak heap %d with all connected, %d readings", peak, tot[metrics.D2CSent])
				}
				b.ReportMetric(float64(peak-min(peak, base.HeapInuse))/devices, "heap-B/device")
				b.ReportMetric(float64(tot[metrics.D2CSent])/devices, "readings/device")
				if f := res.Firmware; f.Instances > 0 {
					b.ReportMetric(float64(f.Memory)/float64(f.Instances), "wasm-B/instance")
				}
			}
		})
	}
}
