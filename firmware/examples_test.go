package firmware_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/catmsim/catmsim/firmware"
	"github.com/catmsim/catmsim/firmware/examples"
)

// step is one event delivered to the sensor node, with the sensor readings
// and send result in force while it runs.
type step struct {
	name        string
	temperature float64
	humidity    float64
	send        firmware.Code
	do          func(ctx context.Context, in *firmware.Instance) (string, error)
}

func onTimer(ctx context.Context, in *firmware.Instance) (string, error) { return "", in.OnTimer(ctx) }
func onWake(ctx context.Context, in *firmware.Instance) (string, error)  { return "", in.OnWake(ctx) }

func method(name, payload string) func(context.Context, *firmware.Instance) (string, error) {
	return func(ctx context.Context, in *firmware.Instance) (string, error) {
		status, resp, err := in.OnMethod(ctx, name, []byte(payload))
		return fmt.Sprintf("-> %d %s", status, resp), err
	}
}

func desired(patch string, version int64) func(context.Context, *firmware.Instance) (string, error) {
	return func(ctx context.Context, in *firmware.Instance) (string, error) {
		return "", in.OnDesired(ctx, []byte(patch), version)
	}
}

func c2d(body string, props ...firmware.Property) func(context.Context, *firmware.Instance) (string, error) {
	return func(ctx context.Context, in *firmware.Instance) (string, error) {
		o, err := in.OnC2D(ctx, []byte(body), props)
		return "-> " + o.String(), err
	}
}

// sensorNodeScript exercises every branch of the sensor node's logic, and
// sensorNodeTranscript is what it must do in reply: the firmware's
// specification, written out by hand from the comment in sensornode.c.
var sensorNodeScript = []step{
	{name: "init", do: func(ctx context.Context, in *firmware.Instance) (string, error) { return "", in.Init(ctx) }},
	{name: "reading", temperature: 21.34, humidity: 45.5, do: onTimer},
	{name: "alert reading rounds half away from zero", temperature: 31.25, humidity: 44.49, do: onTimer},
	{name: "negative and missing readings", temperature: -4.25, humidity: math.NaN(), do: onTimer},
	{name: "send refused", temperature: 20, humidity: 50, send: firmware.CodeDisconnected, do: onTimer},
	{name: "setInterval bare number", do: method("setInterval", " 60")},
	{name: "setInterval object", do: method("setInterval", `{"unit":"s","interval":90}`)},
	{name: "setInterval out of range", do: method("setInterval", `{"interval":0}`)},
	{name: "setInterval not an integer", do: method("setInterval", `12.5`)},
	{name: "unknown method", do: method("reboot", `{}`)},
	{name: "desired interval", do: desired(`{"interval":120,"$version":4}`, 4)},
	{name: "desired nested interval is not ours", do: desired(`{"config":{"interval":5},"$version":5}`, 5)},
	{name: "desired sleep", do: desired(`{"sleep":true,"$version":6}`, 6)},
	{name: "reading before sleep", temperature: 19.96, humidity: 60.2, do: onTimer},
	{name: "reading on wake", temperature: 0.04, humidity: 61, do: onWake},
	{name: "c2d", do: c2d("hello", firmware.Property{Name: "kind", Value: "greeting"})},
	{name: "c2d empty", do: c2d("")},
}

var sensorNodeTranscript = [][]string{
	{`report {"firmware":"1.0.0","interval":30,"sleep":false}`, `timer 30s`},
	{`telemetry {"temperature":21.3,"humidity":46,"seq":0} []`, `timer 30s`},
	{`telemetry {"temperature":31.3,"humidity":44,"seq":1} [temperatureAlert=true]`, `timer 30s`},
	{`telemetry {"temperature":-4.3,"humidity":null,"seq":2} []`, `timer 30s`},
	{`telemetry {"temperature":20.0,"humidity":50,"seq":3} []`, `log WARN telemetry not sent`, `timer 30s`},
	{`timer 1m0s`, `report {"interval":60,"sleep":false}`, `-> 200 {"interval":60}`},
	{`timer 1m30s`, `report {"interval":90,"sleep":false}`, `-> 200 {"interval":90}`},
	{`-> 400 {"error":"interval must be 1..86400 seconds"}`},
	{`-> 400 {"error":"interval must be 1..86400 seconds"}`},
	{`-> 404 {"error":"unknown method"}`},
	{`timer 2m0s`, `report {"interval":120,"sleep":false}`},
	{},
	{`report {"interval":120,"sleep":true}`},
	{`telemetry {"temperature":20.0,"humidity":60,"seq":4} []`, `sleep 2m0s`},
	{`telemetry {"temperature":0.0,"humidity":61,"seq":5} []`, `sleep 2m0s`},
	{`report {"c2dCount":1}`, `-> complete`},
	{`report {"c2dCount":2}`, `-> complete`},
}

