package firmware_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/firmware"
)

// trapOf asserts err is a *TrapError for device and entry, matching cause.
func trapOf(t *testing.T, err error, device, entry string, cause error) *firmware.TrapError {
	t.Helper()
	var trap *firmware.TrapError
	if !errors.As(err, &trap) {
		t.Fatalf("error %v (%T) is not a *TrapError", err, err)
	}
	if trap.Device != device || trap.Entry != entry {
		t.Errorf("trap of device %q in %q, want %q in %q", trap.Device, trap.Entry, device, entry)
	}
	if !errors.Is(err, cause) {
		t.Errorf("error %v does not match %v", err, cause)
	}
	return trap
}

// assertFailed asserts the instance takes no more calls and says why.
func assertFailed(t *testing.T, in *firmware.Instance, cause error) {
	t.Helper()
	if !errors.Is(in.Err(), cause) {
		t.Errorf("Err() = %v, want a match for %v", in.Err(), cause)
	}
	err := in.Init(context.Background())
	if !errors.Is(err, firmware.ErrFailed) || !errors.Is(err, cause) {
		t.Errorf("a call after the failure returned %v, want ErrFailed wrapping %v", err, cause)
	}
}

func TestTrapFailsOnlyItsInstance(t *testing.T) {
	ctx := context.Background()
	m := compile(t, "testdata/misbehave.wasm", firmware.Options{})
	ha, hb := newHost(), newHost()
	a := instantiate(t, m, "dev-a", ha, firmware.Limits{})
	b := instantiate(t, m, "dev-b", hb, firmware.Limits{})

	err := a.OnTimer(ctx)
	trap := trapOf(t, err, "dev-a", firmware.ExportOnTimer, err)
	if trap.Reason != "unreachable" {
		t.Errorf("reason %q, want unreachable", trap.Reason)
	}
	var frames []string
	for _, f := range trap.Stack {
		frames = append(frames, strings.SplitN(f, "(", 2)[0])
	}
	if want := []string{"check_sensor", "read_sensor", "catmsim_on_timer"}; !slices.Equal(frames, want) {
		t.Errorf("stack %q, want frames %q", trap.Stack, want)
	}
	if msg := err.Error(); !strings.Contains(msg, "device dev-a: firmware failed in catmsim_on_timer: unreachable") ||
		!strings.Contains(msg, "check_sensor") {
		t.Errorf("message %q does not name the device, entry point, trap and frame", msg)
	}
	assertFailed(t, a, trap)

	if err := b.Init(ctx); err != nil {
		t.Fatalf("the other instance failed too: %v", err)
	}
	equalLines(t, "the other instance's init", hb.take(), []string{"telemetry ok []"})
	if b.Err() != nil {
		t.Errorf("the other instance reports %v", b.Err())
	}
}

