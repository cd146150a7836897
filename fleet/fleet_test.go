package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/scenarios"
)

func plan(t testing.TB, yaml string, opts scenarios.PlanOptions) *scenarios.Plan {
	t.Helper()
	s, _, err := scenarios.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := scenarios.Compile(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A fast link keeps the test short; the model still meters every byte.
const fastLink = `{base: good, rtt: 2ms, rtt_jitter: 0s, loss: 0%, attach_time: 0s, rrc_setup: 0s, drx_cycle: 10ms}`

func TestFleetAgainstTheEmbeddedHub(t *testing.T) {
	p := plan(t, `
version: 1
name: mixed
seed: 7
duration: 6s
target: {kind: embedded}
profiles:
  m:
    protocol: mqtt
    link: `+fastLink+`
    behaviour:
      telemetry: {interval: 1s, payload: {kind: json, fields: {seq: sequence, t: {uniform: {min: 0, max: 10}}}}, properties: {site: a}}
      on_method: {status: 201, payload: '{"ok":true}'}
      on_desired: report
      reconnect: {initial: 100ms, max: 1s}
  h:
    protocol: https
    link: `+fastLink+`
    https: {new_connection_per_request: true, c2d_poll: 1s}
    behaviour:
      telemetry: {interval: 1s, batch: 2, payload: {kind: bytes, size: 40B}}
  e:
    protocol: eventhubs-https
    event_hub: telemetry
    link: `+fastLink+`
    behaviour:
      telemetry: {interval: 1s, payload: {kind: bytes, size: 10B}}
fleet:
  - {name: mq, profile: m, count: 4}
  - {name: web, profile: h, count: 2}
  - {name: eh, profile: e, count: 1}
cloud:
  c2d: {rate: 1/s, size: 16B, to: all}
  methods: {rate: 1/2s, name: ping, to: mq}
  desired: {rate: 1/2s, patch: {interval: 5}, to: mq}
events:
  - {at: 2s, kind: outage, fraction: 50%, duration: 1s, group: mq}
`, scenarios.PlanOptions{})
	var progress int
	res, err := Run(context.Background(), p, Options{Progress: func(Progress) { progress++ }, ProgressEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Interrupted || progress < 3 {
		t.Fatalf("interrupted %v, %d progress reports", res.Interrupted, progress)
	}
	tot := res.Run.Totals()
	if tot[metrics.D2CSent] < 20 || tot[metrics.D2CFailed] != 0 {
		t.Errorf("sent %d, failed %d; errors %v", tot[metrics.D2CSent], tot[metrics.D2CFailed], res.Run.Errors())
	}
	if !res.Delivery.Checked || res.Delivery.Lost != 0 || res.Delivery.Acked != tot[metrics.D2CSent] {
		t.Errorf("delivery %+v", res.Delivery)
	}
	if tot[metrics.C2DSent] == 0 || tot[metrics.C2DReceived] == 0 {
		t.Errorf("C2D sent %d received %d", tot[metrics.C2DSent], tot[metrics.C2DReceived])
	}
	if tot[metrics.MethodCalls] == 0 || tot[metrics.DesiredUpdates] == 0 || tot[metrics.TwinOps] == 0 {
		t.Errorf("methods %d, desired %d, twin ops %d", tot[metrics.MethodCalls], tot[metrics.DesiredUpdates], tot[metrics.TwinOps])
	}
	if tot[metrics.Reconnects] < 2 {
		t.Errorf("the outage of 2 MQTT devices caused %d reconnects", tot[metrics.Reconnects])
	}
	var latency bool
	for _, g := range res.Run.Groups() {
		if g.Name == "mq" && g.Histogram(metrics.LatencyD2C).TotalCount() > 0 && g.Histogram(metrics.LatencyMethod).TotalCount() > 0 {
			latency = true
		}
	}
	if !latency {
		t.Error("no D2C or method latencies for the MQTT group")
	}
	for _, d := range res.Run.Devices() {
		if errs, last := d.Errors(); len(errs) > 0 {
			t.Logf("%s: sent %d failed %d errors %v, last: %s", d.Info.ID, d.Get(metrics.D2CSent), d.Get(metrics.D2CFailed), errs, last)
		}
		s := d.Ledger().Snapshot()
		up := s.Total(network.LayerIP, network.Up)
		if up == 0 || s.Total(network.LayerPayload, network.Up) == 0 || s.Total(network.LayerPayload, network.Up) >= up {
			t.Errorf("%s: payload %d, ip %d bytes up", d.Info.ID, s.Total(network.LayerPayload, network.Up), up)
		}
		if d.State() != metrics.StateDone {
			t.Errorf("%s ended in state %s", d.Info.ID, d.State())
		}
	}
}

func TestSameSeedSamePayloads(t *testing.T) {
	tel := &scenarios.Telemetry{Payload: scenarios.Payload{Kind: "json", Fields: scenarios.Fields{
		{Name: "seq", Gen: scenarios.Generator{Kind: scenarios.GenSequence}},
		{Name: "t", Gen: scenarios.Generator{Kind: scenarios.GenRandomWalk, RandomWalk: &scenarios.RandomWalk{Start: 20, Step: 1, Decimals: 2}}},
		{Name: "c", Gen: scenarios.Generator{Kind: scenarios.GenChoice, Choice: []any{"a", "b", 3.5}}},
	}, Size: 64}}
	d := scenarios.Device{Seed: 99, Index: 3}
	a, b := newPayloads(tel, d.Rand()), newPayloads(tel, d.Rand())
	now := time.Unix(0, 0)
	for i := 0; i < 20; i++ {
		ma, sa := a.next(now)
		mb, _ := b.next(now)
		if string(ma.Body) != string(mb.Body) || sa != int64(i) {
			t.Fatalf("message %d differs: %s vs %s", i, ma.Body, mb.Body)
		}
		if len(ma.Body) < 64 {
			t.Fatalf("body %q shorter than its padding", ma.Body)
		}
	}
	other := newPayloads(tel, scenarios.Device{Seed: 100, Index: 3}.Rand())
	same := true
	for i := 0; i < 5; i++ {
		x, _ := a.next(now)
		y, _ := other.next(now)
		same = same && string(x.Body) == string(y.Body)
	}
	if same {
		t.Fatal("another seed sent the same values")
	}
}
