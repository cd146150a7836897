package reports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// The fixture is a synthetic fleet with deterministic measurements: three
// groups on three protocols over six hours, with latencies, errors, energy and
// a timeline. It is built as one run and as shard runs from the same data, so
// tests can compare a merge with the whole.

var fixtureStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	fixtureDuration = 6 * time.Hour
	fixtureStep     = 5 * time.Minute // telemetry interval and sampling period
)

type fixtureGroup struct {
	name, profile, protocol string
	plan                    int64
	// per-message overheads by layer, on top of the payload
	protoOver, tlsOver, ipOver int
	connect                    int // IP bytes of the first connection
	keepAlive                  int // IP bytes per keep-alive exchange (0: none)
}

var fixtureGroups = []fixtureGroup{
	{name: "sensors", profile: "fipy-mqtt", protocol: "mqtt", plan: 5 << 20, protoOver: 40, tlsOver: 29, ipOver: 80, connect: 6200, keepAlive: 150},
	{name: "trackers", profile: "fipy-amqp", protocol: "amqp", plan: 1 << 20, protoOver: 260, tlsOver: 29, ipOver: 80, connect: 9800, keepAlive: 120},
	{name: "meters", profile: "esp32-https", protocol: "https", protoOver: 420, tlsOver: 58, ipOver: 560, connect: 0},
}

var fixtureProfiles = []ProfileMeta{
	{Name: "esp32-https", Protocol: "https", Link: "typical", BatteryMAh: 3000},
	{Name: "fipy-amqp", Protocol: "amqp", Link: "poor", DataPlan: 1 << 20, Billing: Billing{Increment: 1024, Per: PerMonth}},
	{Name: "fipy-mqtt", Protocol: "mqtt", Link: "typical", DataPlan: 5 << 20, Billing: Billing{Increment: 1024, Per: PerSession}},
}

// fakeDevice is one device's whole history.
type fakeDevice struct {
	info     metrics.DeviceInfo
	ledger   *network.Ledger
	energy   network.EnergyReport
	arrive   int // sample at which it connects
	backoff  [2]int
	perStep  map[metrics.Count]int
	latency  []observation
	errs     []string
	lastSeq  int64
	finished metrics.State
}

type observation struct {
	l metrics.Latency
	d time.Duration
}

func fixtureFleet(n int, seed uint64) []fakeDevice {
	steps := int(fixtureDuration / fixtureStep)
	out := make([]fakeDevice, n)
	for i := range out {
		g := fixtureGroups[i%len(fixtureGroups)]
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		d := &out[i]
		d.info = metrics.DeviceInfo{Index: i, ID: fmt.Sprintf("%s-%03d", g.name, i), Group: g.name, Profile: g.profile, Protocol: g.protocol, DataPlan: g.plan}
		d.ledger = network.NewLedger()
		d.arrive = i % 5
		d.finished = metrics.StateDone
		msgs := steps - d.arrive
		for m := 0; m < msgs; m++ {
			payload := 60 + rng.IntN(40)
			d.ledger.AddPayload(network.Up, network.ClassTelemetry, payload)
			d.ledger.Add(network.LayerProtocol, network.Up, network.ClassTelemetry, payload+g.protoOver)
			d.ledger.Add(network.LayerProtocol, network.Down, network.ClassTelemetry, 4+g.protoOver/4)
			d.ledger.Add(network.LayerTLS, network.Up, network.ClassTelemetry, payload+g.protoOver+g.tlsOver)
			d.ledger.Add(network.LayerTLS, network.Down, network.ClassTelemetry, 4+g.protoOver/4+g.tlsOver)
			d.ledger.Add(network.LayerIP, network.Up, network.ClassTelemetry, payload+g.protoOver+g.tlsOver+g.ipOver/2)
			d.ledger.Add(network.LayerIP, network.Down, network.ClassTelemetry, 4+g.protoOver/4+g.tlsOver+g.ipOver/2)
			d.latency = append(d.latency, observation{metrics.LatencyD2C, time.Duration(80+rng.IntN(1900)) * time.Millisecond})
			if g.connect == 0 { // HTTPS: a TLS connection per message
				d.ledger.Add(network.LayerTLS, network.Up, network.ClassConnect, 1900)
				d.ledger.Add(network.LayerTLS, network.Down, network.ClassConnect, 3900)
				d.ledger.Add(network.LayerIP, network.Up, network.ClassConnect, 2300)
				d.ledger.Add(network.LayerIP, network.Down, network.ClassConnect, 4300)
			}
		}
		if g.connect > 0 {
			d.ledger.Add(network.LayerProtocol, network.Up, network.ClassConnect, g.connect/20)
			d.ledger.Add(network.LayerTLS, network.Up, network.ClassConnect, g.connect/3)
			d.ledger.Add(network.LayerTLS, network.Down, network.ClassConnect, g.connect/2)
			d.ledger.Add(network.LayerIP, network.Up, network.ClassConnect, g.connect*2/5)
			d.ledger.Add(network.LayerIP, network.Down, network.ClassConnect, g.connect*3/5)
			d.latency = append(d.latency, observation{metrics.LatencyConnect, time.Duration(1500+rng.IntN(6000)) * time.Millisecond})
		}
		if g.keepAlive > 0 {
			pings := int(fixtureDuration / (240 * time.Second))
			d.ledger.Add(network.LayerProtocol, network.Up, network.ClassKeepAlive, 2*pings)
			d.ledger.Add(network.LayerProtocol, network.Down, network.ClassKeepAlive, 2*pings)
			d.ledger.Add(network.LayerIP, network.Up, network.ClassKeepAlive, g.keepAlive/2*pings)
			d.ledger.Add(network.LayerIP, network.Down, network.ClassKeepAlive, g.keepAlive/2*pings)
		}
		if i%4 == 1 { // a cloud-to-device message now and then
			d.ledger.AddPayload(network.Down, network.ClassC2D, 32)
			d.ledger.Add(network.LayerIP, network.Down, network.ClassC2D, 32+g.protoOver+g.tlsOver+g.ipOver)
			d.latency = append(d.latency, observation{metrics.LatencyC2D, time.Duration(200+rng.IntN(3000)) * time.Millisecond})
		}
		if i%9 == 4 { // a device that reconnected after a drop
			d.ledger.Add(network.LayerIP, network.Up, network.ClassReconnect, 2500+rng.IntN(500))
			d.ledger.Add(network.LayerIP, network.Down, network.ClassReconnect, 3500)
			d.backoff = [2]int{30, 34}
		}
		d.perStep = map[metrics.Count]int{metrics.D2CSent: 1}
		if i%7 == 3 {
			d.errs = append(d.errs, "throttled", "throttled")
		}
		if i == 13 {
			d.errs = append(d.errs, "unauthorized")
			d.finished = metrics.StateFailed
		}
		d.lastSeq = int64(msgs)
		charge := (0.4 + rng.Float64()*2) * fixtureDuration.Hours()
		d.energy = network.EnergyReport{Elapsed: fixtureDuration - time.Duration(d.arrive)*fixtureStep, ChargeMAh: charge}
	}
	return out
}

