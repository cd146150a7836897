package reports

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// smallReport is four devices measured for exactly one day, so that bytes
// per device-day are the bytes counted and every expected value below can be
// worked out by hand.
//
//	dev  group proto  IP bytes                              d2c sent/failed  energy
//	a-0  a     mqtt   up telemetry 1000, connect 1000;       5 / 0           5 mAh in 12 h
//	                  down telemetry 500
//	a-1  a     mqtt   up telemetry 2000                      3 / 0           20 mAh in 24 h
//	b-0  b     amqp   up telemetry 3000, down c2d 1000       2 / 0           -
//	b-1  b     amqp   up telemetry 4000                      0 / 2           -
func smallReport(t *testing.T, ths ...[2]string) *Report {
	t.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := metrics.NewRun(func() time.Time { return start })
	type dev struct {
		id, group, profile, proto string
		bytes                     []struct {
			d network.Direction
			c network.Class
			n int
		}
		sent, failed int
		energy       network.EnergyReport
	}
	type b = struct {
		d network.Direction
		c network.Class
		n int
	}
	devs := []dev{
		{"a-0", "a", "p-mqtt", "mqtt", []b{{network.Up, network.ClassTelemetry, 1000}, {network.Up, network.ClassConnect, 1000}, {network.Down, network.ClassTelemetry, 500}}, 5, 0, network.EnergyReport{Elapsed: 12 * time.Hour, ChargeMAh: 5}},
		{"a-1", "a", "p-mqtt", "mqtt", []b{{network.Up, network.ClassTelemetry, 2000}}, 3, 0, network.EnergyReport{Elapsed: 24 * time.Hour, ChargeMAh: 20}},
		{"b-0", "b", "p-amqp", "amqp", []b{{network.Up, network.ClassTelemetry, 3000}, {network.Down, network.ClassC2D, 1000}}, 2, 0, network.EnergyReport{}},
		{"b-1", "b", "p-amqp", "amqp", []b{{network.Up, network.ClassTelemetry, 4000}}, 0, 2, network.EnergyReport{}},
	}
	for i, d := range devs {
		l := network.NewLedger()
		for _, x := range d.bytes {
			l.Add(network.LayerIP, x.d, x.c, x.n)
		}
		e := d.energy
		h := run.Device(metrics.DeviceInfo{Index: i, ID: d.id, Group: d.group, Profile: d.profile, Protocol: d.proto}, l, func() network.EnergyReport { return e })
		h.Add(metrics.D2CSent, d.sent)
		h.Add(metrics.D2CFailed, d.failed)
		if d.group == "a" {
			for ms := 10; ms <= 100; ms += 10 {
				h.Observe(metrics.LatencyD2C, time.Duration(ms/2)*time.Millisecond) // two devices: 5..50 ms each
			}
		}
		switch d.id {
		case "a-0":
			h.Error("unauthorized", errors.New("401"))
		case "b-0":
			for range 3 {
				h.Error("throttled", errors.New("429"))
			}
		}
	}
	var parsed Thresholds
	for _, kv := range ths {
		th, err := metricdef.Parse(kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, th)
	}
	r, err := Build(Input{Run: run, Meta: Meta{
		Scenario: "small", Duration: 24 * time.Hour, Started: start, Target: "embedded", Thresholds: parsed,
		Profiles: []ProfileMeta{
			{Name: "p-mqtt", Protocol: "mqtt", DataPlan: 70_000, Billing: Billing{Increment: 1024, Per: PerMonth}},
			{Name: "p-amqp", Protocol: "amqp"},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		key, expr string
		observed  float64 // NaN: no data
		samples   int
		pass      bool
	}{
		{"ip_bytes_per_device_day", "avg < 3KB", 3125, 4, false},
		{"ip_bytes_per_device_day", "min >= 2000", 2000, 4, true},
		{"ip_bytes_per_device_day", "max <= 4000B", 4000, 4, true},
		{"ip_bytes_per_device_day", "med < 3300", 3250, 4, true},    // between 2500 and 4000
		{"ip_bytes_per_device_day", "p(95) < 4000", 4000, 4, false}, // rank 2.85 of 0..3
		{"ip_bytes_per_device_day", "p(0) == 2000", 2000, 4, true},
		{"ip_bytes_per_device_day{protocol:mqtt}", "avg < 2250", 2250, 2, false},
		{"ip_bytes_per_device_day{class:telemetry}", "min > 1400", 1500, 4, true},
		{"ip_bytes_per_device_day{direction:down}", "avg == 375", 375, 4, true},
		{"ip_bytes_per_device_day{group:b,class:c2d}", "avg == 500", 500, 2, true},
		{"ip_bytes_per_device_day{profile:p-amqp}", "avg > 4KB", 4000, 2, false},
		{"payload_bytes_per_device_day", "max == 0", 0, 4, true},
		{"ip_bytes_per_device_month", "max < 120000", 120000, 4, false},
		// 75,000 and 60,000 B a month, billed per 1 KB: 75,776 and 60,416 B of a 70,000 B plan.
		{"budget_use", "max < 100%", 75776.0 / 70000, 2, false},
		{"budget_use{group:a}", "min < 90%", 60416.0 / 70000, 2, true},
		{"budget_use{protocol:amqp}", "max < 100%", math.NaN(), 0, false},
		{"devices_over_budget", "count == 1", 1, 2, true},
		{"devices_over_budget{group:b}", "count == 0", math.NaN(), 0, false},
		{"d2c_latency", "p(50) < 30ms", 0.025, 20, true},
		{"d2c_latency{group:a}", "max < 51ms", 0.05, 20, true}, // HDR: the top of 50 ms's bucket
		{"d2c_latency{protocol:amqp}", "p(99) < 1s", math.NaN(), 0, false},
		{"d2c_messages", "count == 10", 10, 4, true},
		{"d2c_messages{group:a}", "rate > 0.0001", 8.0 / 86400, 2, false},
		{"d2c_failures", "count > 0", 2, 4, true},
		{"d2c_failure_rate", "rate < 10%", 2.0 / 12, 12, false},
		{"d2c_failure_rate{group:a}", "rate == 0", 0, 8, true},
		{"connect_failure_rate", "rate < 1%", math.NaN(), 0, false},
		{"errors", "count == 4", 4, 4, true},
		{"errors{kind:throttled}", "count < 3", 3, 4, false},
		{"errors{kind:throttled,group:a}", "count == 0", 0, 2, true},
		{"reconnects{group:nope}", "count == 0", math.NaN(), 0, false},
		{"energy_mah_per_day", "avg == 15", 15, 2, true}, // 10 and 20 mAh a day
		{"energy_mah_per_day{protocol:amqp}", "avg < 1", math.NaN(), 0, false},
		{"battery_life_days{group:a}", "min > 100", 100, 2, false}, // 2000 mAh at 20 mAh a day
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.expr, func(t *testing.T) {
			r := smallReport(t, [2]string{tt.key, tt.expr})
			if len(r.Thresholds) != 1 {
				t.Fatalf("%d results", len(r.Thresholds))
			}
			got := r.Thresholds[0]
			if math.IsNaN(tt.observed) {
				if !got.NoData || got.Pass || !strings.Contains(got.Message, "no data") {
					t.Fatalf("want a failed no-data result, got %+v", got)
				}
				return
			}
			if got.NoData || math.Abs(got.Observed-tt.observed) > 1e-9*math.Max(1, math.Abs(tt.observed))+hdrSlack(tt.key, tt.observed) {
				t.Fatalf("observed %v (no data %v), want %v", got.Observed, got.NoData, tt.observed)
			}
			if got.Pass != tt.pass || got.Samples != tt.samples {
				t.Fatalf("pass %v over %d samples, want %v over %d (%s)", got.Pass, got.Samples, tt.pass, tt.samples, got.Message)
			}
			if wantBreached := 0; !tt.pass {
				wantBreached = 1
				if r.Summary.ThresholdsBreached != wantBreached {
					t.Fatalf("summary counts %d breached", r.Summary.ThresholdsBreached)
				}
			}
		})
	}
}

// hdrSlack is the precision of a latency read back from an HDR histogram
// with three significant digits.
func hdrSlack(key string, v float64) float64 {
	if strings.Contains(key, "latency") {
		return v * 1e-3
	}
	return 0
}

func TestEvaluateRefuses(t *testing.T) {
	r := smallReport(t)
	lat, err := metricdef.Parse("d2c_latency", "p(95) < 1s")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		th   metricdef.Threshold
		err  string
	}{
		{"unknown metric", metricdef.Threshold{Metric: "ip_bytes_per_device_week", Agg: metricdef.AggAvg, Op: metricdef.OpLT, Source: "avg < 1"}, `unknown metric "ip_bytes_per_device_week"`},
		{"tag the metric lacks", metricdef.Threshold{Metric: lat.Metric, Tags: map[string]string{"class": "telemetry"}, Agg: lat.Agg, Percentile: 95, Op: lat.Op, Source: lat.Source}, `has no tag "class"`},
		{"percentile of a counter", metricdef.Threshold{Metric: "reconnects", Agg: metricdef.AggPercentile, Percentile: 95, Op: metricdef.OpLT, Source: "p(95) < 1"}, "cannot be aggregated by p(N)"},
		{"count of a rate", metricdef.Threshold{Metric: "d2c_failure_rate", Agg: metricdef.AggCount, Op: metricdef.OpLT, Source: "count < 1"}, "cannot be aggregated by count"},
		{"count of a trend", metricdef.Threshold{Metric: "budget_use", Agg: metricdef.AggCount, Op: metricdef.OpLT, Source: "count < 1"}, "cannot be aggregated by count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.Meta.Thresholds = Thresholds{lat, tt.th}
			_, err := Evaluate(r)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want it to contain %q", err, tt.err)
			}
		})
	}
}

