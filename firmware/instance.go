package firmware

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// Instance is one device's running firmware: its own linear memory and
// globals over the module's shared compiled code. Its entry points may be
// called from several goroutines; they run one at a time, as on a device's
// single core. Each call is bounded by the instance's limits, and a trap,
// timeout or memory overrun fails the instance with a *TrapError: every
// later call returns an error matching ErrFailed and wrapping that
// *TrapError, and other instances are unaffected.
type Instance struct {
	mu     sync.Mutex
	module *Module
	device string
	host   Host
	limits Limits
	mod    api.Module
	mem    *linearMemory
	// fns are the exports called so far. wazero gives each api.Function its
	// own 10 KiB call stack, so they are made on first use and the one-shot
	// ones (init, the version check) are not kept: a device that only ever
	// takes timer calls pays for one.
	fns   [numEntries]api.Function
	stack [4]uint64 // parameters and results of the call under way

	// state is nil while the instance takes calls, then ErrFailed or
	// ErrClosed; cause is the error that failed it.
	state, cause error

	// inMethod and response carry catmsim_on_method's answer from the
	// method_response host function back to OnMethod.
	inMethod bool
	response []byte
}

type instanceKey struct{}

// Instantiate creates the firmware instance of one device, with its own
// memory and state, running the module's start function if it has one. It
// does not call catmsim_init: the device does, with Init, when it is ready.
// Zero fields of limits take the module's defaults (Options.Limits).
func (m *Module) Instantiate(ctx context.Context, device string, host Host, limits Limits) (in *Instance, err error) {
	limits = limits.orDefaults(m.limits)
	if m.minPages > limits.MemoryPages {
		return nil, fmt.Errorf("device %s: firmware's memory starts at %s, above the device's limit of %s: %w",
			device, pages(uint64(m.minPages)*pageSize), pages(uint64(limits.MemoryPages)*pageSize), ErrMemoryLimit)
	}
	in = &Instance{
		module: m, device: device, host: host, limits: limits,
		mem: &linearMemory{limit: uint64(limits.MemoryPages) * pageSize},
	}
	cctx, cancel := in.callContext(ctx)
	defer cancel()
	cctx = experimental.WithMemoryAllocator(cctx, in.mem.allocator())
	defer func() {
		// wazero does not expect a failing allocator at instantiation; the
		// check above keeps it from failing, and this keeps a device's
		// firmware from ever taking the fleet down if it does.
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("device %s: instantiating firmware: %v", device, r)
		}
	}()
	mod, err := m.rt.InstantiateModule(cctx, m.compiled, m.config)
	if err != nil || in.mem.refused > 0 {
		if mod != nil {
			_ = mod.Close(ctx)
		}
		if err == nil {
			err = errMemoryGrown
		}
		return nil, in.classify(ctx, "start", err)
	}
	in.mod = mod
	return in, nil
}

// errMemoryGrown stands for a call that returned normally after a refused
// memory.grow; classify turns it into the memory-limit failure.
var errMemoryGrown = errors.New("memory grown past the limit")

func (in *Instance) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithTimeout(ctx, in.limits.CallTimeout)
	return context.WithValue(cctx, instanceKey{}, in), cancel
}

// callError remembers which export a failure happened in, when one public
// call runs two (catmsim_alloc, then the handler).
type callError struct {
	entry entry
	err   error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// invoke calls one export; stack holds its parameters and receives its
// results.
func (in *Instance) invoke(ctx context.Context, e entry, stack []uint64) error {
	fn := in.fns[e]
	if fn == nil {
		fn = in.mod.ExportedFunction(entries[e].name)
		if e != entryInit && e != entryABIVersion {
			in.fns[e] = fn
		}
	}
	if err := fn.CallWithStack(ctx, stack); err != nil {
		return &callError{e, err}
	}
	if in.mem.refused > 0 {
		return &callError{e, errMemoryGrown}
	}
	return nil
}

// run makes one public call: it checks the instance can take it, bounds it
// in time, and turns a failure into the instance's end.
func (in *Instance) run(ctx context.Context, e entry, body func(ctx context.Context) error) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	name := entries[e].name
	if in.state != nil {
		return &failedError{entry: name, state: in.state, cause: in.cause}
	}
	if !in.module.has[e] {
		return fmt.Errorf("device %s: %s is not exported: %w", in.device, name, ErrNotHandled)
	}
	cctx, cancel := in.callContext(ctx)
	defer cancel()
	err := body(cctx)
	if err == nil || (errors.Is(err, ErrNoRoom) && in.mem.refused == 0) {
		return err
	}
	err = in.classify(ctx, name, err)
	in.state, in.cause = ErrFailed, err
	_ = in.mod.Close(context.WithoutCancel(ctx))
	return err
}