func TestLoopForeverIsStopped(t *testing.T) {
	ctx := context.Background()
	m := compile(t, "testdata/misbehave.wasm", firmware.Options{})
	in := instantiate(t, m, "looper", newHost(), firmware.Limits{CallTimeout: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- in.OnWake(ctx) }()
	select {
	case err := <-done:
		trap := trapOf(t, err, "looper", firmware.ExportOnWake, firmware.ErrTimeout)
		if !strings.Contains(trap.Reason, "50ms time limit") {
			t.Errorf("reason %q does not state the limit", trap.Reason)
		}
		assertFailed(t, in, firmware.ErrTimeout)
	case <-time.After(10 * time.Second):
		t.Fatal("a call that loops forever was not stopped within 10s")
	}
}

func TestCancelledCallIsNotTheFirmwaresFault(t *testing.T) {
	m := compile(t, "testdata/misbehave.wasm", firmware.Options{})
	in := instantiate(t, m, "looper", newHost(), firmware.Limits{CallTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.OnWake(ctx) }()
	cancel()
	select {
	case err := <-done:
		var trap *firmware.TrapError
		if errors.As(err, &trap) || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled call returned %v; want context.Canceled and no *TrapError", err)
		}
		if !errors.Is(in.Init(context.Background()), firmware.ErrFailed) {
			t.Errorf("the interrupted instance still takes calls")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled call did not return within 10s")
	}
}

func TestMemoryLimit(t *testing.T) {
	ctx := context.Background()
	misbehave := compile(t, "testdata/misbehave.wasm", firmware.Options{})

	t.Run("grow past the limit fails the call that grew", func(t *testing.T) {
		in := instantiate(t, misbehave, "grower", newHost(), firmware.Limits{})
		_, _, err := in.OnMethod(ctx, "grow", nil)
		trap := trapOf(t, err, "grower", firmware.ExportOnMethod, firmware.ErrMemoryLimit)
		if want := "asked to grow its memory to 101 pages (6.3 MiB), past its limit of 8 pages (512 KiB)"; trap.Reason != want {
			t.Errorf("reason %q, want %q", trap.Reason, want)
		}
		assertFailed(t, in, firmware.ErrMemoryLimit)
	})
	t.Run("grow within a raised limit", func(t *testing.T) {
		in := instantiate(t, misbehave, "grower", newHost(), firmware.Limits{MemoryPages: 128})
		status, _, err := in.OnMethod(ctx, "grow", nil)
		if err != nil || status != 200 {
			t.Fatalf("OnMethod = %d, %v; want 200 and no error", status, err)
		}
		if got, want := in.MemoryBytes(), 101*65536; got != want {
			t.Errorf("memory %d bytes after the grow, want %d", got, want)
		}
	})
	t.Run("initial memory above the compile limit", func(t *testing.T) {
		_, err := firmware.Compile(ctx, readWasm(t, "testdata/bigmemory.wasm"), firmware.Options{})
		want := "the module's memory starts at 20 pages (1.2 MiB), above the limit of 8 pages (512 KiB)"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile error %v, want one containing %q", err, want)
		}
	})
	t.Run("initial memory above a device's limit", func(t *testing.T) {
		m := compile(t, "testdata/bigmemory.wasm", firmware.Options{Limits: firmware.Limits{MemoryPages: 32}})
		if _, err := m.Instantiate(ctx, "small", newHost(), firmware.Limits{MemoryPages: 16}); !errors.Is(err, firmware.ErrMemoryLimit) ||
			!strings.Contains(err.Error(), "device small") {
			t.Errorf("Instantiate error %v, want ErrMemoryLimit naming the device", err)
		}
		in := instantiate(t, m, "roomy", newHost(), firmware.Limits{})
		if got := in.MemoryBytes(); got != 20*65536 {
			t.Errorf("memory %d bytes, want 20 pages", got)
		}
	})
	t.Run("the C example's allocator grows past the limit", func(t *testing.T) {
		m := compile(t, sensorNodeC, firmware.Options{})
		in := instantiate(t, m, "tight", newHost(), firmware.Limits{MemoryPages: 1})
		_, err := in.OnC2D(ctx, make([]byte, 60<<10), nil)
		trapOf(t, err, "tight", firmware.ExportAlloc, firmware.ErrMemoryLimit)
	})
	t.Run("event data larger than the whole limit is refused", func(t *testing.T) {
		m := compile(t, sensorNodeC, firmware.Options{})
		in := instantiate(t, m, "small", newHost(), firmware.Limits{})
		if _, err := in.OnC2D(ctx, make([]byte, 1<<20), nil); !errors.Is(err, firmware.ErrNoRoom) {
			t.Fatalf("OnC2D of 1 MiB returned %v, want ErrNoRoom", err)
		}
		if err := in.Init(ctx); err != nil {
			t.Errorf("the instance failed after a refused event: %v", err)
		}
	})
}

func TestABIBreaches(t *testing.T) {
	ctx := context.Background()
	misbehave := compile(t, "testdata/misbehave.wasm", firmware.Options{})
	badalloc := compile(t, "testdata/badalloc.wasm", firmware.Options{})
	tests := []struct {
		name   string
		m      *firmware.Module
		call   func(in *firmware.Instance) error
		entry  string
		reason string
		frame  string // innermost frame: the host function, or "" when the host found the breach outside wasm
	}{
		{
			name:  "pointer past the end of memory",
			m:     misbehave,
			call:  func(in *firmware.Instance) error { return in.OnDesired(ctx, []byte(`{}`), 1) },
			entry: firmware.ExportOnDesired, frame: "catmsim.send_telemetry",
			reason: "send_telemetry: body [65530, +10) is outside the module's 65536-byte memory",
		},
		{
			name:  "length that wraps around",
			m:     badalloc,
			call:  func(in *firmware.Instance) error { return in.Init(ctx) },
			entry: firmware.ExportInit, frame: "catmsim.log",
			reason: "log: message [8, +4294967295) is outside the module's 65536-byte memory",
		},
		{
			name: "allocator returns memory the module lacks",
			m:    badalloc,
			call: func(in *firmware.Instance) error {
				_, err := in.OnC2D(ctx, []byte("0123456789"), nil)
				return err
			},
			entry:  firmware.ExportAlloc,
			reason: "catmsim_alloc: returned [65530, +10), outside the module's 65536-byte memory",
		},
		{
			name: "outcome the ABI lacks",
			m:    misbehave,
			call: func(in *firmware.Instance) error {
				_, err := in.OnC2D(ctx, []byte("x"), nil)
				return err
			},
			entry:  firmware.ExportOnC2D,
			reason: "catmsim_on_c2d: returned outcome 7; it must be 0 (complete), 1 (abandon) or 2 (reject)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := instantiate(t, tc.m, "dev", newHost(), firmware.Limits{})
			err := tc.call(in)
			trap := trapOf(t, err, "dev", tc.entry, firmware.ErrABI)
			if trap.Reason != tc.reason {
				t.Errorf("reason %q, want %q", trap.Reason, tc.reason)
			}
			var inner string
			if len(trap.Stack) > 0 {
				inner = strings.SplitN(trap.Stack[0], "(", 2)[0]
			}
			if inner != tc.frame {
				t.Errorf("innermost frame %q (stack %q), want %q", inner, trap.Stack, tc.frame)
			}
			assertFailed(t, in, firmware.ErrABI)
		})
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name string
		wasm func(t *testing.T) []byte
		opts firmware.Options
		want []string
	}{
		{
			name: "every breach named at once",
			wasm: file("testdata/broken.wasm"),
			want: []string{
				"export catmsim_init is missing; it must be func catmsim_init()",
				"export catmsim_on_c2d has type (i32, i32) -> i32; it must be (i32 body_ptr, i32 body_len, i32 props_ptr, i32 props_len) -> i32 outcome",
				"import catmsim.send_telemetry has type (i32, i32) -> i32; it must be (i32 body_ptr, i32 body_len, i32 props_ptr, i32 props_len) -> i32 code",
				"import env.fd_write is not part of the ABI: the host provides catmsim.{send_telemetry, report_properties, method_response, set_timer, sleep, clock_ms, log, sensor}",
				"import env.abort is not part of the ABI: build AssemblyScript with --use abort=",
				"import catmsim.set_timer needs export catmsim_on_timer(), which the host calls as a result",
				"export catmsim_on_method takes data, so export catmsim_alloc(i32 size) -> i32 ptr is needed to pass it in",
			},
		},
		{
			name: "memory not exported",
			wasm: file("testdata/nomemory.wasm"),
			want: []string{`export memory is missing: the module must export its linear memory as "memory"`},
		},
		{
			name: "another ABI version",
			wasm: file("testdata/version2.wasm"),
			want: []string{"firmware is written for catmsim ABI v2; this catmsim speaks v1"},
		},
		{
			name: "start function traps",
			wasm: file("testdata/starttrap.wasm"),
			want: []string{"instantiating firmware: firmware failed in start: unreachable (wasm stack: start())"},
		},
		{
			name: "start function never returns",
			wasm: file("testdata/startloop.wasm"),
			opts: firmware.Options{Limits: firmware.Limits{CallTimeout: 20 * time.Millisecond}},
			want: []string{"firmware failed in start: did not return within its 20ms time limit"},
		},
		{
			name: "not wasm",
			wasm: func(t *testing.T) []byte { return []byte("#!/bin/sh\necho firmware\n") },
			want: []string{"compiling firmware:", "is it a wasm32 module built for catmsim ABI v1?"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := firmware.Compile(context.Background(), tc.wasm(t), tc.opts)
			if err == nil {
				_ = m.Close(context.Background())
				t.Fatal("Compile accepted the module")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func file(path string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func TestUnhandledEventLeavesInstanceWhole(t *testing.T) {
	ctx := context.Background()
	m := compile(t, "testdata/bigmemory.wasm", firmware.Options{Limits: firmware.Limits{MemoryPages: 32}})
	if got := m.Handles(); got != (firmware.Handlers{}) {
		t.Errorf("Handles() = %+v for a module with only init", got)
	}
	in := instantiate(t, m, "plain", newHost(), firmware.Limits{})
	if _, err := in.OnC2D(ctx, []byte("x"), nil); !errors.Is(err, firmware.ErrNotHandled) {
		t.Errorf("OnC2D returned %v, want ErrNotHandled", err)
	}
	if _, _, err := in.OnMethod(ctx, "m", nil); !errors.Is(err, firmware.ErrNotHandled) {
		t.Errorf("OnMethod returned %v, want ErrNotHandled", err)
	}
	if err := in.Init(ctx); err != nil {
		t.Errorf("Init after unhandled events: %v", err)
	}
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Init(ctx); !errors.Is(err, firmware.ErrClosed) {
		t.Errorf("Init after Close returned %v, want ErrClosed", err)
	}
}