func TestBreachLine(t *testing.T) {
	r := smallReport(t,
		[2]string{"ip_bytes_per_device_day{protocol:mqtt}", "p(95) < 2KB"},
		[2]string{"d2c_messages", "count > 0"},
		[2]string{"connect_failure_rate", "rate < 1%"},
	)
	want := "2 of 3 thresholds breached: ip_bytes_per_device_day{protocol:mqtt} p(95) < 2KB (observed 2.4KB); " +
		"connect_failure_rate rate < 1% (no data: nothing was recorded)"
	if got := BreachLine(r.Thresholds); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	err := r.Check()
	var be *BreachError
	if !errors.Is(err, ErrThresholdsBreached) || !errors.As(err, &be) || be.Breached != 2 || be.Total != 3 || err.Error() != want {
		t.Fatalf("Check() = %v", err)
	}
	if err := smallReport(t, [2]string{"d2c_messages", "count > 0"}).Check(); err != nil {
		t.Fatalf("a report whose thresholds hold: %v", err)
	}
	if BreachLine(nil) != "" {
		t.Fatal("no thresholds, yet a breach line")
	}
}

func TestBuildRefusesUnknownMetric(t *testing.T) {
	run := metrics.NewRun(nil)
	_, err := Build(Input{Run: run, Meta: Meta{Duration: time.Minute, Thresholds: Thresholds{{Metric: "speed", Agg: metricdef.AggAvg, Op: metricdef.OpLT}}}})
	if err == nil || !strings.Contains(err.Error(), `unknown metric "speed"`) {
		t.Fatalf("error %v", err)
	}
}

