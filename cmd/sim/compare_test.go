package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/reports"
)

func TestCompare(t *testing.T) {
	out := t.TempDir()
	// The breached threshold must not change the exit code: a comparison is
	// not a gate.
	r := runSim(t, nil, "", "compare", writeScenario(t, `d2c_latency: ["max < 1ms"]`), "--protocols", "mqtt,https", "-o", out, "-q")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, proto := range []string{"mqtt", "https"} {
		rep, err := reports.ReadFile(filepath.Join(out, proto, reports.FileJSON))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Summary.Protocols) != 1 || rep.Summary.Protocols[0].Protocol != proto {
			t.Fatalf("%s report covers %+v", proto, rep.Summary.Protocols)
		}
		if len(rep.Devices) != 3 {
			t.Errorf("%s report has %d devices", proto, len(rep.Devices))
		}
		// The table has one row per protocol.
		if !strings.Contains(r.stdout, "\n"+proto+" ") {
			t.Errorf("no %s row in the table:\n%s", proto, r.stdout)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "compare.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "<svg") {
		t.Error("compare.html has no chart")
	}
}

func TestCompareRefuses(t *testing.T) {
	tests := []struct {
		name, protocols, want string
	}{
		{"one protocol", "mqtt", "at least two"},
		{"unknown protocol", "mqtt,coap", "coap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSim(t, nil, "", "compare", writeScenario(t, ""), "--protocols", tt.protocols, "-o", t.TempDir(), "-q")
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
			}
		})
	}
}
