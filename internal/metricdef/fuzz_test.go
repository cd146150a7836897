package metricdef

import (
	"math"
	"testing"
)

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"p(95) < 150KB", "avg<500ms", "rate < 1%", "count == 0", "p(99.9)<=2s",
		"value > 1e3", "med < 5 MB", "p(", "avg <", "max > -1e-3h", "min >= 1.5h"} {
		f.Add(s, "d2c_latency")
	}
	f.Add("rate < 0.01", "d2c_failure_rate{protocol:amqp}")
	f.Add("count < 3", "errors{kind:throttled,group:a}")
	f.Fuzz(func(t *testing.T, expr, key string) {
		e, err := ParseExpr(expr)
		if err == nil {
			if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
				t.Fatalf("%q parsed to a non-finite value %v", expr, e.Value)
			}
			if e.Agg.String() == "invalid" || e.Op.String() == "invalid" {
				t.Fatalf("%q parsed to %+v", expr, e)
			}
			if e.Agg == AggPercentile && !(e.Percentile >= 0 && e.Percentile <= 100) {
				t.Fatalf("%q: percentile %v", expr, e.Percentile)
			}
			// Parsing is a function of the text: the source parses the same again.
			again, err := ParseExpr(e.Source)
			if err != nil || again != e {
				t.Fatalf("%q: reparsing %q gave %+v, %v; first %+v", expr, e.Source, again, err, e)
			}
			th := Threshold{Op: e.Op, Value: e.Value}
			want := e.Op == OpLE || e.Op == OpGE || e.Op == OpEQ
			if th.Holds(e.Value) != want {
				t.Fatalf("%q: Holds(its own value) = %v", expr, !want)
			}
		}
		k, err := ParseKey(key)
		if err != nil {
			return
		}
		if _, ok := Lookup(k.Metric); !ok {
			t.Fatalf("ParseKey(%q) accepted unknown metric %q", key, k.Metric)
		}
		if back, err := ParseKey(k.String()); err != nil || back.String() != k.String() {
			t.Fatalf("key %q: canonical form %q does not parse back: %v", key, k.String(), err)
		}
		if err == nil && e.Agg != 0 {
			_, _ = k.Threshold(e)
		}
	})
}
