package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/reports"
)

// writeReports writes the reports of a four-device fleet run in shards, each
// into its own directory, and returns the directories. Device i moves
// scale × (i+1) KB of IP bytes in the hour the run measures.
func writeReports(t *testing.T, shards int, scale float64, thresholds ...[2]string) []string {
	t.Helper()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var ths reports.Thresholds
	for _, kv := range thresholds {
		th, err := metricdef.Parse(kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		ths = append(ths, th)
	}
	base := t.TempDir()
	var dirs []string
	for shard := range shards {
		run := metrics.NewRun(func() time.Time { return start })
		for i := 0; i < 4; i++ {
			if i%shards != shard {
				continue
			}
			l := network.NewLedger()
			l.Add(network.LayerIP, network.Up, network.ClassTelemetry, int(scale*float64(i+1)*1024))
			d := run.Device(metrics.DeviceInfo{Index: i, ID: "dev-" + string(rune('a'+i)), Group: "field", Profile: "fipy", Protocol: "mqtt"}, l, nil)
			d.Add(metrics.D2CSent, 10)
			d.Observe(metrics.LatencyD2C, time.Duration(100*(i+1))*time.Millisecond)
		}
		r, err := reports.Build(reports.Input{Run: run, Meta: reports.Meta{
			RunID: "run-1", Scenario: "cli", Seed: 1, Shard: shard, Shards: shards, Started: start, Duration: time.Hour,
			Target: "embedded", Thresholds: ths,
			Profiles: []reports.ProfileMeta{{Name: "fipy", Protocol: "mqtt", DataPlan: 5 << 20, Billing: reports.Billing{Increment: 1024, Per: reports.PerSession}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(base, "shard-"+string(rune('0'+shard)))
		if err := reports.WriteDir(dir, r); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

func TestReportMerge(t *testing.T) {
	dirs := writeReports(t, 3, 1)
	out := filepath.Join(t.TempDir(), "merged")
	args := []string{"report", "merge", filepath.Join(dirs[0], "report.json"), dirs[1], dirs[2], "-o", out}
	r := runSim(t, nil, "", args...)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "merged 3 of 3 shards of cli (seed 1): 4 devices") {
		t.Fatalf("stdout %q", r.stdout)
	}
	for _, f := range []string{reports.FileJSON, reports.FileMarkdown, reports.FileCSV, reports.FileJUnit, reports.FileHTML} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("merged report lacks %s: %v", f, err)
		}
	}
	merged, err := reports.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Summary.Devices != 4 || !merged.Meta.Complete() || merged.Summary.Totals.Counts.Get(metrics.D2CSent) != 40 {
		t.Fatalf("merged report: %d devices, complete %v", merged.Summary.Devices, merged.Meta.Complete())
	}
}

func TestReportMergeBreachExits99(t *testing.T) {
	// Devices move 1–4 KB in an hour: 24–96 KB a day, so the largest breaches.
	dirs := writeReports(t, 2, 1, [2]string{"ip_bytes_per_device_day", "max < 90KB"}, [2]string{"d2c_messages", "count == 40"})
	r := runSim(t, nil, "", "report", "merge", dirs[0], dirs[1], "-o", filepath.Join(t.TempDir(), "m"))
	if r.code != exitThresholds {
		t.Fatalf("exit %d, want %d: %s", r.code, exitThresholds, r.stderr)
	}
	want := "sim: 1 of 2 thresholds breached: ip_bytes_per_device_day max < 90KB (observed 96KB)\n"
	if r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
}

func TestReportMergeRefuses(t *testing.T) {
	dirs := writeReports(t, 3, 1)
	other := writeReports(t, 2, 1)
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"a shard missing", []string{dirs[0], dirs[2], "-o", t.TempDir()}, exitFailure, "hold 2 of the run's 3 shards (missing 1); give every shard's report, or pass --allow-partial"},
		{"a shard twice", []string{dirs[0], dirs[0], dirs[1], "-o", t.TempDir()}, exitFailure, "both hold shard 0 of 3"},
		{"shards of another split", []string{dirs[0], other[1], "-o", t.TempDir()}, exitFailure, "one of 2 shards, not 3"},
		{"not a report", []string{"report_test.go", "-o", t.TempDir()}, exitFailure, "not a report.json"},
		{"no such file", []string{filepath.Join(t.TempDir(), "nope.json")}, exitFailure, "no such file"},
		{"over an input", []string{dirs[0], dirs[1], dirs[2], "-o", dirs[1]}, exitUsage, "holds the shard report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSim(t, nil, "", append([]string{"report", "merge"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.err) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.err)
			}
		})
	}
	r := runSim(t, nil, "", "report", "merge", dirs[0], dirs[2], "--allow-partial", "-o", filepath.Join(t.TempDir(), "p"))
	if r.code != exitOK || !strings.Contains(r.stdout, "partial: shards 1 are missing") {
		t.Fatalf("--allow-partial: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestReportDiff(t *testing.T) {
	base := writeReports(t, 1, 1)[0]
	grown := writeReports(t, 1, 1.5)[0]
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"same run", []string{base, base}, exitOK, "field      mqtt        ip  60KB  60KB       0", ""},
		{"grown, no gate", []string{base, grown}, exitOK, "+30KB (+50.0%)", ""},
		{"grown under the gate", []string{base, grown, "--fail-on-increase", "50"}, exitOK, "no byte figure grew by more than 50%", ""},
		{"grown over the gate", []string{base, grown, "--fail-on-increase", "10"}, exitThresholds, "Report diff: cli", "1 byte figure grew by more than 10%: field/mqtt ip +50.0%"},
		{"shrunk with a gate", []string{grown, base, "--fail-on-increase", "0"}, exitOK, "-30KB (-33.3%)", ""},
		{"negative gate", []string{base, grown, "--fail-on-increase", "-1"}, exitUsage, "", "--fail-on-increase is a percentage of 0 or more"},
		{"missing file", []string{base, filepath.Join(base, "nope")}, exitFailure, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSim(t, nil, "", append([]string{"report", "diff"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout %s\nstderr %s", r.code, tt.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestReportHelp(t *testing.T) {
	for _, args := range [][]string{{"report", "merge", "--help"}, {"report", "diff", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runSim(t, nil, "", args...)
			if r.code != 0 || !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "99") {
				t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
			}
		})
	}
}
