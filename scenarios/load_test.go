package scenarios

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/protocols"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/*.err, testdata/*.plan.json, schema.json)")

// report renders what Load says about a file: one line per error, then one
// per warning.
func report(err error, warnings []*Error) string {
	var b strings.Builder
	for _, e := range Errors(err) {
		b.WriteString(e.Error() + "\n")
	}
	for _, w := range warnings {
		b.WriteString("warning: " + w.Error() + "\n")
	}
	return b.String()
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./scenarios -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run with -update if the change is intended)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// Every testdata/*.bad.yaml file is paired with the exact text of what Load
// reports about it in *.bad.yaml.err.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, warnings, err := Load(f)
			if err == nil || s != nil {
				t.Fatalf("Load(%s) accepted the file", f)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("the error does not match ErrInvalid: %v", err)
			}
			es := Errors(err)
			if len(es) == 0 {
				t.Fatalf("no located errors in %v", err)
			}
			for _, e := range es {
				if e.File != f || e.Line < 1 {
					t.Errorf("error not located in %s: %#v", f, e)
				}
			}
			if got := report(err, nil); got != err.Error()+"\n" {
				t.Errorf("the joined error is not one error per line:\n%s", err)
			}
			golden(t, f+".err", []byte(report(err, warnings)))
		})
	}
}

func TestThreeMistakesGiveThreeLocatedErrors(t *testing.T) {
	_, _, err := Load("testdata/three-mistakes.bad.yaml")
	es := Errors(err)
	want := []Error{
		{File: "testdata/three-mistakes.bad.yaml", Line: 8, Column: 5, Path: "profiles.sensor", Msg: "unknown key keepalive — did you mean keep_alive?"},
		{File: "testdata/three-mistakes.bad.yaml", Line: 11, Column: 19, Path: "profiles.sensor.behaviour.telemetry.interval", Msg: `must be a duration such as 90s, 2m, 1h30m or 7d (got "5MB", which is a size)`},
		{File: "testdata/three-mistakes.bad.yaml", Line: 15, Column: 12, Path: "fleet[0].count", Msg: `must be a whole number (got "ten")`},
	}
	if len(es) != len(want) {
		t.Fatalf("%d errors, want 3:\n%v", len(es), err)
	}
	for i := range want {
		if *es[i] != want[i] {
			t.Errorf("error %d:\n got %#v\nwant %#v", i, *es[i], want[i])
		}
	}
	if got := es[2].Error(); got != `testdata/three-mistakes.bad.yaml:15:12: fleet[0].count: must be a whole number (got "ten")` {
		t.Errorf("formatted as %q", got)
	}
}

func TestShippedScenarios(t *testing.T) {
	names := Shipped()
	want := []string{"amqp-ws", "esp32-mqtt-twin", "eventhubs-rest", "fipy-amqp", "https-per-message", "quickstart", "sensornode-as", "sensornode-c", "x509-generic-mqtt"}
	if !slices.Equal(names, want) {
		t.Fatalf("shipped %v, want %v", names, want)
	}
	protos := map[string]protocols.Protocol{
		"amqp-ws": protocols.AMQPWebSocket, "esp32-mqtt-twin": protocols.MQTT, "eventhubs-rest": protocols.EventHubsHTTPS,
		"fipy-amqp": protocols.AMQP, "https-per-message": protocols.HTTPS, "quickstart": protocols.MQTT,
		"x509-generic-mqtt": protocols.GenericMQTT, "sensornode-c": protocols.MQTT, "sensornode-as": protocols.AMQP,
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, warnings, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			if s.Name != name || s.Description == "" {
				t.Errorf("name %q, description %q", s.Name, s.Description)
			}
			text, _ := ShippedFile(name)
			if !strings.HasPrefix(string(text), "# "+name+": ") {
				t.Errorf("the file does not open with a comment naming what it models")
			}
			for _, p := range s.Profiles {
				if p.Protocol != protos[name] {
					t.Errorf("protocol %s, want %s", p.Protocol, protos[name])
				}
			}
			p, err := Compile(s, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Len() != p.FleetSize || p.Len() == 0 {
				t.Errorf("plan has %d of %d devices", p.Len(), p.FleetSize)
			}
		})
	}
	t.Run("quickstart is 100 MQTT devices for 2 minutes on the embedded hub", func(t *testing.T) {
		s, _, err := Load("quickstart.yaml")
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s, PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		prof := p.Profile(p.Device(0).Profile)
		if p.FleetSize != 100 || p.Duration.D() != 2*time.Minute || s.Target.Kind != TargetEmbedded ||
			prof.Protocol != protocols.MQTT || prof.Link.Base != "typical" || prof.Link.Custom {
			t.Errorf("quickstart: %v, target %s, profile %+v", p, s.Target.Kind, prof)
		}
	})
}

