package metricdef

import (
	"slices"
	"strings"
)

// Type is how a metric's samples combine.
type Type uint8

const (
	// Trend metrics keep every sample (one per device, or one per operation)
	// and are summarised by avg, min, max, med and percentiles.
	Trend Type = iota + 1
	// Counter metrics add up; count is the total and rate the total per second.
	Counter
	// Rate metrics are the fraction of events that were "true" (failed), 0..1.
	Rate
)

func (t Type) String() string {
	switch t {
	case Trend:
		return "trend"
	case Counter:
		return "counter"
	case Rate:
		return "rate"
	}
	return "invalid"
}

// MarshalText writes the type's name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Unit is the base unit of a metric's values.
type Unit uint8

const (
	Bytes Unit = iota + 1
	Seconds
	Count
	Ratio // a fraction, 0.01 is 1 %
	MilliampHours
	Days
)

func (u Unit) String() string {
	switch u {
	case Bytes:
		return "bytes"
	case Seconds:
		return "seconds"
	case Count:
		return "count"
	case Ratio:
		return "ratio"
	case MilliampHours:
		return "mAh"
	case Days:
		return "days"
	}
	return "invalid"
}

// MarshalText writes the unit's name.
func (u Unit) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// Metric describes one reported metric.
type Metric struct {
	Name        string   `json:"name"`
	Type        Type     `json:"type"`
	Unit        Unit     `json:"unit"`
	Tags        []string `json:"tags"`
	Description string   `json:"description"`
}

// HasTag reports whether the metric is broken down by tag.
func (m Metric) HasTag(tag string) bool { return slices.Contains(m.Tags, tag) }

// Tag names. Values of the closed ones are listed in TagValues.
const (
	TagProtocol  = "protocol"
	TagGroup     = "group"
	TagProfile   = "profile"
	TagClass     = "class"
	TagDirection = "direction"
	TagKind      = "kind"
)

// tagValues are the values a closed tag can take; group, profile and kind are
// open (a scenario names its own groups and profiles).
var tagValues = map[string][]string{
	TagProtocol:  {"mqtt", "mqtt-ws", "amqp", "amqp-ws", "https", "eventhubs-https", "mqtt-generic"},
	TagClass:     {"connect", "telemetry", "keepalive", "c2d", "twin", "method", "token_renewal", "reconnect", "other"},
	TagDirection: {"up", "down"},
}

// TagValues lists the values a tag can take, or nil when any value may appear
// (group and profile names come from the scenario).
func TagValues(tag string) []string { return slices.Clone(tagValues[tag]) }

var (
	byteTags    = []string{TagProtocol, TagGroup, TagProfile, TagClass, TagDirection}
	budgetTags  = []string{TagProtocol, TagGroup, TagProfile}
	runTags     = []string{TagProtocol, TagGroup}
	errorTags   = []string{TagProtocol, TagGroup, TagKind}
	groupOnly   = []string{TagGroup}
	layerMetric = func(layer, what string) Metric {
		return Metric{
			Name: layer + "_bytes_per_device_day", Type: Trend, Unit: Bytes, Tags: byteTags,
			Description: what + " per device per day (one value per device: its total scaled to 24 hours)",
		}
	}
)

