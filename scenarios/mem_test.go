package scenarios

import "runtime"

// testingMem measures what one call allocates.
type testingMem struct{ bytes, allocs uint64 }

func (m *testingMem) measure(f func()) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	m.bytes = after.TotalAlloc - before.TotalAlloc
	m.allocs = after.Mallocs - before.Mallocs
}
