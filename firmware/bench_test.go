package firmware_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/catmsim/catmsim/firmware"
)

// BenchmarkInstantiate1000 is a fleet's start: 1,000 devices instantiating an
// example compiled once, running init and taking the first reading. It reports what each instance
// costs: Go heap (wazero's per-instance state and the linear memory, which
// lives on the Go heap) and the linear memory alone, and the time to
// instantiate one and make those two calls.
func BenchmarkInstantiate1000(b *testing.B) {
	for _, ex := range []struct{ name, path string }{{"c", sensorNodeC}, {"assemblyscript", sensorNodeAS}} {
		b.Run(ex.name, func(b *testing.B) { benchmarkInstantiate(b, ex.path) })
	}
}

func benchmarkInstantiate(b *testing.B, path string) {
	const n = 1000
	ctx := context.Background()
	m := compile(b, path, firmware.Options{})
	h := newHost()
	h.setSensors(21, 50)
	instances := make([]*firmware.Instance, n)
	var before, after runtime.MemStats
	var heap, linear uint64
	var elapsed time.Duration
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		for i := range instances {
			in, err := m.Instantiate(ctx, "dev", h, firmware.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			if err := in.Init(ctx); err != nil {
				b.Fatal(err)
			}
			if err := in.OnTimer(ctx); err != nil {
				b.Fatal(err)
			}
			instances[i] = in
		}
		elapsed += time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap += after.HeapAlloc - before.HeapAlloc
		for i, in := range instances {
			linear += uint64(in.MemoryBytes())
			_ = in.Close(ctx)
			instances[i] = nil
		}
		h.take()
	}
	per := float64(b.N * n)
	b.ReportMetric(float64(heap)/per, "heap-B/instance")
	b.ReportMetric(float64(linear)/per, "linear-B/instance")
	b.ReportMetric(float64(elapsed.Nanoseconds())/per, "ns/instance")
}

// BenchmarkOnTimer is one reading of the C example: the call's cost that
// every device pays every interval.
func BenchmarkOnTimer(b *testing.B) {
	ctx := context.Background()
	m := compile(b, sensorNodeC, firmware.Options{})
	h := newHost()
	h.setSensors(21, 50)
	in := instantiate(b, m, "dev", h, firmware.Limits{})
	b.ReportAllocs()
	for b.Loop() {
		if err := in.OnTimer(ctx); err != nil {
			b.Fatal(err)
		}
		h.take()
	}
}

// BenchmarkCompile is loading the C example: done once per run (or once per
// cache).
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	wasm := readWasm(b, sensorNodeC)
	for b.Loop() {
		m, err := firmware.Compile(ctx, wasm, firmware.Options{})
		if err != nil {
			b.Fatal(err)
		}
		_ = m.Close(ctx)
	}
}