// catalogue is the one table of metrics, in the order reports list them.
var catalogue = []Metric{
	layerMetric("payload", "Application payload bytes (what the device meant to send or receive)"),
	layerMetric("protocol", "Protocol bytes (MQTT packets, AMQP frames, HTTP messages, under TLS)"),
	layerMetric("tls", "TLS bytes (records on the TCP stream, handshakes included)"),
	layerMetric("ip", "IP bytes (what a carrier bills: TLS plus TCP/IP headers, ACKs, SYN and FIN)"),
	{Name: "ip_bytes_per_device_month", Type: Trend, Unit: Bytes, Tags: budgetTags,
		Description: "IP bytes per device projected to a 30-day month"},
	{Name: "budget_use", Type: Trend, Unit: Ratio, Tags: budgetTags,
		Description: "Fraction of the device's data plan its projected monthly IP bytes use (billing rounding applied); 1 is the whole plan"},
	{Name: "d2c_latency", Type: Trend, Unit: Seconds, Tags: runTags,
		Description: "Device-to-cloud message latency: from send until the hub acknowledged it"},
	{Name: "c2d_latency", Type: Trend, Unit: Seconds, Tags: runTags,
		Description: "Cloud-to-device message latency: from enqueue at the hub until the device received it"},
	{Name: "method_latency", Type: Trend, Unit: Seconds, Tags: runTags,
		Description: "Direct method round trip as the service sees it"},
	{Name: "twin_latency", Type: Trend, Unit: Seconds, Tags: runTags,
		Description: "Twin operation latency: a get or reported patch until its response"},
	{Name: "connect_latency", Type: Trend, Unit: Seconds, Tags: runTags,
		Description: "Connection set-up: dial, TLS and the protocol's handshake and authentication"},
	{Name: "d2c_messages", Type: Counter, Unit: Count, Tags: runTags,
		Description: "Device-to-cloud messages the hub acknowledged"},
	{Name: "d2c_failures", Type: Counter, Unit: Count, Tags: runTags,
		Description: "Device-to-cloud messages that failed"},
	{Name: "c2d_messages", Type: Counter, Unit: Count, Tags: runTags,
		Description: "Cloud-to-device messages devices received"},
	{Name: "reconnects", Type: Counter, Unit: Count, Tags: runTags,
		Description: "Connections opened after a device's first"},
	{Name: "errors", Type: Counter, Unit: Count, Tags: errorTags,
		Description: "Errors devices met, by kind (unauthorized, throttled, disconnected …)"},
	{Name: "d2c_failure_rate", Type: Rate, Unit: Ratio, Tags: runTags,
		Description: "Fraction of device-to-cloud messages that failed"},
	{Name: "connect_failure_rate", Type: Rate, Unit: Ratio, Tags: runTags,
		Description: "Fraction of connection attempts that failed"},
	{Name: "energy_mah_per_day", Type: Trend, Unit: MilliampHours, Tags: runTags,
		Description: "Charge drawn per device per day (modem and board)"},
	{Name: "battery_life_days", Type: Trend, Unit: Days, Tags: runTags,
		Description: "Days a device's battery lasts at the run's average draw"},
	{Name: "devices_over_budget", Type: Counter, Unit: Count, Tags: groupOnly,
		Description: "Devices whose projected monthly IP bytes exceed their data plan"},
}

// Catalogue returns every metric a run reports.
func Catalogue() []Metric {
	out := make([]Metric, len(catalogue))
	for i, m := range catalogue {
		m.Tags = slices.Clone(m.Tags)
		out[i] = m
	}
	return out
}

// Lookup finds a metric by name.
func Lookup(name string) (Metric, bool) {
	for _, m := range catalogue {
		if m.Name == name {
			m.Tags = slices.Clone(m.Tags)
			return m, true
		}
	}
	return Metric{}, false
}

// Names lists the metric names in catalogue order.
func Names() []string {
	out := make([]string, len(catalogue))
	for i, m := range catalogue {
		out[i] = m.Name
	}
	return out
}

// closest returns the candidate nearest to s by edit distance, if it is within
// two edits (or differs only in case, '-' and '_'), else "".
func closest(s string, candidates []string) string {
	norm := func(x string) string {
		return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(x))
	}
	best, bestD, ties := "", 3, 0
	for _, c := range candidates {
		if norm(c) == norm(s) {
			return c
		}
		d := editDistance(s, c)
		switch {
		case d < bestD:
			best, bestD, ties = c, d, 0
		case d == bestD:
			ties++
		}
	}
	if ties > 0 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, by bytes, giving
// up (returning 3) once it is certain to exceed 2, so long inputs cost little.
func editDistance(a, b string) int {
	if d := len(a) - len(b); d > 2 || d < -2 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > 2 {
			return 3
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], 3)
}
