package reports

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/metricdef"
)

// fmtBytes writes a byte count 1024-based, as carriers bill and as
// thresholds are written: 812B, 182.4KB, 5.0MB.
func fmtBytes(b float64) string {
	if math.IsNaN(b) {
		return "-"
	}
	neg := b < 0
	b = math.Abs(b)
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	var s string
	switch {
	case i == 0:
		s = strconv.FormatFloat(math.Round(b), 'f', 0, 64)
	case b >= 100:
		s = strconv.FormatFloat(b, 'f', 0, 64)
	default:
		s = strings.TrimSuffix(strconv.FormatFloat(b, 'f', 1, 64), ".0")
	}
	if neg {
		s = "-" + s
	}
	return s + units[i]
}

// fmtDuration writes a measured duration compactly: 2m0s, 1h30m0s, 850ms.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Second).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.String()
}

// fmtMS writes a latency given in milliseconds.
func fmtMS(ms float64) string {
	switch {
	case math.IsNaN(ms):
		return "-"
	case ms == 0:
		return "0"
	case ms >= 10_000:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
}

// fmtPct writes a fraction as a percentage.
func fmtPct(f float64) string {
	switch {
	case math.IsNaN(f):
		return "-"
	case f == 0:
		return "0%"
	case math.Abs(f) >= 0.1:
		return strconv.FormatFloat(f*100, 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

// fmtNum writes a plain number with up to three significant decimals.
func fmtNum(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// fmtDays writes a battery life.
func fmtDays(d float64) string {
	switch {
	case d <= 0 || math.IsNaN(d):
		return "-"
	case d >= 730:
		return strconv.FormatFloat(d/365, 'f', 1, 64) + " years"
	case d >= 10:
		return strconv.FormatFloat(d, 'f', 0, 64) + " days"
	}
	return strconv.FormatFloat(d, 'f', 1, 64) + " days"
}

// formatValue writes an observed aggregate in the metric's unit.
func formatValue(m metricdef.Metric, agg metricdef.Agg, v float64) string {
	if m.Type == metricdef.Counter {
		if agg == metricdef.AggRate {
			return fmtNum(v) + "/s"
		}
		return fmtNum(v)
	}
	switch m.Unit {
	case metricdef.Bytes:
		return fmtBytes(v)
	case metricdef.Seconds:
		return fmtMS(v * 1000)
	case metricdef.Ratio:
		return fmtPct(v)
	case metricdef.MilliampHours:
		return fmtNum(round3(v)) + "mAh"
	case metricdef.Days:
		return fmtNum(round3(v)) + " days"
	}
	return fmtNum(round3(v))
}

func lookupMetric(name string) (metricdef.Metric, bool) { return metricdef.Lookup(name) }
