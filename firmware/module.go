package firmware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
)

// Defaults for Limits left zero.
const (
	// DefaultMemoryPages is 512 KiB, about the 520 KiB of SRAM of the ESP32
	// in a FiPy: firmware that fits a device fits here.
	DefaultMemoryPages = 8
	// DefaultCallTimeout is far longer than firmware logic takes (microseconds)
	// and short enough that a loop that never ends costs one core a second
	// before it fails its device.
	DefaultCallTimeout = time.Second
)

// Limits bound one instance.
type Limits struct {
	// MemoryPages is the most linear memory the instance may have, in 64 KiB
	// wasm pages. A module whose initial memory is larger fails to
	// instantiate; one that grows past it fails the call that grew.
	MemoryPages uint32
	// CallTimeout bounds each entry-point call, the host functions it calls
	// included. A call still running then is stopped and fails the instance.
	CallTimeout time.Duration
}

func (l Limits) orDefaults(d Limits) Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.CallTimeout <= 0 {
		l.CallTimeout = d.CallTimeout
	}
	return l
}

var defaultLimits = Limits{MemoryPages: DefaultMemoryPages, CallTimeout: DefaultCallTimeout}

// Options configure Compile.
type Options struct {
	// Limits are the defaults for the module's instances; Compile checks the
	// module's initial memory against MemoryPages.
	Limits Limits
	// Cache, when set, shares compiled code between Compile calls of the same
	// module (a fleet with several groups running one firmware, or a
	// comparison of protocols). Without it each Compile compiles afresh.
	Cache *Cache
}

// Cache holds compiled code for reuse across Compile calls.
type Cache struct {
	c wazero.CompilationCache
}

// NewCache returns an in-memory cache of compiled modules.
func NewCache() *Cache { return &Cache{c: wazero.NewCompilationCache()} }

// Close releases the cache's compiled code. Modules compiled with it keep
// working; later Compile calls compile afresh.
func (c *Cache) Close(ctx context.Context) error { return c.c.Close(ctx) }

// Handlers says which optional events a module handles, so a device can
// subscribe only to what its firmware answers, as a real device whose firmware
// registers no method callback never subscribes to methods.
type Handlers struct {
	Timer, Wake, C2D, Method, Desired bool
}

// Module is a compiled firmware module, ready to be instantiated once per
// device. It is safe for concurrent use.
type Module struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	config   wazero.ModuleConfig
	limits   Limits
	minPages uint32
	has      [numEntries]bool // exports present with the right type
	handles  Handlers
}

// Compile checks a module against the host ABI and compiles it. Every
// breach found is reported together, each naming the import or export and
// the signature it must have, so a module that cannot run fails here, before
// any device starts. Compile also instantiates the module once, without
// calling catmsim_init, to run its start function and read its ABI version.
func Compile(ctx context.Context, wasm []byte, opts Options) (*Module, error) {
	limits := opts.Limits.orDefaults(defaultLimits)
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithCustomSections(false)
	if opts.Cache != nil {
		cfg = cfg.WithCompilationCache(opts.Cache.c)
	}
	rt := newRuntime(ctx, cfg)
	m, err := compile(ctx, rt, wasm, limits)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	return m, nil
}

// runtimeMu serialises making runtimes: wazero 1.12 caches its own version in
// an unguarded package variable the first time a runtime is made, so two
// made at once (two fleets compiling firmware side by side, as sim compare
// does) race on it.
var runtimeMu sync.Mutex

func newRuntime(ctx context.Context, cfg wazero.RuntimeConfig) wazero.Runtime {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	return wazero.NewRuntimeWithConfig(ctx, cfg)
}

