package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// ThresholdResult is one threshold held against the run.
type ThresholdResult struct {
	Threshold metricdef.Threshold `json:"-"`
	// Observed is the aggregate in the metric's base unit (bytes, seconds, a
	// fraction, a count, per second for a counter's rate, mAh, days); it is
	// 0 with NoData set when nothing matched the threshold's key.
	Observed float64 `json:"observed"`
	NoData   bool    `json:"no_data,omitempty"`
	// Samples is how many values the aggregate was taken over: devices,
	// recorded latencies, or events for a rate.
	Samples int  `json:"samples"`
	Pass    bool `json:"pass"`
	// Message is the threshold and what was observed, in one line.
	Message string `json:"message"`
}

type thresholdResultJSON struct {
	Key  string `json:"key"`
	Expr string `json:"expr"`
	thresholdResultFields
}

type thresholdResultFields struct {
	Observed float64 `json:"observed"`
	NoData   bool    `json:"no_data,omitempty"`
	Samples  int     `json:"samples"`
	Pass     bool    `json:"pass"`
	Message  string  `json:"message"`
}

// MarshalJSON writes the threshold as its key and expression, then the result.
func (t ThresholdResult) MarshalJSON() ([]byte, error) {
	return marshal(thresholdResultJSON{
		Key: t.Threshold.Key().String(), Expr: t.Threshold.Source,
		thresholdResultFields: thresholdResultFields{t.Observed, t.NoData, t.Samples, t.Pass, t.Message},
	}, "")
}

// UnmarshalJSON parses the threshold again.
func (t *ThresholdResult) UnmarshalJSON(b []byte) error {
	var x thresholdResultJSON
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	th, err := metricdef.Parse(x.Key, x.Expr)
	if err != nil {
		return fmt.Errorf("threshold %s: %s: %w", x.Key, x.Expr, err)
	}
	f := x.thresholdResultFields
	*t = ThresholdResult{Threshold: th, Observed: f.Observed, NoData: f.NoData, Samples: f.Samples, Pass: f.Pass, Message: f.Message}
	return nil
}

// ErrThresholdsBreached is what BreachError matches with errors.Is; the
// command line maps it to exit code 99.
var ErrThresholdsBreached = errors.New("thresholds breached")

// BreachError says which thresholds a run breached, in one line.
type BreachError struct {
	Breached, Total int
	Line            string
}

func (e *BreachError) Error() string        { return e.Line }
func (e *BreachError) Is(target error) bool { return target == ErrThresholdsBreached }

// Check returns a *BreachError when any threshold failed, else nil.
func (r *Report) Check() error {
	if line := BreachLine(r.Thresholds); line != "" {
		n := 0
		for _, t := range r.Thresholds {
			if !t.Pass {
				n++
			}
		}
		return &BreachError{Breached: n, Total: len(r.Thresholds), Line: line}
	}
	return nil
}

// BreachLine is the one summary line for failed thresholds, e.g.
// "2 of 5 thresholds breached: ip_bytes_per_device_day{protocol:mqtt} p(95) < 150KB (observed 182.4KB); …",
// or "" when every threshold held.
func BreachLine(results []ThresholdResult) string {
	var failed []string
	for _, t := range results {
		if !t.Pass {
			failed = append(failed, t.Message)
		}
	}
	if len(failed) == 0 {
		return ""
	}
	noun := "thresholds"
	if len(results) == 1 {
		noun = "threshold"
	}
	return fmt.Sprintf("%d of %d %s breached: %s", len(failed), len(results), noun, strings.Join(failed, "; "))
}

// Evaluate holds every threshold of the report's meta against its
// measurements. A threshold whose key matches nothing fails as "no data"; one
// that names a metric the catalogue lacks, a tag its metric lacks, or an
// aggregation that does not fit its metric is an error, never a pass.
func Evaluate(r *Report) ([]ThresholdResult, error) {
	out := make([]ThresholdResult, 0, len(r.Meta.Thresholds))
	var hists []*hdrhistogram.Histogram
	for _, th := range r.Meta.Thresholds {
		m, ok := metricdef.Lookup(th.Metric)
		if !ok {
			return nil, fmt.Errorf("threshold %s: unknown metric %q", th, th.Metric)
		}
		for tag := range th.Tags {
			if !m.HasTag(tag) {
				return nil, fmt.Errorf("threshold %s: metric %s has no tag %q", th, m.Name, tag)
			}
		}
		if m.Type == metricdef.Trend && strings.HasSuffix(m.Name, "_latency") && hists == nil {
			var err error
			if hists, err = r.histograms(); err != nil {
				return nil, err
			}
		}
		v, n, err := r.observe(m, th, hists)
		if err != nil {
			return nil, fmt.Errorf("threshold %s: %w", th, err)
		}
		res := ThresholdResult{Threshold: th, Samples: n}
		label := th.Key().String() + " " + th.Source
		if math.IsNaN(v) {
			res.NoData = true
			res.Message = fmt.Sprintf("%s (no data: %s)", label, noDataReason(th))
		} else {
			res.Observed = v
			res.Pass = th.Holds(v)
			res.Message = fmt.Sprintf("%s (observed %s)", label, formatValue(m, th.Agg, v))
		}
		out = append(out, res)
	}
	return out, nil
}

