package metricdef

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
)

func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Catalogue() {
		t.Run(m.Name, func(t *testing.T) {
			if seen[m.Name] {
				t.Fatalf("listed twice")
			}
			seen[m.Name] = true
			if m.Description == "" || len(m.Tags) == 0 {
				t.Errorf("no description or no tags: %+v", m)
			}
			if m.Type == Rate && m.Unit != Ratio {
				t.Errorf("a rate metric is a ratio, got %s", m.Unit)
			}
			got, ok := Lookup(m.Name)
			if !ok || !reflect.DeepEqual(got, m) {
				t.Errorf("Lookup(%q) = %+v, %v", m.Name, got, ok)
			}
		})
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup found a metric that does not exist")
	}
	// Callers get copies: changing one does not change the catalogue.
	c := Catalogue()
	c[0].Tags[0] = "changed"
	if Catalogue()[0].Tags[0] == "changed" {
		t.Error("Catalogue shares its tag slices")
	}
}

// The closed tag values must be the names the rest of the program uses.
func TestTagValuesMatchTheirSources(t *testing.T) {
	var protos []string
	for _, p := range []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket, protocols.AMQP,
		protocols.AMQPWebSocket, protocols.HTTPS, protocols.EventHubsHTTPS, protocols.GenericMQTT} {
		protos = append(protos, string(p))
	}
	if got := TagValues(TagProtocol); !slices.Equal(got, protos) {
		t.Errorf("protocol values %v, want %v", got, protos)
	}
	var classes []string
	for c := network.ClassConnect; c.String() != "invalid" && len(classes) < 64; c++ {
		classes = append(classes, c.String())
	}
	if got := TagValues(TagClass); !slices.Equal(got, classes) {
		t.Errorf("class values %v, want %v", got, classes)
	}
	if got := TagValues(TagDirection); !slices.Equal(got, []string{network.Up.String(), network.Down.String()}) {
		t.Errorf("direction values %v", got)
	}
	if TagValues(TagGroup) != nil {
		t.Error("group is an open tag")
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		name, in string
		want     Key
		err      string
	}{
		{"bare metric", "d2c_latency", Key{Metric: "d2c_latency"}, ""},
		{"blanks around", "  d2c_latency ", Key{Metric: "d2c_latency"}, ""},
		{"one tag", "ip_bytes_per_device_day{protocol:amqp}", Key{Metric: "ip_bytes_per_device_day", Tags: map[string]string{"protocol": "amqp"}}, ""},
		{"two tags with blanks", "ip_bytes_per_device_day{ protocol: amqp , direction:up }", Key{Metric: "ip_bytes_per_device_day", Tags: map[string]string{"protocol": "amqp", "direction": "up"}}, ""},
		{"open tag", "errors{kind:throttled}", Key{Metric: "errors", Tags: map[string]string{"kind": "throttled"}}, ""},
		{"unknown metric with suggestion", "d2c_latncy", Key{}, `unknown metric "d2c_latncy" — did you mean d2c_latency?`},
		{"unknown metric", "speed", Key{}, `unknown metric "speed"; the metrics are payload_bytes_per_device_day,`},
		{"empty", "", Key{}, "names no metric"},
		{"tag the metric lacks", "d2c_latency{class:telemetry}", Key{}, `metric d2c_latency has no tag "class"; its tags are protocol, group`},
		{"closed tag bad value", "d2c_latency{protocol:amqps}", Key{}, `tag protocol cannot be "amqps"; it is one of mqtt, mqtt-ws, amqp, amqp-ws, https, eventhubs-https, mqtt-generic — did you mean amqp?`},
		{"duplicate tag", "d2c_latency{group:a,group:b}", Key{}, "names tag group twice"},
		{"unclosed", "d2c_latency{group:a", Key{}, "one pair of braces"},
		{"nested", "d2c_latency{group:{a}}", Key{}, "one pair of braces"},
		{"no colon", "d2c_latency{group}", Key{}, `each tag is written tag:value (got "group")`},
		{"empty value", "d2c_latency{group:}", Key{}, "each tag is written tag:value"},
		{"too long", strings.Repeat("x", 600), Key{}, "the limit is 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestKeyString(t *testing.T) {
	k, err := ParseKey("ip_bytes_per_device_day{protocol:amqp,direction:up}")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.String(), "ip_bytes_per_device_day{direction:up,protocol:amqp}"; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	back, err := ParseKey(k.String())
	if err != nil || !reflect.DeepEqual(back, k) {
		t.Fatalf("round trip: %#v, %v", back, err)
	}
}

func TestParseExpr(t *testing.T) {
	tests := []struct {
		name, in string
		want     Expr
		err      string
	}{
		{"percentile with size", "p(95) < 150KB", Expr{Agg: AggPercentile, Percentile: 95, Op: OpLT, Value: 150 * 1024, Unit: Size}, ""},
		{"no blanks", "p(99.9)<=2s", Expr{Agg: AggPercentile, Percentile: 99.9, Op: OpLE, Value: 2, Unit: Time}, ""},
		{"blanks inside p", "p( 50 ) > 1", Expr{Agg: AggPercentile, Percentile: 50, Op: OpGT, Value: 1}, ""},
		{"milliseconds", "avg < 500ms", Expr{Agg: AggAvg, Op: OpLT, Value: 0.5, Unit: Time}, ""},
		{"minutes", "max <= 2m", Expr{Agg: AggMax, Op: OpLE, Value: 120, Unit: Time}, ""},
		{"hours", "min >= 1.5h", Expr{Agg: AggMin, Op: OpGE, Value: 5400, Unit: Time}, ""},
		{"unit after a blank", "med < 5 MB", Expr{Agg: AggMed, Op: OpLT, Value: 5 << 20, Unit: Size}, ""},
		{"lower-case size", "med < 1gb", Expr{Agg: AggMed, Op: OpLT, Value: 1 << 30, Unit: Size}, ""},
		{"percent", "rate < 1%", Expr{Agg: AggRate, Op: OpLT, Value: 0.01, Unit: Percent}, ""},
		{"fraction", "rate < 0.01", Expr{Agg: AggRate, Op: OpLT, Value: 0.01}, ""},
		{"count equals", "count == 0", Expr{Agg: AggCount, Op: OpEQ, Value: 0}, ""},
		{"not equal", "count != 3", Expr{Agg: AggCount, Op: OpNE, Value: 3}, ""},
		{"exponent", "value > 1e3", Expr{Agg: AggValue, Op: OpGT, Value: 1000}, ""},
		{"negative", "avg > -1", Expr{Agg: AggAvg, Op: OpGT, Value: -1}, ""},
		{"empty", "  ", Expr{}, "threshold is empty"},
		{"k6 percentile without parens", "p95 < 2s", Expr{}, `unknown aggregation "p95" — write percentiles as p(95)`},
		{"misspelled aggregation", "avgg < 2s", Expr{}, `unknown aggregation "avgg" — did you mean avg?`},
		{"no aggregation", "< 2s", Expr{}, "does not start with an aggregation"},
		{"percentile above 100", "p(150) < 2s", Expr{}, "a percentile is between 0 and 100 (got 150)"},
		{"percentile missing", "p() < 2s", Expr{}, "expected a percentile in p(…)"},
		{"percentile unclosed", "p(95 < 2s", Expr{}, `expected ")" to close p(95 at "< 2s"`},
		{"no operator", "avg 2s", Expr{}, `expected an operator (<, <=, >, >=, == or !=) at "2s"`},
		{"no number", "avg <", Expr{}, "expected a number after < at the end"},
		{"double operator", "avg << 2", Expr{}, `expected a number after < at "< 2"`},
		{"unknown unit", "avg < 2 sec", Expr{}, `unknown unit "sec"`},
		{"overflow", "avg < 1e999", Expr{}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExpr(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Source = strings.TrimSpace(tt.in)
			if math.Abs(got.Value-tt.want.Value) > 1e-12*math.Abs(tt.want.Value) {
				t.Fatalf("value %v, want %v", got.Value, tt.want.Value)
			}
			got.Value = tt.want.Value
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestThresholdFitsMetric(t *testing.T) {
	tests := []struct {
		name, key, expr string
		err             string
	}{
		{"trend percentile of bytes", "ip_bytes_per_device_day{protocol:amqp}", "p(95) < 150KB", ""},
		{"trend latency", "d2c_latency", "avg < 500ms", ""},
		{"rate as fraction", "d2c_failure_rate", "rate < 0.01", ""},
		{"rate as percent", "connect_failure_rate", "rate <= 5%", ""},
		{"counter count", "reconnects{group:field}", "count < 100", ""},
		{"counter rate", "d2c_messages", "rate > 10", ""},
		{"budget as percent", "budget_use", "max < 80%", ""},
		{"battery days", "battery_life_days", "min > 365", ""},
		{"size on a latency", "d2c_latency", "p(99) < 2KB", `d2c_latency is in seconds, but "p(99) < 2KB" is a size`},
		{"duration on bytes", "tls_bytes_per_device_day", "avg < 2s", "tls_bytes_per_device_day is in bytes, but \"avg < 2s\" is a duration"},
		{"duration on days", "battery_life_days", "min > 24h", "battery_life_days is in days"},
		{"percent on count", "d2c_failures", "count < 1%", "d2c_failures is in count"},
		{"percentile on a counter", "reconnects", "p(95) < 3", "reconnects is a counter: use count or rate, not p(N)"},
		{"count on a trend", "d2c_latency", "count < 3", "d2c_latency is a trend: use avg, min, max, med or p(N), not count"},
		{"avg on a rate", "d2c_failure_rate", "avg < 0.1", "d2c_failure_rate is a rate: use rate, not avg"},
		{"value never fits", "d2c_latency", "value < 1", "not value (which is for gauges)"},
		{"rate above one", "d2c_failure_rate", "rate < 5", "is a fraction from 0 to 1"},
		{"counter rate with unit", "d2c_messages", "rate > 10s", "is in count"},
		{"counter rate percent", "d2c_messages", "rate > 10%", "is in count"},
		{"unknown metric", "nope", "avg < 1", "unknown metric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, err := Parse(tt.key, tt.expr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if th.Metric == "" || th.Source != tt.expr {
				t.Fatalf("threshold %+v", th)
			}
		})
	}
}

func TestHolds(t *testing.T) {
	tests := []struct {
		expr     string
		observed float64
		want     bool
	}{
		{"avg < 2s", 1.999, true},
		{"avg < 2s", 2, false},
		{"avg <= 2s", 2, true},
		{"avg > 2s", 2, false},
		{"avg >= 2s", 2, true},
		{"avg == 2s", 2, true},
		{"avg != 2s", 2, false},
		{"avg != 2s", 3, true},
		{"p(95) < 150KB", 153599, true},
		{"p(95) < 150KB", 153600, false},
		{"avg < 2s", math.NaN(), false},
		{"avg != 2s", math.NaN(), false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := ParseExpr(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			th := Threshold{Op: e.Op, Value: e.Value}
			if got := th.Holds(tt.observed); got != tt.want {
				t.Fatalf("Holds(%v) = %v", tt.observed, got)
			}
		})
	}
}

func TestThresholdJSON(t *testing.T) {
	th, err := Parse("d2c_latency{group:field}", "p(99) < 2s")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(th)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metric":"d2c_latency","tags":{"group":"field"},"agg":"p(N)","percentile":99,"op":"\u003c","value":2,"source":"p(99) \u003c 2s"}`
	if string(b) != want {
		t.Fatalf("\n got %s\nwant %s", b, want)
	}
	if got := th.String(); got != "d2c_latency{group:field}: p(99) < 2s" {
		t.Fatalf("String() = %q", got)
	}
}
