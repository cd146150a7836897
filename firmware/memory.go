package firmware

import (
	"fmt"

	"github.com/tetratelabs/wazero/experimental"
)

// pageSize is the size of a wasm memory page.
const pageSize = 65536

// linearMemory backs one instance's wasm memory and holds it to the
// instance's limit. wazero's own limit is per runtime, and one runtime serves
// every device running a module, so the per-device limit lives here. A grow
// past the limit fails (memory.grow returns -1) and is remembered, so the
// call that asked for it fails the instance with ErrMemoryLimit once it
// returns, whether or not the module coped with the -1.
type linearMemory struct {
	buf     []byte
	limit   uint64 // bytes
	refused uint64 // the largest size asked for beyond the limit, 0 if none
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// allocator hands wazero the instance's memory; it is called once, when the
// instance is created.
func (m *linearMemory) allocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, _ uint64) experimental.LinearMemory { return m })
}

// Reallocate grows the memory to size bytes, keeping its contents. wazero
// calls it at instantiation with the module's initial size and for every
// memory.grow.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused = max(m.refused, size)
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Exactly the size asked for: firmware grows rarely, and spare capacity
	// would be paid for by every device.
	grown := make([]byte, size)
	copy(grown, m.buf)
	m.buf = grown
	return m.buf
}

// Free releases the memory when the instance is closed.
func (m *linearMemory) Free() { m.buf = nil }

// takeRefusal reports a refused grow once.
func (m *linearMemory) takeRefusal() (asked uint64, refused bool) {
	asked, m.refused = m.refused, 0
	return asked, asked > 0
}

// pages renders a byte size as pages and a readable size.
func pages(bytes uint64) string {
	return fmt.Sprintf("%d pages (%s)", (bytes+pageSize-1)/pageSize, sizeString(bytes))
}

func sizeString(b uint64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