func TestLoadNames(t *testing.T) {
	tests := []struct {
		name, arg string
		err       error
		msg       string
	}{
		{"shipped by name", "quickstart", nil, ""},
		{"shipped with extension", "quickstart.yaml", nil, ""},
		{"file path", "testdata/plan-small.yaml", nil, ""},
		{"unknown name lists the shipped ones", "quickstrat", ErrNotFound, "the shipped scenarios are amqp-ws, esp32-mqtt-twin"},
		{"missing path", "testdata/nope.yaml", ErrNotFound, "testdata/nope.yaml: no such file"},
		{"a directory", "testdata", nil, "reading scenario"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(tt.arg)
			switch {
			case tt.msg == "" && err != nil:
				t.Fatal(err)
			case tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)):
				t.Fatalf("error %v, want it to contain %q", err, tt.msg)
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Fatalf("error %v does not match %v", err, tt.err)
			case err != nil && errors.Is(err, ErrInvalid):
				t.Fatalf("a missing file is not an invalid scenario: %v", err)
			}
		})
	}
}

func TestParseWholeFileProblems(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"too large", "version: 1\n" + strings.Repeat("#", MaxFileSize), "x.yaml: the file is 1048587 bytes; a scenario is at most 1048576"},
		{"two documents", "version: 1\n---\nversion: 1\n", "x.yaml:2:1: the file holds more than one YAML document (---); a scenario is one"},
		{"a list", "- version: 1\n", "x.yaml:1:1: a scenario is a mapping that starts with version: 1 (got a list)"},
		{"a scalar", "hello\n", `x.yaml:1:1: a scenario is a mapping that starts with version: 1 (got "hello")`},
		{"syntax error on line 1", "version: [1\n", "x.yaml:1: did not find expected ',' or ']'"},
		{"alias cycle", "version: 1\nduration: 1m\nprofiles: {a: {protocol: mqtt, behaviour: {reported_on_connect: &r {x: *r}}}}\nfleet: [{name: a, profile: a, count: 1}]\n", "beyond 64 levels or 200000 values"},
		{"billion laughs", laughs(), "beyond 64 levels or 200000 values"},
		{"merge bomb", mergeBomb(), "beyond 64 levels or 200000 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("x.yaml", []byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			for _, e := range Errors(err) {
				if tt.name != "too large" && e.Line < 1 {
					t.Errorf("not located: %#v", e)
				}
			}
		})
	}
}