// observe computes the threshold's aggregate over its metric; NaN means no
// data.
func (r *Report) observe(m metricdef.Metric, th metricdef.Threshold, hists []*hdrhistogram.Histogram) (float64, int, error) {
	match := func(d *DeviceRow) bool {
		return tagIs(th, metricdef.TagProtocol, d.Protocol) && tagIs(th, metricdef.TagGroup, d.Group) && tagIs(th, metricdef.TagProfile, d.Profile)
	}
	trend := func(value func(d *DeviceRow) (float64, bool)) (float64, int, error) {
		var vals []float64
		for i := range r.Devices {
			d := &r.Devices[i]
			if !match(d) {
				continue
			}
			if v, ok := value(d); ok {
				vals = append(vals, v)
			}
		}
		v, err := aggregateTrend(th, vals)
		return v, len(vals), err
	}
	counter := func(value func(d *DeviceRow) (uint64, bool)) (float64, int, error) {
		var sum uint64
		n := 0
		for i := range r.Devices {
			d := &r.Devices[i]
			if !match(d) {
				continue
			}
			if v, ok := value(d); ok {
				sum += v
				n++
			}
		}
		if n == 0 {
			return math.NaN(), 0, nil
		}
		switch th.Agg {
		case metricdef.AggCount:
			return float64(sum), n, nil
		case metricdef.AggRate:
			return float64(sum) / r.Meta.Duration.Seconds(), n, nil
		}
		return 0, 0, aggError(m, th)
	}
	rate := func(failed, ok metrics.Count) (float64, int, error) {
		if th.Agg != metricdef.AggRate {
			return 0, 0, aggError(m, th)
		}
		var f, all uint64
		for i := range r.Devices {
			d := &r.Devices[i]
			if match(d) {
				f += d.Counts.Get(failed)
				all += d.Counts.Get(failed) + d.Counts.Get(ok)
			}
		}
		if all == 0 {
			return math.NaN(), 0, nil
		}
		return float64(f) / float64(all), int(all), nil
	}

	if layer, ok := byteLayer(m.Name); ok {
		classes, dirs := classFilter(th), dirFilter(th)
		return trend(func(d *DeviceRow) (float64, bool) {
			if d.Elapsed <= 0 {
				return 0, false
			}
			var n float64
			for _, di := range dirs {
				for _, c := range classes {
					n += projectedCell(d, layer, network.Direction(di), network.Class(c))
				}
			}
			return n, true
		})
	}
	if lat, ok := strings.CutSuffix(m.Name, "_latency"); ok && slices.Contains(latencyNames, lat) {
		h := r.mergedLatency(hists, lat, func(g, p string) bool {
			return tagIs(th, metricdef.TagGroup, g) && tagIs(th, metricdef.TagProtocol, p)
		})
		if h == nil || h.TotalCount() == 0 {
			return math.NaN(), 0, nil
		}
		v, err := aggregateHist(th, h)
		return v, int(h.TotalCount()), err
	}
	switch m.Name {
	case "ip_bytes_per_device_month":
		return trend(func(d *DeviceRow) (float64, bool) { return d.Projected.IPBytesPerMonth, d.Elapsed > 0 })
	case "budget_use":
		return trend(func(d *DeviceRow) (float64, bool) { return d.Projected.BudgetUse, r.planOf(d) > 0 })
	case "energy_mah_per_day":
		return trend(func(d *DeviceRow) (float64, bool) { return d.Projected.MAhPerDay, d.Projected.MAhPerDay > 0 })
	case "battery_life_days":
		return trend(func(d *DeviceRow) (float64, bool) { return d.Projected.BatteryLifeDays, d.Projected.MAhPerDay > 0 })
	case "d2c_messages":
		return counter(func(d *DeviceRow) (uint64, bool) { return d.Counts.Get(metrics.D2CSent), true })
	case "d2c_failures":
		return counter(func(d *DeviceRow) (uint64, bool) { return d.Counts.Get(metrics.D2CFailed), true })
	case "c2d_messages":
		return counter(func(d *DeviceRow) (uint64, bool) { return d.Counts.Get(metrics.C2DReceived), true })
	case "reconnects":
		return counter(func(d *DeviceRow) (uint64, bool) { return d.Counts.Get(metrics.Reconnects), true })
	case "errors":
		// Kinds are open-ended: a kind no device met counts zero errors of it.
		kind, byKind := th.Tags[metricdef.TagKind]
		return counter(func(d *DeviceRow) (uint64, bool) {
			if byKind {
				return d.Errors[kind], true
			}
			var n uint64
			for _, v := range d.Errors {
				n += v
			}
			return n, true
		})
	case "devices_over_budget":
		return counter(func(d *DeviceRow) (uint64, bool) {
			if d.Projected.OverBudget {
				return 1, true
			}
			return 0, r.planOf(d) > 0
		})
	case "d2c_failure_rate":
		return rate(metrics.D2CFailed, metrics.D2CSent)
	case "connect_failure_rate":
		return rate(metrics.ConnectFailures, metrics.Connects)
	}
	return 0, 0, fmt.Errorf("metric %s is in the catalogue but reports cannot evaluate it", m.Name)
}

