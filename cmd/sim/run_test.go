package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/reports"
)

// smallScenario is three devices on a fast link, so a CLI test runs in
// seconds; threshold is substituted per test.
const smallScenario = `
version: 1
name: small
seed: 3
duration: 3s
target: {kind: embedded}
profiles:
  p:
    protocol: mqtt
    link: {base: good, rtt: 2ms, rtt_jitter: 0s, loss: 0%, attach_time: 0s, rrc_setup: 0s, drx_cycle: 10ms}
    data_plan: 5MB/month
    behaviour:
      telemetry: {interval: 1s, payload: {kind: json, fields: {seq: sequence}}}
fleet:
  - {name: g, profile: p, count: 3}
thresholds:
  d2c_failure_rate: ["rate < 1%"]
  THRESHOLD
`

func writeScenario(t *testing.T, threshold string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "small.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(smallScenario, "THRESHOLD", threshold, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunWritesTheReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report")
	r := runSim(t, nil, "", "run", writeScenario(t, ""), "-o", out, "--progress-every", "1s")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{reports.FileJSON, reports.FileMarkdown, reports.FileCSV, reports.FileJUnit, reports.FileHTML} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("report file missing: %v", err)
		}
	}
	rep, err := reports.ReadFile(filepath.Join(out, reports.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Devices) != 3 || rep.Meta.Scenario != "small" {
		t.Fatalf("report of %d devices for %q", len(rep.Devices), rep.Meta.Scenario)
	}
	for _, d := range rep.Devices {
		if d.Counts.Get(0) == 0 { // d2c_sent
			t.Errorf("device %s sent nothing", d.ID)
		}
	}
	if !strings.Contains(r.stdout, "delivery:") || !strings.Contains(r.stdout, " 0 lost") {
		t.Errorf("no delivery line with 0 lost:\n%s", r.stdout)
	}
	// Plain progress lines (not a terminal), one per interval.
	if n := strings.Count(r.stderr, "elapsed"); n < 2 {
		t.Errorf("%d progress lines:\n%s", n, r.stderr)
	}
}

func TestRunExitCodes(t *testing.T) {
	t.Run("breached threshold exits 99", func(t *testing.T) {
		r := runSim(t, nil, "", "run", writeScenario(t, `d2c_latency: ["max < 1ms"]`), "-o", t.TempDir(), "-q")
		if r.code != exitThresholds || !strings.Contains(r.stderr, "d2c_latency") {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
	})
	t.Run("invalid scenario exits 104", func(t *testing.T) {
		r := runSim(t, nil, "", "run", writeScenario(t, `d2c_latncy: ["max < 1ms"]`), "-q")
		if r.code != exitInvalidScenario || !strings.Contains(r.stderr, "small.yaml:") {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
	})
	t.Run("interrupted run exits 105 and still writes its report", func(t *testing.T) {
		out := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stderr := newSignalWriter("connected")
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"run", writeScenario(t, ""), "-o", out, "--duration", "1m", "--progress-every", "200ms"}, nil, strings.NewReader(""), &syncWriter{w: io.Discard}, stderr)
		}()
		// Interrupt once the fleet reports connected devices.
		select {
		case <-stderr.seen:
		case code := <-done:
			t.Fatalf("ended early with %d: %s", code, stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatal("no progress line showed connected devices")
		}
		cancel()
		if code := <-done; code != exitAborted {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(out, reports.FileJSON)); err != nil {
			t.Fatal(err)
		}
	})
}
