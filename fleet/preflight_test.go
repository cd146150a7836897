package fleet

import (
	"errors"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/scenarios"
)

func TestPreflight(t *testing.T) {
	machine := Limits{OpenFiles: 20000, OpenFilesHard: 20000, EphemeralPorts: 28232, MemAvailable: 24 << 30}
	tests := []struct {
		name  string
		needs Needs
		says  []string
	}{
		{"20,000 devices in memory fit", Estimate(20000, 0, 150<<10, false), nil},
		{"20,000 devices over loopback to the embedded hub need 40,064 files", Estimate(20000, 2, 150<<10, true), []string{"40064 open files", "hard limit is 20000", "target.transport: memory"}},
		{"30,000 kernel sockets exceed the port range", Estimate(30000, 0, 1<<10, true), []string{"ip_local_port_range offers 28232"}},
		{"too much memory", Estimate(1000, 0, 30<<20, false), []string{"--shard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.needs, machine)
			if tt.says == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *PreflightError
			if !errors.As(err, &pe) {
				t.Fatalf("want a preflight error, got %v", err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
	if err := Check(Estimate(1e6, 2, 1<<20, true), Limits{}); err != nil {
		t.Fatalf("unknown limits are not checked: %v", err)
	}
}

func TestReadLimitsOnThisMachine(t *testing.T) {
	l := ReadLimits()
	if l.OpenFiles == 0 {
		t.Fatal("could not read RLIMIT_NOFILE")
	}
}

// The preflight sizes memory by each device's protocol and firmware.
func TestEstimateByProtocolAndFirmware(t *testing.T) {
	p := plan(t, `
version: 1
duration: 1m
profiles:
  a: {protocol: amqp}
  m: {protocol: mqtt, firmware: example:c/sensornode.wasm}
fleet:
  - {name: ga, profile: a, count: 10}
  - {name: gm, profile: m, count: 30}
`, scenarios.PlanOptions{})
	n := estimate(p)
	want := uint64(10*perDeviceMemory[protocols.AMQP] + 30*(perDeviceMemory[protocols.MQTT]+firmwareMemory))
	if n.Devices != 40 || n.Memory != want || n.OpenFiles != baseFiles {
		t.Fatalf("estimate %+v, want 40 devices, %d bytes, %d files (in memory)", n, want, baseFiles)
	}
}