// classify turns a failed call into the instance's failure. parent is the
// caller's context: when it ended, the call was cut short by the device's
// owner, not by the firmware.
func (in *Instance) classify(parent context.Context, entryName string, err error) error {
	var ce *callError
	if errors.As(err, &ce) {
		entryName = ce.entry.String()
	}
	t := &TrapError{Device: in.device, Entry: entryName}
	var exit *sys.ExitError
	var abi *ABIError
	if asked, refused := in.mem.takeRefusal(); refused {
		t.Reason = fmt.Sprintf("asked to grow its memory to %s, past its limit of %s", pages(asked), pages(in.mem.limit))
		if !errors.Is(err, errMemoryGrown) {
			_, t.Stack = splitTrace(err.Error())
		}
		t.Err = ErrMemoryLimit
		return t
	}
	switch {
	case errors.As(err, &exit):
		if parent.Err() != nil {
			return fmt.Errorf("device %s: firmware call %s interrupted: %w", in.device, entryName, context.Cause(parent))
		}
		if exit.ExitCode() == sys.ExitCodeDeadlineExceeded {
			t.Reason = fmt.Sprintf("did not return within its %v time limit (a loop that never ends?)", in.limits.CallTimeout)
			t.Err = ErrTimeout
		} else {
			t.Reason = fmt.Sprintf("exited with code %d", exit.ExitCode())
			t.Err = err
		}
	case errors.As(err, &abi):
		_, t.Stack = splitTrace(err.Error())
		t.Reason = abi.Error()
		t.Err = abi
	default:
		t.Reason, t.Stack = splitTrace(err.Error())
		t.Err = err
	}
	return t
}

// pass copies the inputs of one call into the module's memory: it asks
// catmsim_alloc for n bytes and returns them, checked to lie in memory.
func (in *Instance) pass(ctx context.Context, n int) (dst []byte, ptr uint32, err error) {
	if n == 0 {
		return nil, 0, nil
	}
	if uint64(n) > in.mem.limit {
		return nil, 0, fmt.Errorf("device %s: %d bytes of event data exceed the firmware's whole memory limit: %w", in.device, n, ErrNoRoom)
	}
	st := in.stack[:]
	st[0] = api.EncodeI32(int32(n))
	if err := in.invoke(ctx, entryAlloc, st); err != nil {
		return nil, 0, err
	}
	ptr = api.DecodeU32(st[0])
	if ptr == 0 {
		return nil, 0, fmt.Errorf("device %s: %s returned 0 for %d bytes: %w", in.device, ExportAlloc, n, ErrNoRoom)
	}
	mem := in.mod.Memory()
	dst, ok := mem.Read(ptr, uint32(n))
	if !ok {
		return nil, 0, &callError{entryAlloc, &ABIError{Func: ExportAlloc, Msg: fmt.Sprintf(
			"returned [%d, +%d), outside the module's %d-byte memory", ptr, n, mem.Size())}}
	}
	return dst, ptr, nil
}

// Init calls catmsim_init: the device has connected for the first time.
func (in *Instance) Init(ctx context.Context) error {
	return in.run(ctx, entryInit, func(ctx context.Context) error {
		return in.invoke(ctx, entryInit, in.stack[:])
	})
}

// OnTimer calls catmsim_on_timer: the timer the firmware set has fired.
func (in *Instance) OnTimer(ctx context.Context) error {
	return in.run(ctx, entryOnTimer, func(ctx context.Context) error {
		return in.invoke(ctx, entryOnTimer, in.stack[:])
	})
}

