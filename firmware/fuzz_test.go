package firmware_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/catmsim/catmsim/firmware"
)

// FuzzSensorNodeEvents feeds the two sensor node examples the same
// cloud-to-device message, direct method and desired-properties patch, all
// from the fuzzer, and requires that neither fails and both do the same: the
// examples' JSON scanning reads untrusted bytes, and the host copies them in.
func FuzzSensorNodeEvents(f *testing.F) {
	ctx := context.Background()
	c := compile(f, sensorNodeC, firmware.Options{})
	as := compile(f, sensorNodeAS, firmware.Options{})
	f.Add([]byte("hello"), "setInterval", []byte(`{"interval":60}`), []byte(`{"interval":120,"sleep":true}`), int64(3))
	f.Add([]byte(""), "setInterval", []byte(`  7`), []byte(`{"sleep":false,"interval":"x"}`), int64(-1))
	f.Add([]byte("x"), "reboot", []byte(`{"a":{"interval":1}}`), []byte(`{"interval":1e3`), int64(1<<40))
	f.Add([]byte{0xff}, "setInterval", []byte(`{"\"interval":5,"interval" : 86400}`), []byte(`{"sleep":tru`), int64(0))
	f.Fuzz(func(t *testing.T, body []byte, name string, payload, patch []byte, version int64) {
		run := func(m *firmware.Module) []string {
			h := newHost()
			h.setSensors(21.5, 40)
			in, err := m.Instantiate(ctx, "fuzz", h, firmware.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close(ctx)
			if err := in.Init(ctx); err != nil {
				t.Fatal(err)
			}
			o, err := in.OnC2D(ctx, body, []firmware.Property{{Name: name, Value: string(payload)}})
			if err != nil || o != firmware.Complete {
				t.Fatalf("OnC2D = %v, %v", o, err)
			}
			status, resp, err := in.OnMethod(ctx, name, payload)
			if err != nil {
				t.Fatalf("OnMethod: %v", err)
			}
			if err := in.OnDesired(ctx, patch, version); err != nil {
				t.Fatalf("OnDesired: %v", err)
			}
			if err := in.OnTimer(ctx); err != nil {
				t.Fatalf("OnTimer: %v", err)
			}
			return append(h.take(), string(rune(status)), string(resp))
		}
		if gc, gas := run(c), run(as); !slices.Equal(gc, gas) {
			t.Fatalf("the examples disagree:\nc  %q\nas %q", gc, gas)
		}
	})
}

// FuzzCompile checks that no module, however malformed, panics Compile, and
// that one Compile accepts instantiates and runs init within its limits or
// fails its own instance.
func FuzzCompile(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.wasm")
	paths = append(paths, sensorNodeC, sensorNodeAS)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	limits := firmware.Limits{MemoryPages: 4, CallTimeout: 50 * time.Millisecond}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		m, err := firmware.Compile(ctx, wasm, firmware.Options{Limits: limits})
		if err != nil {
			return
		}
		defer m.Close(ctx)
		in, err := m.Instantiate(ctx, "fuzz", newHost(), firmware.Limits{})
		if err != nil {
			var trap *firmware.TrapError
			if !errors.As(err, &trap) {
				t.Fatalf("Instantiate failed without a *TrapError: %v", err)
			}
			return
		}
		defer in.Close(ctx)
		if err := in.Init(ctx); err != nil {
			var trap *firmware.TrapError
			if !errors.As(err, &trap) {
				t.Fatalf("Init failed without a *TrapError: %v", err)
			}
		}
	})
}