func TestBilling(t *testing.T) {
	tests := []struct {
		name         string
		bytes, units float64
		inc          int64
		want         float64
	}{
		{"by the byte", 1000.2, 30, 0, 1001},
		{"per month", 1000, 1, 1024, 1024},
		{"per month, exact", 2048, 1, 1024, 2048},
		{"per session: 30 sessions of 100 B each bill 1 KB", 3000, 30, 1024, 30 * 1024},
		{"per session: 30 sessions of 1.5 KB", 30 * 1536, 30, 1024, 30 * 2048},
		{"nothing used", 0, 30, 1024, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := billed(tt.bytes, tt.units, tt.inc); got != tt.want {
				t.Fatalf("billed = %v, want %v", got, tt.want)
			}
		})
	}
	// Per-message billing rounds once per message projected to the month.
	d := &DeviceRow{}
	d.Counts[metrics.D2CSent], d.Counts[metrics.C2DReceived] = 10, 2
	if got := billingUnits(Billing{Increment: 1, Per: PerMessage}, d, 2); got != 12*2*30 {
		t.Fatalf("per-message units %v, want %v", got, 12*2*30)
	}
	if got := billingUnits(Billing{Increment: 1, Per: PerSession}, d, 2); got != 30 {
		t.Fatalf("per-session units %v", got)
	}
}

func TestPercentile(t *testing.T) {
	vals := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tt := range []struct{ p, want float64 }{{0, 1}, {50, 5.5}, {90, 9.1}, {95, 9.55}, {100, 10}} {
		if got := percentile(vals, tt.p); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("p(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of nothing is a number")
	}
}