// OnWake calls catmsim_on_wake: the device woke from the sleep the firmware
// asked for and is connected again.
func (in *Instance) OnWake(ctx context.Context) error {
	return in.run(ctx, entryOnWake, func(ctx context.Context) error {
		return in.invoke(ctx, entryOnWake, in.stack[:])
	})
}

// OnC2D calls catmsim_on_c2d with a cloud-to-device message and returns how
// the firmware settles it. Properties whose name or value holds a NUL byte
// are left out (see the package doc).
func (in *Instance) OnC2D(ctx context.Context, body []byte, props []Property) (Outcome, error) {
	out := Complete
	err := in.run(ctx, entryOnC2D, func(ctx context.Context) error {
		propsLen := encodedPropertiesLen(props)
		dst, ptr, err := in.pass(ctx, len(body)+propsLen)
		if err != nil {
			return err
		}
		copy(dst, body)
		encodeProperties(dst[len(body):], props)
		st := in.stack[:]
		st[0], st[1] = uint64(ptr), uint64(len(body))
		st[2], st[3] = uint64(ptr+uint32(len(body))), uint64(propsLen)
		if err := in.invoke(ctx, entryOnC2D, st); err != nil {
			return err
		}
		o := Outcome(api.DecodeI32(st[0]))
		if o < Complete || o > Reject {
			return &callError{entryOnC2D, &ABIError{Func: ExportOnC2D, Msg: fmt.Sprintf(
				"returned outcome %d; it must be 0 (complete), 1 (abandon) or 2 (reject)", int32(o))}}
		}
		out = o
		return nil
	})
	return out, err
}

// OnMethod calls catmsim_on_method with a direct method and returns the
// firmware's status and the response it gave with method_response (nil if it
// gave none).
func (in *Instance) OnMethod(ctx context.Context, name string, payload []byte) (status int, response []byte, err error) {
	err = in.run(ctx, entryOnMethod, func(ctx context.Context) error {
		dst, ptr, err := in.pass(ctx, len(name)+len(payload))
		if err != nil {
			return err
		}
		copy(dst, name)
		copy(dst[len(name):], payload)
		st := in.stack[:]
		st[0], st[1] = uint64(ptr), uint64(len(name))
		st[2], st[3] = uint64(ptr+uint32(len(name))), uint64(len(payload))
		in.inMethod, in.response = true, nil
		defer func() { in.inMethod = false }()
		if err := in.invoke(ctx, entryOnMethod, st); err != nil {
			return err
		}
		status, response = int(api.DecodeI32(st[0])), in.response
		return nil
	})
	in.response = nil
	return status, response, err
}

// OnDesired calls catmsim_on_desired with a desired-properties patch and its
// version.
func (in *Instance) OnDesired(ctx context.Context, patch []byte, version int64) error {
	return in.run(ctx, entryOnDesired, func(ctx context.Context) error {
		dst, ptr, err := in.pass(ctx, len(patch))
		if err != nil {
			return err
		}
		copy(dst, patch)
		st := in.stack[:]
		st[0], st[1], st[2] = uint64(ptr), uint64(len(patch)), api.EncodeI64(version)
		return in.invoke(ctx, entryOnDesired, st)
	})
}

func (in *Instance) abiVersion(ctx context.Context) (int32, error) {
	var v int32
	err := in.run(ctx, entryABIVersion, func(ctx context.Context) error {
		st := in.stack[:]
		if err := in.invoke(ctx, entryABIVersion, st); err != nil {
			return err
		}
		v = api.DecodeI32(st[0])
		return nil
	})
	return v, err
}

// Device is the device the instance runs for.
func (in *Instance) Device() string { return in.device }

// Err returns nil while the instance takes calls, and afterwards why it does
// not: the *TrapError (or interruption) that failed it, or ErrClosed.
func (in *Instance) Err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cause != nil {
		return in.cause
	}
	return in.state
}

// MemoryBytes is the size of the instance's linear memory now.
func (in *Instance) MemoryBytes() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.mem.buf)
}

// Close releases the instance. Later calls return an error matching
// ErrClosed (or ErrFailed, if it had failed).
func (in *Instance) Close(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state == nil {
		in.state = ErrClosed
		return in.mod.Close(ctx)
	}
	return nil
}