// fixtureClock is the run's clock, moved by the fixture.
type fixtureClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixtureClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixtureClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// fixtureRuns plays the fleet into one run holding every device and into
// shards runs holding device i in shard i mod shards, in lockstep, so the
// shard runs together measured exactly what the whole one did.
func fixtureRuns(devs []fakeDevice, shards int) (*metrics.Run, []*metrics.Run) {
	clk := &fixtureClock{t: fixtureStart}
	whole := metrics.NewRun(clk.now)
	parts := make([]*metrics.Run, shards)
	for i := range parts {
		parts[i] = metrics.NewRun(clk.now)
	}
	handles := make([][2]*metrics.Device, len(devs))
	for i := range devs {
		d := &devs[i]
		e := d.energy
		energy := func() network.EnergyReport { return e }
		handles[i] = [2]*metrics.Device{
			whole.Device(d.info, d.ledger, energy),
			parts[i%shards].Device(d.info, d.ledger, energy),
		}
	}
	each := func(i int, f func(h *metrics.Device)) {
		f(handles[i][0])
		f(handles[i][1])
	}
	steps := int(fixtureDuration / fixtureStep)
	for k := 0; k <= steps; k++ {
		clk.set(fixtureStart.Add(time.Duration(k) * fixtureStep))
		for i := range devs {
			d := &devs[i]
			st := metrics.StateWaiting
			switch {
			case k == steps:
				st = d.finished
			case k >= d.backoff[0] && k < d.backoff[1]:
				st = metrics.StateBackoff
			case k > d.arrive:
				st = metrics.StateConnected
			case k == d.arrive:
				st = metrics.StateConnecting
			}
			each(i, func(h *metrics.Device) {
				h.SetState(st)
				if k > d.arrive && k <= steps {
					for c, n := range d.perStep {
						h.Add(c, n)
					}
				}
				if k == d.arrive {
					h.Add(metrics.Connects, 1)
				}
			})
		}
		if k%2 == 0 || k == steps {
			whole.Sample()
			for _, p := range parts {
				p.Sample()
			}
		}
	}
	for i := range devs {
		d := &devs[i]
		each(i, func(h *metrics.Device) {
			for _, o := range d.latency {
				h.Observe(o.l, o.d)
			}
			for j, kind := range d.errs {
				h.Error(kind, fmt.Errorf("%s #%d: %w", kind, j+1, errors.ErrUnsupported))
			}
			h.Acked(d.lastSeq)
			if len(d.errs) > 0 {
				h.Add(metrics.D2CFailed, len(d.errs))
			}
			if d.backoff[1] > 0 {
				h.Add(metrics.Reconnects, 1)
			}
		})
	}
	return whole, parts
}

func fixtureThresholds(t testing.TB) Thresholds {
	t.Helper()
	var out Thresholds
	for _, kv := range [][2]string{
		{"ip_bytes_per_device_day{protocol:mqtt}", "p(95) < 150KB"},
		{"ip_bytes_per_device_day{protocol:amqp}", "p(95) < 20KB"},
		{"d2c_latency", "p(95) < 2s"},
		{"budget_use{group:trackers}", "max < 100%"},
		{"errors{kind:throttled}", "count < 100"},
		{"d2c_failure_rate", "rate < 1%"},
		{"ip_bytes_per_device_day{protocol:eventhubs-https}", "avg < 1MB"},
		{"battery_life_days{group:meters}", "min > 365"},
	} {
		th, err := metricdef.Parse(kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, th)
	}
	return out
}

func fixtureMeta(t testing.TB, shard, shards int) Meta {
	return Meta{
		RunID: "20260301T120000-fixture", Scenario: "fixture",
		Description: "A synthetic fleet: FiPy sensors on MQTT, trackers on AMQP and ESP32 meters on HTTPS",
		Seed:        7, Shard: shard, Shards: shards, Started: fixtureStart, Duration: fixtureDuration,
		Target: "embedded", Profiles: fixtureProfiles, Thresholds: fixtureThresholds(t),
	}
}

// fixtureReport builds the report of the whole 30-device fixture fleet.
func fixtureReport(t testing.TB) *Report {
	t.Helper()
	whole, _ := fixtureRuns(fixtureFleet(30, 7), 1)
	r, err := Build(Input{Run: whole, Meta: fixtureMeta(t, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