func (r *Report) planOf(d *DeviceRow) int64 {
	if d.DataPlan > 0 {
		return d.DataPlan
	}
	for i := range r.Meta.Profiles {
		if r.Meta.Profiles[i].Name == d.Profile {
			return r.Meta.Profiles[i].DataPlan
		}
	}
	return 0
}

func noDataReason(th metricdef.Threshold) string {
	if len(th.Tags) == 0 {
		return "nothing was recorded"
	}
	k := th.Key().String()
	return "nothing matched " + k[len(th.Metric):]
}

func tagIs(th metricdef.Threshold, tag, value string) bool {
	v, ok := th.Tags[tag]
	return !ok || v == value
}

func byteLayer(name string) (network.Layer, bool) {
	for _, l := range network.Layers() {
		if name == l.String()+"_bytes_per_device_day" {
			return l, true
		}
	}
	return 0, false
}

func classFilter(th metricdef.Threshold) []int {
	if c, ok := th.Tags[metricdef.TagClass]; ok {
		return []int{slices.Index(classNames, c)}
	}
	out := make([]int, numClasses)
	for i := range out {
		out[i] = i
	}
	return out
}

func dirFilter(th metricdef.Threshold) []int {
	if d, ok := th.Tags[metricdef.TagDirection]; ok {
		return []int{slices.Index(directionNames, d)}
	}
	return []int{0, 1}
}

func aggError(m metricdef.Metric, th metricdef.Threshold) error {
	return fmt.Errorf("%s is a %s and cannot be aggregated by %s", m.Name, m.Type, th.Agg)
}

// aggregateTrend applies a trend aggregation to one value per device; NaN
// for no values.
func aggregateTrend(th metricdef.Threshold, vals []float64) (float64, error) {
	if len(vals) == 0 {
		return math.NaN(), nil
	}
	switch th.Agg {
	case metricdef.AggAvg:
		var s float64
		for _, v := range vals {
			s += v
		}
		return s / float64(len(vals)), nil
	case metricdef.AggMin:
		return slices.Min(vals), nil
	case metricdef.AggMax:
		return slices.Max(vals), nil
	case metricdef.AggMed:
		slices.Sort(vals)
		return percentile(vals, 50), nil
	case metricdef.AggPercentile:
		slices.Sort(vals)
		return percentile(vals, th.Percentile), nil
	}
	return 0, fmt.Errorf("a trend cannot be aggregated by %s", th.Agg)
}

// aggregateHist applies a trend aggregation to a latency histogram (µs),
// giving seconds.
func aggregateHist(th metricdef.Threshold, h *hdrhistogram.Histogram) (float64, error) {
	const us = 1e-6
	switch th.Agg {
	case metricdef.AggAvg:
		return h.Mean() * us, nil
	case metricdef.AggMin:
		return float64(h.Min()) * us, nil
	case metricdef.AggMax:
		return float64(h.Max()) * us, nil
	case metricdef.AggMed:
		return float64(h.ValueAtPercentile(50)) * us, nil
	case metricdef.AggPercentile:
		return float64(h.ValueAtPercentile(th.Percentile)) * us, nil
	}
	return 0, fmt.Errorf("a latency cannot be aggregated by %s", th.Agg)
}