func compile(ctx context.Context, rt wazero.Runtime, wasm []byte, limits Limits) (*Module, error) {
	hb := rt.NewHostModuleBuilder(ImportModule)
	for _, imp := range imports {
		params, results := imp.sig.types()
		fb := hb.NewFunctionBuilder().WithGoModuleFunction(imp.fn, params, results)
		names := make([]string, len(imp.sig.params))
		for i, p := range imp.sig.params {
			names[i] = p.name
		}
		fb.WithParameterNames(names...).Export(imp.name)
	}
	if _, err := hb.Instantiate(ctx); err != nil {
		return nil, fmt.Errorf("building the host module: %w", err)
	}
	if err := checkModule(wasm); err != nil {
		return nil, fmt.Errorf("compiling firmware: %w", err)
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compiling firmware: %w (is it a wasm32 module built for catmsim ABI v%d?)", err, ABIVersion)
	}
	m := &Module{
		rt:       rt,
		compiled: compiled,
		// No WASI is offered, so nothing reads the random source; a shared
		// one spares each instance the 4 KiB generator wazero makes itself.
		config: wazero.NewModuleConfig().WithName("").WithStartFunctions().WithRandSource(zeroReader{}),
		limits: limits,
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("firmware does not fit catmsim ABI v%d:\n%w", ABIVersion, err)
	}
	if err := m.probe(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// validate checks imports, exports and memory, collecting every problem.
func (m *Module) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	imported := map[string]bool{}
	for _, def := range m.compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		spec := findImport(name)
		switch {
		case mod == "env" && name == "abort":
			add("import env.abort is not part of the ABI: build AssemblyScript with --use abort= (or a function of your own)")
		case mod != ImportModule || spec == nil:
			add("import %s.%s is not part of the ABI: the host provides %s", mod, name, importList())
		case !spec.sig.matches(def.ParamTypes(), def.ResultTypes()):
			add("import %s.%s has type %s; it must be %s", mod, name,
				typeString(def.ParamTypes(), def.ResultTypes()), spec.sig)
		default:
			imported[name] = true
		}
	}
	for _, def := range m.compiled.ImportedMemories() {
		mod, name, _ := def.Import()
		add("import %s.%s is a memory: the module must define its own memory and export it as %q", mod, name, ExportMemory)
	}

	exports := m.compiled.ExportedFunctions()
	has := [numEntries]bool{}
	for e, spec := range entries {
		def, ok := exports[spec.name]
		if !ok {
			if spec.required {
				add("export %s is missing; it must be func %s%s", spec.name, spec.name, spec.sig)
			}
			continue
		}
		if !spec.sig.matches(def.ParamTypes(), def.ResultTypes()) {
			add("export %s has type %s; it must be %s", spec.name,
				typeString(def.ParamTypes(), def.ResultTypes()), spec.sig)
			continue
		}
		has[e] = true
	}
	for _, imp := range imports {
		if imported[imp.name] && imp.needs >= 0 && !has[imp.needs] {
			if _, present := exports[entries[imp.needs].name]; !present {
				add("import %s.%s needs export %s%s, which the host calls as a result", ImportModule, imp.name,
					entries[imp.needs].name, entries[imp.needs].sig)
			}
		}
	}
	for _, e := range []entry{entryOnC2D, entryOnMethod, entryOnDesired} {
		if has[e] && !has[entryAlloc] {
			if _, present := exports[ExportAlloc]; !present {
				add("export %s takes data, so export %s%s is needed to pass it in", entries[e].name, ExportAlloc, entries[entryAlloc].sig)
				break
			}
		}
	}

	mem, ok := m.compiled.ExportedMemories()[ExportMemory]
	if !ok {
		add("export %s is missing: the module must export its linear memory as %q", ExportMemory, ExportMemory)
	} else {
		m.minPages = mem.Min()
		if limit := m.limits.MemoryPages; m.minPages > limit {
			add("the module's memory starts at %s, above the limit of %s: raise the limit or build with less initial memory",
				pages(uint64(m.minPages)*pageSize), pages(uint64(limit)*pageSize))
		}
	}
	m.has = has
	m.handles = Handlers{
		Timer: has[entryOnTimer], Wake: has[entryOnWake], C2D: has[entryOnC2D],
		Method: has[entryOnMethod], Desired: has[entryOnDesired],
	}
	return errors.Join(errs...)
}

func findImport(name string) *importSpec {
	for i := range imports {
		if imports[i].name == name {
			return &imports[i]
		}
	}
	return nil
}

func importList() string {
	names := make([]string, len(imports))
	for i, imp := range imports {
		names[i] = imp.name
	}
	return ImportModule + ".{" + strings.Join(names, ", ") + "}"
}

// probe instantiates the module once with a host that does nothing, to run
// its start function and check the ABI version it was written for.
func (m *Module) probe(ctx context.Context) error {
	in, err := m.Instantiate(ctx, "", nopHost{}, Limits{})
	if err != nil {
		return fmt.Errorf("instantiating firmware: %w", err)
	}
	defer in.Close(ctx)
	v, err := in.abiVersion(ctx)
	if err != nil {
		return fmt.Errorf("reading the firmware's ABI version: %w", err)
	}
	if v != ABIVersion {
		return fmt.Errorf("firmware is written for catmsim ABI v%d; this catmsim speaks v%d", v, ABIVersion)
	}
	return nil
}

// Handles reports which optional events the module handles.
func (m *Module) Handles() Handlers { return m.handles }

// Limits are the module's default limits for its instances.
func (m *Module) Limits() Limits { return m.limits }

// Close releases the module and every instance of it.
func (m *Module) Close(ctx context.Context) error { return m.rt.Close(ctx) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// nopHost serves the load check: the start function may call the host, and
// nothing it does there should reach a device.
type nopHost struct{}

func (nopHost) SendTelemetry(context.Context, []byte, []Property) Code { return CodeDisconnected }
func (nopHost) ReportProperties(context.Context, []byte) Code          { return CodeDisconnected }
func (nopHost) SetTimer(context.Context, time.Duration) Code           { return CodeOK }
func (nopHost) Sleep(context.Context, time.Duration) Code              { return CodeOK }
func (nopHost) Now() time.Time                                         { return time.Unix(0, 0) }
func (nopHost) Log(slog.Level, string)                                 {}
func (nopHost) Sensor(int32) float64                                   { return 0 }
