package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/scenarios"
)

// TestFirmwareAgainstTheEmbeddedHub runs the host ABI end to end: devices
// running testdata/ticker.wasm over AMQP and MQTT send, report, sleep, wake
// and answer the cloud through real protocol clients, and the hub's store and
// twins prove each effect (the AMQP one settles C2D both ways: MQTT can only
// complete); a device running testdata/trap.wasm traps and fails alone.
func TestFirmwareAgainstTheEmbeddedHub(t *testing.T) {
	p := plan(t, `
version: 1
name: firmware
seed: 5
duration: 5s
target: {kind: embedded}
profiles:
  ticker-amqp:
    protocol: amqp
    link: `+fastLink+`
    firmware: testdata/ticker.wasm
  ticker-mqtt:
    protocol: mqtt
    link: `+fastLink+`
    firmware: testdata/ticker.wasm
  trap:
    protocol: mqtt
    link: `+fastLink+`
    firmware: testdata/trap.wasm
fleet:
  - {name: tick, profile: ticker-amqp, count: 1, id_pattern: "tick-{index}"}
  - {name: tick-mqtt, profile: ticker-mqtt, count: 1, id_pattern: "tick-mqtt-{index}"}
  - {name: bad, profile: trap, count: 1, id_pattern: "bad-{index}"}
# Rare drivers, so that the devices subscribe; the test itself sends.
cloud:
  c2d: {rate: 1/24h, to: all}
  methods: {rate: 1/24h, name: ping, to: all}
  desired: {rate: 1/24h, patch: {x: 1}, to: all}
`, scenarios.PlanOptions{})
	dev := iothub.Identity{DeviceID: "tick-0"}
	checked := make(chan error, 1)
	var srv *hub.Server
	opts := Options{Target: TargetOptions{HubConfig: func(c *hub.ServerConfig) { c.Hub.KeepBodies = true }, Hub: func(s *hub.Server) {
		srv = s
		events, stop := s.Hub.Subscribe(1024)
		go func() {
			defer stop()
			checked <- driveFirmware(s.Hub, dev, events)
		}()
	}}}
	res, err := Run(context.Background(), p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-checked; err != nil {
		t.Fatal(err)
	}

	// Every reading the firmware sent is stored, in the firmware's order, with
	// its property, and the sleep it asked for came between the third and the
	// fourth tick.
	for _, id := range []string{"tick-0", "tick-mqtt-0"} {
		msgs := srv.Hub.Store().For(iothub.Identity{DeviceID: id})
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, string(m.Message.Body))
			if strings.HasPrefix(string(m.Message.Body), `{"tick"`) {
				if v, _ := m.Message.Get("kind"); v != "tick" || m.Message.ContentType != "application/json" {
					t.Errorf("%s: %s stored with kind=%q, content type %q", id, m.Message.Body, v, m.Message.ContentType)
				}
			}
		}
		want := []string{`{"tick":1}`, `{"tick":2}`, `{"tick":3}`, `{"woke":1}`, `{"tick":4}`}
		if len(bodies) < len(want) || strings.Join(bodies[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("%s: stored %v, want it to start %v", id, bodies, want)
		}
	}
	if d := res.Delivery; !d.Checked || d.Lost != 0 {
		t.Errorf("delivery %+v", d)
	}
	// A failed instance's memory is released when it fails.
	if f := res.Firmware; f.Instances != 3 || f.Failed != 1 || f.Memory < 2*64<<10 {
		t.Errorf("firmware stats %+v, want 3 instances, 1 failed, at least a page for each running one", f)
	}
	for _, d := range res.Run.Devices() {
		errs, last := d.Errors()
		switch d.Info.Group {
		case "tick", "tick-mqtt":
			// The boot report, set apart as start-up for the projections.
			if setup, ok := d.Setup(); !ok || setup[metrics.TwinOps] != 1 || setup[metrics.D2CSent] != 0 {
				t.Errorf("%s: start-up operations %v (set %v), want the boot report alone", d.Info.ID, setup, ok)
			}
			if d.State() != metrics.StateDone || d.Get(metrics.Sleeps) == 0 || d.Get(metrics.Connects) < 2 {
				t.Errorf("%s: state %s, %d sleeps, %d connects, errors %v (%s)", d.Info.ID, d.State(), d.Get(metrics.Sleeps), d.Get(metrics.Connects), errs, last)
			}
			if errs["firmware"] != 0 {
				t.Errorf("%s: firmware errors: %s", d.Info.ID, last)
			}
		case "bad":
			if d.State() != metrics.StateFailed || errs["firmware"] != 1 {
				t.Errorf("%s: state %s, errors %v", d.Info.ID, d.State(), errs)
			}
			for _, want := range []string{"bad-0", "catmsim_on_timer", "unreachable", "read_sensor"} {
				if !strings.Contains(last, want) {
					t.Errorf("%s: the report's error %q does not name %q", d.Info.ID, last, want)
				}
			}
		}
	}
}