func runScript(t *testing.T, path string) [][]string {
	t.Helper()
	ctx := context.Background()
	m := compile(t, path, firmware.Options{})
	h := newHost()
	in := instantiate(t, m, "sensor-1", h, firmware.Limits{})
	var out [][]string
	for _, s := range sensorNodeScript {
		h.setSensors(s.temperature, s.humidity)
		h.send = s.send
		result, err := s.do(ctx, in)
		if err != nil {
			t.Fatalf("%s: step %q: %v", path, s.name, err)
		}
		calls := h.take()
		if result != "" {
			calls = append(calls, result)
		}
		out = append(out, calls)
	}
	return out
}

func TestSensorNodeExamples(t *testing.T) {
	transcripts := map[string][][]string{}
	for _, tc := range []struct{ name, path string }{{"c", sensorNodeC}, {"assemblyscript", sensorNodeAS}} {
		t.Run(tc.name, func(t *testing.T) {
			got := runScript(t, tc.path)
			transcripts[tc.name] = got
			for i, s := range sensorNodeScript {
				equalLines(t, s.name, got[i], sensorNodeTranscript[i])
			}
		})
	}
	t.Run("c and assemblyscript agree", func(t *testing.T) {
		c, as := transcripts["c"], transcripts["assemblyscript"]
		if len(c) != len(sensorNodeScript) || len(as) != len(sensorNodeScript) {
			t.Fatalf("a transcript is incomplete: %d and %d steps of %d", len(c), len(as), len(sensorNodeScript))
		}
		for i, s := range sensorNodeScript {
			equalLines(t, s.name, as[i], c[i])
		}
	})
}

func TestSensorNodeHandles(t *testing.T) {
	for _, path := range []string{sensorNodeC, sensorNodeAS} {
		t.Run(path, func(t *testing.T) {
			m := compile(t, path, firmware.Options{})
			want := firmware.Handlers{Timer: true, Wake: true, C2D: true, Method: true, Desired: true}
			if got := m.Handles(); got != want {
				t.Errorf("Handles() = %+v, want %+v", got, want)
			}
		})
	}
}

// TestSensorNodeInstancesAreSeparate checks that two devices running one
// compiled module keep their own state: sequence numbers and intervals.
func TestSensorNodeInstancesAreSeparate(t *testing.T) {
	ctx := context.Background()
	m := compile(t, sensorNodeC, firmware.Options{})
	h1, h2 := newHost(), newHost()
	a := instantiate(t, m, "a", h1, firmware.Limits{})
	b := instantiate(t, m, "b", h2, firmware.Limits{})
	h1.setSensors(20, 50)
	h2.setSensors(20, 50)
	for range 3 {
		if err := a.OnTimer(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.OnMethod(ctx, "setInterval", []byte("5")); err != nil {
		t.Fatal(err)
	}
	h1.take()
	if err := b.OnTimer(ctx); err != nil {
		t.Fatal(err)
	}
	equalLines(t, "device b after device a's three readings", h2.take(),
		[]string{`telemetry {"temperature":20.0,"humidity":50,"seq":0} []`, `timer 30s`})
	if err := a.OnTimer(ctx); err != nil {
		t.Fatal(err)
	}
	equalLines(t, "device a's fourth reading", h1.take(),
		[]string{`telemetry {"temperature":20.0,"humidity":50,"seq":3} []`, `timer 5s`})
}

func TestEmbeddedExamplesAreTheCommittedOnes(t *testing.T) {
	for _, path := range []string{sensorNodeC, sensorNodeAS} {
		t.Run(path, func(t *testing.T) {
			embedded, err := examples.Read(examples.Prefix + strings.TrimPrefix(filepath.ToSlash(path), "examples/"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(embedded, readWasm(t, path)) {
				t.Errorf("the embedded %s differs from the file", path)
			}
		})
	}
}

// Fleets compile firmware side by side (sim compare runs one per protocol):
// Compile must be safe to call at once from several goroutines. (The race in
// wazero's version cache that newRuntime guards against shows only when a
// test binary's build info carries wazero's version, which -race runs of
// cmd/sim showed and this package's do not, so this checks the concurrent
// use, not that race.)
func TestCompileConcurrently(t *testing.T) {
	wasm := readWasm(t, sensorNodeC)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := firmware.Compile(context.Background(), wasm, firmware.Options{})
			if err == nil {
				err = m.Close(context.Background())
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
