package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/fleet"
	simmetrics "github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/protocols"
)

func testConfig(protocol string, devices int) config {
	return config{Devices: devices, Protocol: protocol, Duration: 90 * time.Second, Ramp: 30 * time.Second,
		Interval: 30 * time.Second, Link: "fast", Transport: "memory", Seed: 1, Settle: 5 * time.Second, Every: 250 * time.Millisecond}
}

func TestScenarioCompiles(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol string
		ramp     time.Duration
		link     string
	}{
		{"mqtt ramp", "mqtt", 30 * time.Second, "fast"},
		{"amqp ramp", "amqp", 20 * time.Second, "typical"},
		{"https all at once", "https", 0, "poor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(tc.protocol, 500)
			c.Ramp, c.Link = tc.ramp, tc.link
			p, err := c.plan()
			if err != nil {
				t.Fatalf("%v\n%s", err, c.scenarioYAML())
			}
			if p.Len() != 500 || p.Duration.D() != c.Duration {
				t.Fatalf("plan of %d devices for %s, want 500 for %s", p.Len(), p.Duration, c.Duration)
			}
			if len(p.Profiles) != 1 || p.Profiles[0].Protocol != protocols.Protocol(tc.protocol) {
				t.Fatalf("profiles %+v, want one %s profile", p.Profiles, tc.protocol)
			}
			var last time.Duration
			for d := range p.Devices() {
				last = max(last, d.Arrival.D())
			}
			// An even ramp puts the last arrival one gap before its end.
			if last > tc.ramp || last < tc.ramp-tc.ramp/100 {
				t.Errorf("last arrival at %s, want just before %s", last, tc.ramp)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*config)
		want   string // in the error; "" for none
	}{
		{"defaults", func(*config) {}, ""},
		{"unknown protocol", func(c *config) { c.Protocol = "coap" }, "-protocol"},
		{"no devices", func(c *config) { c.Devices = 0 }, "-devices"},
		{"ramp past the run", func(c *config) { c.Ramp = c.Duration }, "-ramp"},
		{"telemetry too often", func(c *config) { c.Interval = time.Millisecond }, "-interval"},
		{"unknown transport", func(c *config) { c.Transport = "udp" }, "-transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("mqtt", 10)
			tc.change(&c)
			err := c.check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func progress(elapsed time.Duration, connected int) fleet.Progress {
	var p fleet.Progress
	p.Elapsed = elapsed
	p.Sample.States[simmetrics.StateConnected] = connected
	return p
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestRecorder(t *testing.T) {
	t.Run("steady state settles after the last first connect", func(t *testing.T) {
		r := newRecorder(100, 60*time.Second, 5*time.Second)
		steps := []struct {
			elapsed   time.Duration
			connected int
			due       bool
		}{
			{0, 0, false},
			{time.Second, 10, false},
			{2 * time.Second, 40, false},
			{3 * time.Second, 100, false}, // all connected: due at 8s
			{4 * time.Second, 100, false},
			{7900 * time.Millisecond, 99, false},
			{8 * time.Second, 100, true},
		}
		for _, s := range steps {
			r.observe(progress(s.elapsed, s.connected))
			if got := isClosed(r.due); got != s.due {
				t.Fatalf("at %s: due %v, want %v", s.elapsed, got, s.due)
			}
		}
		f := r.ramp()
		if f.connected != 100 || f.took != 3*time.Second {
			t.Errorf("ramp %+v, want 100 connected after 3s", f)
		}
		if want := 100 / 3.0; f.rate < want-0.01 || f.rate > want+0.01 {
			t.Errorf("rate %.2f/s, want %.2f/s", f.rate, want)
		}
		// The fastest second is from 2s to 3s: 60 connects.
		if f.peak != 60 {
			t.Errorf("fastest second %.1f/s, want 60/s", f.peak)
		}
	})
	t.Run("a fleet that never connects fully is read late in the run", func(t *testing.T) {
		r := newRecorder(100, 10*time.Second, 5*time.Second)
		for e := time.Duration(0); e < 9*time.Second; e += time.Second {
			r.observe(progress(e, 50))
			if isClosed(r.due) {
				t.Fatalf("due at %s, before %v of the run", e, lateFraction)
			}
		}
		r.observe(progress(9*time.Second, 50))
		if !isClosed(r.due) {
			t.Fatal("not due at 90% of the run")
		}
		if s := r.last(); s.connected != 50 {
			t.Fatalf("last sample %+v", s)
		}
	})
}

// TestMeasureSmallFleet runs a real fleet, small and short, through the whole
// measurement.
func TestMeasureSmallFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fleet for a few seconds")
	}
	c := testConfig("mqtt", 20)
	c.Duration, c.Ramp, c.Interval, c.Settle, c.Every = 5*time.Second, time.Second, time.Second, time.Second, 100*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := measure(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if f.Devices != 20 || f.Connected != 20 || !f.Steady || f.ConnectedSteady != 20 {
		t.Fatalf("%d devices, %d connected at most, steady %v with %d", f.Devices, f.Connected, f.Steady, f.ConnectedSteady)
	}
	// The in-memory transport needs no file per device.
	if f.FilesPeak > f.FilesBefore+5 {
		t.Errorf("open files rose from %d to %d", f.FilesBefore, f.FilesPeak)
	}
	if f.HeapSteady <= f.HeapBefore || f.GoroutinesSteady <= f.GoroutinesBefore || f.RSSPeak < f.RSSSteady {
		t.Errorf("heap %d → %d, goroutines %d → %d, rss steady %d peak %d", f.HeapBefore, f.HeapSteady, f.GoroutinesBefore, f.GoroutinesSteady, f.RSSSteady, f.RSSPeak)
	}
	if f.Acked < 20 || f.Lost != 0 || f.Failed != 0 || f.Stored < f.Acked {
		t.Errorf("messages attempted %d acked %d stored %d lost %d failed %d", f.Attempted, f.Acked, f.Stored, f.Lost, f.Failed)
	}
	if f.ConnectsPerS <= 0 || f.ConnectP50 == "" {
		t.Errorf("connect rate %.1f/s, p50 %q", f.ConnectsPerS, f.ConnectP50)
	}
	var out bytes.Buffer
	writeTable(&out, []*figures{f}, true)
	if lines := strings.Count(out.String(), "\n"); lines < 20 || !strings.HasPrefix(out.String(), "| figure | mqtt |") {
		t.Errorf("markdown table of %d lines:\n%s", lines, out.String())
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back figures
	if err := json.Unmarshal(b, &back); err != nil || back.HeapPerDevice() != f.HeapPerDevice() {
		t.Errorf("figures do not survive JSON, as a child process hands them over: %v", err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown protocol", []string{"-protocol", "coap"}, "-protocol"},
		{"unknown format", []string{"-format", "xml"}, "-format"},
		{"profiles of many protocols", []string{"-protocol", "mqtt,amqp", "-cpuprofile", "x"}, "one -protocol"},
		{"a stray argument", []string{"20000"}, "no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errs); code != 2 {
				t.Fatalf("exit %d, want 2; stderr %s", code, errs.String())
			}
			if !strings.Contains(errs.String(), tc.want) {
				t.Fatalf("stderr %q does not mention %s", errs.String(), tc.want)
			}
		})
	}
}

// benchChild names the protocol a child process of BenchmarkFleetScale
// measures.
const benchChild = "FLEETSCALE_BENCH_PROTOCOL"

// BenchmarkFleetScale runs 1,000 devices of each protocol against the
// embedded hub and reports what one connected device costs. Each protocol
// runs in a child process of the test binary, because resident memory and
// its peak are per process: a second fleet in the same process would be
// measured against the first one's leftovers. It is slow (about 20 s a
// protocol) and meant for one iteration:
//
//	go test ./bench/fleetscale -run '^$' -bench FleetScale -benchtime 1x
//
// The 20,000-device figures come from the command itself (see bench/README.md).
func BenchmarkFleetScale(b *testing.B) {
	for _, protocol := range []string{"mqtt", "amqp", "https"} {
		b.Run(protocol, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), benchChild+"="+protocol)
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("measuring %s in a child process: %v", protocol, err)
				}
				_, line, ok := bytes.Cut(out, []byte(figuresMark))
				if !ok {
					b.Fatalf("the child printed no figures:\n%s", out)
				}
				line, _, _ = bytes.Cut(line, []byte("\n"))
				var f figures
				if err := json.Unmarshal(line, &f); err != nil {
					b.Fatal(err)
				}
				if !f.Steady || f.Lost != 0 {
					b.Fatalf("%d of %d connected at the steady state, %d messages lost, errors %v", f.ConnectedSteady, f.Devices, f.Lost, f.Errors)
				}
				b.ReportMetric(f.HeapPerDevice(), "heap-B/device")
				b.ReportMetric(f.RSSPerDevice(), "rss-B/device")
				b.ReportMetric(f.PeakRSSPerDevice(), "peak-rss-B/device")
				b.ReportMetric(f.GoroutinesPerDevice(), "goroutines/device")
				b.ReportMetric(f.ConnectsPerS, "connects/s")
			}
		})
	}
}

// figuresMark starts the line on which a child hands its figures over.
const figuresMark = "fleetscale-figures: "

// TestBenchChild is BenchmarkFleetScale's child process; run on its own it
// does nothing.
func TestBenchChild(t *testing.T) {
	protocol := os.Getenv(benchChild)
	if protocol == "" {
		t.Skip("runs only as a child of BenchmarkFleetScale")
	}
	c := testConfig(protocol, 1000)
	c.Duration, c.Ramp, c.Interval, c.Settle = 20*time.Second, 5*time.Second, 10*time.Second, 3*time.Second
	f, err := measure(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\n%s%s\n", figuresMark, b)
}