// driveFirmware acts as the service once dev's firmware has booted: two C2D
// messages the firmware settles differently, a direct method it answers, and
// a desired update it acknowledges in its reported properties.
func driveFirmware(h *hub.Hub, dev iothub.Identity, events <-chan hub.Event) error {
	deadline := time.After(4 * time.Second)
	await := func(what string, ok func(hub.Event) bool) error {
		for {
			select {
			case e := <-events:
				if e.Identity == dev && ok(e) {
					return nil
				}
			case <-deadline:
				return fmt.Errorf("%s: no event within the run", what)
			}
		}
	}
	if err := await("boot report", func(e hub.Event) bool { return e.Kind == hub.EventTwinReported }); err != nil {
		return err
	}
	for _, body := range []string{"keep", "reject"} {
		if _, err := h.SendC2D(dev.DeviceID, iothub.Message{MessageID: body, Body: []byte(body)}, hub.C2DOptions{}); err != nil {
			return err
		}
	}
	if err := await("C2D completed", func(e hub.Event) bool { return e.Kind == hub.EventC2DCompleted }); err != nil {
		return err
	}
	if err := await("C2D rejected", func(e hub.Event) bool { return e.Kind == hub.EventC2DRejected }); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := h.InvokeMethod(ctx, dev, "echo", []byte(`{"x":1}`), 3*time.Second, 0)
	if err != nil {
		return fmt.Errorf("method: %w", err)
	}
	if r.Status != 201 || string(r.Payload) != `{"x":1}` {
		return fmt.Errorf("method answered %d %s, want 201 {\"x\":1}", r.Status, r.Payload)
	}
	if _, err := h.UpdateTwin(dev, []byte(`{"properties":{"desired":{"interval":5}}}`), ""); err != nil {
		return err
	}
	if err := await("desired acknowledged", func(e hub.Event) bool { return e.Kind == hub.EventTwinReported }); err != nil {
		return err
	}
	tw, err := h.GetTwin(dev)
	if err != nil {
		return err
	}
	got, _ := json.Marshal(map[string]any{"boot": tw.Reported["boot"], "applied": tw.Reported["applied"]})
	if string(got) != `{"applied":1,"boot":1}` {
		return errors.New("reported properties " + string(got) + ", want boot and applied")
	}
	return nil
}

// A module that cannot run fails the run before any device starts, with an
// error naming the profile, the module and what is wrong with it.
func TestFirmwareThatCannotRunStopsTheRunBeforeItStarts(t *testing.T) {
	tests := []struct{ module, want string }{
		{"broken.wasm", "export catmsim_init is missing"},
		{"bigmemory.wasm", "memory"},
		{"startloop.wasm", "time limit"},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			p := plan(t, `
version: 1
duration: 1m
profiles:
  node: {protocol: mqtt, firmware: ../firmware/testdata/`+tt.module+`}
fleet:
  - {name: nodes, profile: node, count: 2}
`, scenarios.PlanOptions{})
			started := false
			_, err := Run(context.Background(), p, Options{Target: TargetOptions{Hub: func(*hub.Server) { started = true }}})
			var fe *FirmwareError
			if !errors.As(err, &fe) || fe.Profile != "node" || !strings.Contains(err.Error(), tt.module) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a FirmwareError for profile node naming %s and %q", err, tt.module, tt.want)
			}
			if started {
				t.Fatal("the hub started before the firmware was checked")
			}
		})
	}
}