// laughs is an alias bomb: each level names the previous one ten times.
func laughs() string {
	var b strings.Builder
	b.WriteString("x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("x-a" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	b.WriteString("version: 1\nduration: 1m\nprofiles: {a: {protocol: mqtt, behaviour: {reported_on_connect: {x: *a8}}}}\nfleet: [{name: a, profile: a, count: 1}]\n")
	return b.String()
}

// mergeBomb merges one big mapping through many aliases.
func mergeBomb() string {
	var b strings.Builder
	b.WriteString("x-a: &a {")
	for i := range 2000 {
		b.WriteString("k" + strconv.Itoa(i) + ": 1, ")
	}
	b.WriteString("}\nversion: 1\nduration: 1m\nprofiles: {p: {protocol: mqtt, behaviour: {reported_on_connect: {<<: [")
	b.WriteString(strings.Repeat("*a, ", 200))
	b.WriteString("]}}}}\nfleet: [{name: g, profile: p, count: 1}]\n")
	return b.String()
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestDefaults(t *testing.T) {
	s, warnings, err := Parse("min.yaml", []byte(`
version: 1
duration: 90s
profiles:
  m: {protocol: mqtt}
  a: {protocol: amqp}
  h: {protocol: https, behaviour: {telemetry: {interval: 1m}}}
  e: {protocol: eventhubs-https, event_hub: hub}
fleet:
  - {name: m, profile: m, count: 2}
  - {name: a, profile: a, count: 1}
  - {name: h, profile: h, count: 1}
  - {name: e, profile: e, count: 1}
`))
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("name", s.Name, "min")
	check("seed", s.Seed, uint64(1))
	check("duration", s.Duration.D(), 90*time.Second)
	check("target kind", s.Target.Kind, TargetEmbedded)
	check("host name", s.Target.HostName, DefaultHostName)
	check("transport", s.Target.Transport, "memory")
	m, a, h, e := s.Profiles["m"], s.Profiles["a"], s.Profiles["h"], s.Profiles["e"]
	check("auth", m.Auth, AuthSAS)
	check("token ttl", m.TokenTTL.D(), time.Hour)
	check("renew at", m.RenewAt, 0.8)
	check("link", m.Link.Base, "typical")
	check("mqtt keep-alive", m.KeepAlive.D(), 240*time.Second)
	check("mqtt qos", m.QoS, 1)
	check("amqp keep-alive", a.KeepAlive.D(), 240*time.Second)
	check("https keep-alive", h.KeepAlive.D(), time.Duration(0))
	check("https poll", h.HTTPS.C2DPoll.D(), 25*time.Minute)
	check("event hubs api", e.APIVersion, "2014-01")
	check("tls", m.TLS, TLS{Version: "1.2", MaxVersion: "1.2"})
	check("no behaviour", m.Behaviour == nil, true)
	tel := h.Behaviour.Telemetry
	check("batch", tel.Batch, 1)
	check("payload kind", tel.Payload.Kind, PayloadJSON)
	check("payload fields", len(tel.Payload.Fields), 1)
	check("payload seq", tel.Payload.Fields[0].Gen.Kind, GenSequence)
	check("on_c2d", h.Behaviour.OnC2D, "complete")
	check("reconnect", h.Behaviour.Reconnect.Max.D(), 5*time.Minute)
	g := s.Fleet[0]
	check("id pattern", g.IDPattern, "{group}-{index:05}")
	check("arrival", g.Arrival.Kind, ArrivalAllAtOnce)
	check("arrival at", g.Arrival.At.D(), time.Duration(0))
}

// A kind chosen in the file starts from that kind's defaults, not from the
// default kind's.
func TestKindDefaultsDoNotLeak(t *testing.T) {
	s, _, err := Parse("k.yaml", []byte(`
version: 1
duration: 1m
target: {kind: iothub, connection_string_env: CS}
profiles:
  p: {protocol: amqp, behaviour: {telemetry: {interval: 1m, payload: {kind: bytes, size: 10B}}}}
fleet: [{name: g, profile: p, count: 1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Target.HostName != "" || s.Target.Transport != "" || !s.Target.Provision || s.Target.Units != 1 {
		t.Errorf("iothub target %+v", s.Target)
	}
	if pl := s.Profiles["p"].Behaviour.Telemetry.Payload; pl.Fields != nil || pl.Size != 10 {
		t.Errorf("bytes payload %+v", pl)
	}
}

func TestIsSetTellsUnsetFromZero(t *testing.T) {
	s, _, err := Parse("z.yaml", []byte(`
version: 1
duration: 1m
profiles:
  zero: {protocol: mqtt, qos: 0, keep_alive: 0s}
  unset: {protocol: mqtt}
fleet: [{name: a, profile: zero, count: 1}, {name: b, profile: unset, count: 1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		set  bool
	}{
		{"profiles.zero.qos", true}, {"profiles.zero.keep_alive", true},
		{"profiles.unset.qos", false}, {"profiles.unset.keep_alive", false},
		{"fleet[0].count", true}, {"fleet[0].id_pattern", false},
	}
	for _, tt := range tests {
		if got := s.IsSet(tt.path); got != tt.set {
			t.Errorf("IsSet(%s) = %v", tt.path, got)
		}
	}
	if s.Profiles["zero"].QoS != 0 || s.Profiles["unset"].QoS != 1 || s.Profiles["zero"].KeepAlive != 0 {
		t.Errorf("values: zero %+v unset %+v", s.Profiles["zero"], s.Profiles["unset"])
	}
}

// The tiers a target accepts are the ones the emulator knows.
func TestTiersMatchTheHub(t *testing.T) {
	for name, canonical := range tiers {
		got, err := hub.ParseTier(name)
		if err != nil || string(got) != canonical {
			t.Errorf("hub.ParseTier(%q) = %q, %v; scenarios says %q", name, got, err, canonical)
		}
	}
	for _, bad := range []string{"s4", "basic", ""} {
		if _, err := hub.ParseTier(bad); err == nil {
			t.Errorf("hub accepts tier %q", bad)
		}
		if _, ok := tiers[bad]; ok {
			t.Errorf("scenarios accepts tier %q", bad)
		}
	}
}

func TestLinkOverrides(t *testing.T) {
	s, _, err := Parse("l.yaml", []byte(`
version: 1
duration: 1m
profiles:
  p: {protocol: mqtt, link: {base: urban, rtt: 2s, uplink: 2kbps, loss: 3%, mtu: 1280, ipv6: true, current: {modem_tx: 99.5}}}
fleet: [{name: g, profile: p, count: 1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	l := s.Profiles["p"].Link
	p := l.Profile
	if !l.Custom || l.Base != "urban" || p.RTT != 2*time.Second || p.UplinkBPS != 2000 || p.Loss != 0.03 ||
		p.MTU != 1280 || !p.IPv6 || p.Current.ModemTX != 99.5 {
		t.Fatalf("link %+v", l)
	}
	base := builtinLink("typical").Profile
	if p.DownlinkBPS != base.DownlinkBPS || p.RTTJitter != base.RTTJitter || p.Current.ModemPSM != base.Current.ModemPSM {
		t.Errorf("fields not overridden changed: %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
	// The link reads back from its JSON form as the same profile.
	round, err := l.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := Parse("l2.yaml", []byte("version: 1\nduration: 1m\nprofiles: {p: {protocol: mqtt, link: "+string(round)+"}}\nfleet: [{name: g, profile: p, count: 1}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Profiles["p"].Link.Profile; got != p {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, p)
	}
}

func TestLinkBasesMatchNetwork(t *testing.T) {
	if got, want := metaOf(reflect.TypeFor[linkSpec]()).byName["base"].enum, linkBases(); !slices.Equal(got, want) {
		t.Errorf("link base enum %v, network has %v", got, want)
	}
}

func TestFirmwareLimits(t *testing.T) {
	const head = "version: 1\nduration: 1m\nprofiles:\n  p:\n    protocol: mqtt\n"
	const tail = "fleet:\n  - {name: g, profile: p, count: 1}\n"
	tests := []struct {
		name, profile, want string
	}{
		{"limits without firmware", "    firmware_limits: {memory: 1MB}\n",
			"x.yaml:6:22: profiles.p.firmware_limits: bounds a firmware instance, but the profile names no firmware"},
		{"memory not in whole pages", "    firmware: testdata/noop.wasm\n    firmware_limits: {memory: 100KB}\n",
			"x.yaml:7:31: profiles.p.firmware_limits.memory: must be a whole number of 64 KiB wasm pages, such as 512KB or 1MB (got 100KB)"},
		{"call timeout too long", "    firmware: testdata/noop.wasm\n    firmware_limits: {call_timeout: 5m}\n",
			"profiles.p.firmware_limits.call_timeout: must be at most 60s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("x.yaml", []byte(head+tt.profile+tail))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	s, _, err := Parse("x.yaml", []byte(head+"    firmware: testdata/noop.wasm\n    firmware_limits: {memory: 2MB}\n"+tail))
	if err != nil {
		t.Fatal(err)
	}
	if l := s.Profiles["p"].FirmwareLimits; l.Memory != 2<<20 || l.CallTimeout.D() != time.Second {
		t.Fatalf("limits %+v: memory as set, call_timeout its default", l)
	}
}
