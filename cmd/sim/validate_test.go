package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const badDir = "../../scenarios/testdata/"

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // lines, in order, that stdout must hold
		stderr string
	}{
		{"shipped scenarios", []string{"quickstart", "fipy-amqp", "x509-generic-mqtt"}, exitOK,
			[]string{"quickstart: ok", "fipy-amqp: ok", "x509-generic-mqtt: ok"}, ""},
		{"three mistakes, three located errors", []string{badDir + "three-mistakes.bad.yaml"}, exitInvalidScenario, []string{
			badDir + "three-mistakes.bad.yaml:8:5: profiles.sensor: unknown key keepalive — did you mean keep_alive?",
			badDir + `three-mistakes.bad.yaml:11:19: profiles.sensor.behaviour.telemetry.interval: must be a duration such as 90s, 2m, 1h30m or 7d (got "5MB", which is a size)`,
			badDir + `three-mistakes.bad.yaml:15:12: fleet[0].count: must be a whole number (got "ten")`,
			badDir + "three-mistakes.bad.yaml: invalid (3 errors)",
		}, "sim: 1 of 1 scenario files invalid"},
		{"valid and invalid together", []string{"quickstart", badDir + "empty.bad.yaml"}, exitInvalidScenario,
			[]string{"quickstart: ok", badDir + "empty.bad.yaml:1:1: the file is empty; a scenario starts with version: 1"}, "1 of 2"},
		{"warnings do not invalidate", []string{badDir + "plan-small.yaml"}, exitOK, []string{badDir + "plan-small.yaml: ok"}, ""},
		{"missing file", []string{"nope.yaml"}, exitInvalidScenario, []string{"scenario not found: nope.yaml: no such file; the shipped scenarios are amqp-ws, esp32-mqtt-twin, eventhubs-rest, fipy-amqp, https-per-message, quickstart, sensornode-as, sensornode-c, x509-generic-mqtt"}, ""},
		{"firmware that does not keep the ABI", []string{badDir + "firmware-abi.yaml"}, exitInvalidScenario, []string{
			badDir + "firmware-abi.yaml:9:15: profiles.node.firmware: ../../firmware/testdata/broken.wasm cannot run: firmware does not fit catmsim ABI v1:",
			"export catmsim_init is missing; it must be func catmsim_init()",
		}, "1 of 1"},
		{"no arguments", nil, exitUsage, nil, "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSim(t, nil, "", append([]string{"validate"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			rest := r.stdout
			for _, line := range tt.stdout {
				i := strings.Index(rest, line+"\n")
				if i < 0 {
					t.Fatalf("stdout lacks, in order, %q:\n%s", line, r.stdout)
				}
				rest = rest[i+len(line):]
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.stderr)
			}
		})
	}
}

func TestValidatePrintsWarnings(t *testing.T) {
	r := runSim(t, nil, "", "validate", badDir+"fleet.bad.yaml")
	want := badDir + "fleet.bad.yaml:6:10: warning: profiles.spare: defined but no fleet group uses it\n"
	if r.code != exitInvalidScenario || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "invalid (11 errors)") {
		t.Fatalf("exit %d\n%s", r.code, r.stdout)
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		code    int
		stdout  []string
		stderr  string
		devices int // with --json: devices in the plan
	}{
		{"summary", []string{"quickstart"}, nil, exitOK, []string{
			"quickstart: seed 42, 2m, shard 0 of 1: 100 of 100 devices",
			"target: the embedded hub catmsim.azure-devices.net (memory)",
			"sensors  fipy-mqtt  mqtt      typical  100      100       fipy-000 … fipy-099  ramp over 20s",
			"d2c_latency: p(95) < 2s",
		}, "", 0},
		{"json", []string{"quickstart", "--json"}, nil, exitOK, nil, "", 100},
		{"shard flag", []string{"quickstart", "--json", "--shard", "1/4"}, nil, exitOK, nil, "", 25},
		{"shard from a Kubernetes indexed job", []string{"quickstart", "--json"}, []string{"JOB_COMPLETION_INDEX=3", "CATMSIM_SHARDS=8"}, exitOK, nil, "", 13},
		{"shard total from the flag", []string{"quickstart", "--json", "--shard", "/3"}, []string{"JOB_COMPLETION_INDEX=0"}, exitOK, nil, "", 34},
		{"devices", []string{badDir + "plan-small.yaml", "--devices"}, nil, exitOK, []string{
			"2m       outage of 50% of the fleet for 1m: 6 devices, 6 in this shard",
			"INDEX  ID          GROUP    ARRIVAL",
			"5      p99-0       poisson",
		}, "", 0},
		{"bad shard", []string{"quickstart", "--shard", "4/4"}, nil, exitUsage, nil, "from 0 to 3", 0},
		{"index without total", []string{"quickstart"}, []string{"JOB_COMPLETION_INDEX=1"}, exitUsage, nil, "set CATMSIM_SHARDS", 0},
		{"bad duration", []string{"quickstart", "--duration", "5MB"}, nil, exitUsage, nil, "--duration", 0},
		{"invalid scenario", []string{badDir + "three-mistakes.bad.yaml"}, nil, exitInvalidScenario, nil,
			"three-mistakes.bad.yaml is invalid (3 errors); try: sim validate", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSim(t, tt.env, "", append([]string{"plan"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.stderr)
			}
			if tt.devices > 0 {
				var p struct {
					Shard, Shards int
					Devices       []struct{ Index int }
				}
				if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, r.stdout)
				}
				if len(p.Devices) != tt.devices {
					t.Errorf("%d devices, want %d", len(p.Devices), tt.devices)
				}
				for _, d := range p.Devices {
					if d.Index%p.Shards != p.Shard {
						t.Errorf("device %d in shard %d of %d", d.Index, p.Shard, p.Shards)
					}
				}
			}
		})
	}
}

func TestValidateAndPlanHelp(t *testing.T) {
	for _, cmd := range []string{"validate", "plan"} {
		r := runSim(t, nil, "", cmd, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Examples:") || !strings.Contains(r.stdout, "sim "+cmd+" ") {
			t.Errorf("%s --help: exit %d\n%s", cmd, r.code, r.stdout)
		}
	}
}