// TestFirmwareCostsWhatItsDeclarativeTwinCosts runs the C sensor node beside
// a declarative behaviour that does what it does — the same boot report, the
// same JSON reading at the same pace over the same protocol and link — and
// checks their bytes differ only where the firmware's logic differs: per
// connection and per reading they cost the same; the firmware alone answers
// setInterval and then reports its new configuration.
func TestFirmwareCostsWhatItsDeclarativeTwinCosts(t *testing.T) {
	p := plan(t, `
version: 1
name: twin
seed: 9
duration: 6s
target: {kind: embedded}
profiles:
  firmware:
    protocol: mqtt
    link: `+fastLink+`
    firmware: example:c/sensornode.wasm
  declarative:
    protocol: mqtt
    link: `+fastLink+`
    behaviour:
      reported_on_connect: {firmware: "1.0.0", interval: 30, sleep: false}
      telemetry:
        interval: 1s
        payload:
          kind: json
          fields:
            temperature: {random_walk: {start: 20.0, step: 0.3, decimals: 1}}
            humidity: {random_walk: {start: 50, step: 1, decimals: 0}}
            seq: sequence
fleet:
  - {name: fw, profile: firmware, count: 3, id_pattern: "fw-{index}"}
  - {name: decl, profile: declarative, count: 3, id_pattern: "dc-{index}"}  # ids as long as the firmware group's: they are in every CONNECT
# Both groups subscribe to methods, which only the firmware answers; the test
# calls setInterval 1 itself.
cloud:
  methods: {rate: 1/24h, name: setInterval, to: all}
`, scenarios.PlanOptions{})
	called := make(chan error, 1)
	var srv *hub.Server
	opts := Options{Target: TargetOptions{Hub: func(s *hub.Server) {
		srv = s
		events, stop := s.Hub.Subscribe(1024)
		go func() {
			defer stop()
			called <- speedUp(s.Hub, events, []string{"fw-0", "fw-1", "fw-2"})
		}()
	}}}
	res, err := Run(context.Background(), p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-called; err != nil {
		t.Fatal(err)
	}
	type sums struct {
		snap                 network.Snapshot
		acked, sent, twinOps uint64
	}
	groups := map[string]*sums{"fw": {}, "decl": {}}
	for _, d := range res.Run.Devices() {
		g := groups[d.Info.Group]
		s := d.Ledger().Snapshot()
		g.snap.Add(&s)
		// The payload layer counts the bodies the hub acknowledged; the layers
		// under it every reading on the wire, the one in flight when the run
		// ended included, whose acknowledgement never came.
		g.acked += d.Get(metrics.D2CSent)
		g.sent += uint64(srv.Hub.Store().CountFor(iothub.Identity{DeviceID: d.Info.ID}))
		g.twinOps += d.Get(metrics.TwinOps)
	}
	fw, decl := groups["fw"], groups["decl"]
	if fw.acked == 0 || decl.acked == 0 {
		t.Fatalf("sent %d (firmware) and %d (declarative) readings", fw.sent, decl.sent)
	}
	both := func(l network.Layer, c network.Class) (float64, float64) {
		f := float64(fw.snap.Bytes(l, network.Up, c) + fw.snap.Bytes(l, network.Down, c))
		d := float64(decl.snap.Bytes(l, network.Up, c) + decl.snap.Bytes(l, network.Down, c))
		return f, d
	}
	near := func(what string, f, d, tolerance float64) {
		t.Helper()
		if d == 0 || f == 0 || math.Abs(f-d)/d > tolerance {
			t.Errorf("%s: firmware %.1f, declarative %.1f; want within %.0f%%", what, f, d, tolerance*100)
		}
	}
	for _, l := range []network.Layer{network.LayerPayload, network.LayerProtocol, network.LayerIP} {
		// Uplink only: the reading in flight at the end has had no PUBACK.
		f := float64(fw.snap.Bytes(l, network.Up, network.ClassTelemetry))
		d := float64(decl.snap.Bytes(l, network.Up, network.ClassTelemetry))
		nf, nd := float64(fw.sent), float64(decl.sent)
		if l == network.LayerPayload {
			nf, nd = float64(fw.acked), float64(decl.acked)
		}
		// Readings differ by a digit now and then (21.3 against 9.8).
		near(l.String()+" bytes per reading", f/nf, d/nd, 0.03)
		if l != network.LayerPayload { // a connection carries no payload
			f, d = both(l, network.ClassConnect)
			f, d = f/float64(fw.snap.Conns(network.ReasonInitial)), d/float64(decl.snap.Conns(network.ReasonInitial))
			// Each SAS token's signature escapes a different number of '+'
			// and '/' (2 bytes each), so connections differ by a few bytes.
			if math.Abs(f-d) > 16 {
				t.Errorf("%s bytes per connection: firmware %.1f, declarative %.1f; want within 16 bytes", l, f, d)
			}
		}
	}
	// The firmware reports its boot record, as the declarative devices do on
	// connect, and then its new configuration: one more, smaller, patch each.
	if fw.twinOps != 2*decl.twinOps {
		t.Errorf("twin operations: firmware %d, declarative %d; want twice as many", fw.twinOps, decl.twinOps)
	}
	f, d := both(network.LayerPayload, network.ClassTwin)
	if boot, config := float64(len(`{"firmware":"1.0.0","interval":30,"sleep":false}`)), float64(len(`{"interval":1,"sleep":false}`)); d != 3*boot || f != 3*(boot+config) {
		t.Errorf("twin payload bytes: firmware %.0f, declarative %.0f; want %.0f and %.0f", f, d, 3*(boot+config), 3*boot)
	}
	if f, d := both(network.LayerIP, network.ClassMethod); f == 0 || d != 0 {
		t.Errorf("method bytes: firmware %.0f, declarative %.0f; only the firmware answers methods", f, d)
	}
}

// speedUp calls setInterval 1 on each device once its firmware has booted,
// so the readings come every second, as the declarative twin's do.
func speedUp(h *hub.Hub, events <-chan hub.Event, ids []string) error {
	deadline := time.After(4 * time.Second)
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	for len(pending) > 0 {
		select {
		case e := <-events:
			if e.Kind != hub.EventTwinReported || !pending[e.Identity.DeviceID] {
				continue
			}
			delete(pending, e.Identity.DeviceID)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			r, err := h.InvokeMethod(ctx, e.Identity, "setInterval", []byte("1"), 3*time.Second, 0)
			cancel()
			if err != nil || r.Status != 200 {
				return fmt.Errorf("setInterval on %s: %d %v", e.Identity.DeviceID, r.Status, err)
			}
		case <-deadline:
			return fmt.Errorf("devices %v did not boot in time", pending)
		}
	}
	return nil
}

// A profile's firmware_limits replace the defaults: a module whose memory
// starts at 20 pages (1.25 MiB) runs when its profile allows 2 MB.
func TestFirmwareLimitsFromTheProfile(t *testing.T) {
	p := plan(t, `
version: 1
duration: 1s
profiles:
  node:
    protocol: mqtt
    link: `+fastLink+`
    firmware: ../firmware/testdata/bigmemory.wasm
    firmware_limits: {memory: 2MB, call_timeout: 2s}
fleet:
  - {name: nodes, profile: node, count: 1}
`, scenarios.PlanOptions{})
	res, err := Run(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Firmware; f.Instances != 1 || f.Failed != 0 || f.Memory != 20*64<<10 {
		t.Fatalf("firmware %+v, want one healthy instance of 20 pages", f)
	}
}
