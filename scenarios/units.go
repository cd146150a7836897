package scenarios

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The unit types below read the human forms scenario files use ("90s", "5MB",
// "2/min", "5MB/month", "10%") and write them back the same way, so a plan
// printed as JSON reads like the scenario it came from. Each is a distinct
// type: a size cannot be passed where a duration is meant.

// unitValue is implemented by every unit type; the decoder uses it to read a
// scalar and to say what was expected.
type unitValue interface {
	parse(s string) error
	// what describes the expected form, e.g. "a duration such as 90s".
	what() string
	// schema is its JSON Schema.
	schema() map[string]any
}

var errUnitSyntax = errors.New("bad syntax")

// Duration is a span of time: "90s", "2m", "1h30m", "7d", "250ms".
type Duration time.Duration

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) what() string { return "a duration such as 90s, 2m, 1h30m or 7d" }

func (d *Duration) parse(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

var durationUnits = []struct {
	name string
	d    time.Duration
}{
	// Longer names first, so "ms" is not read as "m" followed by "s".
	{"min", time.Minute}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"µs", time.Microsecond},
	{"ns", time.Nanosecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour},
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	if s == "" {
		return 0, errUnitSyntax
	}
	var total float64
	for s != "" {
		n, rest, ok := leadingNumber(s)
		if !ok {
			return 0, errUnitSyntax
		}
		rest = strings.TrimLeft(rest, " ")
		unit := time.Duration(0)
		for _, u := range durationUnits {
			if strings.HasPrefix(rest, u.name) {
				unit, rest = u.d, rest[len(u.name):]
				break
			}
		}
		if unit == 0 {
			return 0, errUnitSyntax
		}
		total += n * float64(unit)
		s = strings.TrimLeft(rest, " ")
	}
	if total >= math.MaxInt64 {
		return 0, errors.New("too long")
	}
	d := time.Duration(math.Round(total))
	if neg {
		d = -d
	}
	return d, nil
}

// leadingNumber reads an unsigned decimal number at the start of s.
func leadingNumber(s string) (float64, string, bool) {
	i, digits := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, s, false
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || math.IsInf(n, 0) {
		return 0, s, false
	}
	return n, s[i:], true
}

// String writes the duration the way a person would: "7d", "1h30m", "1m30s",
// "1.28s", "250ms". It reads back to the same value.
func (d Duration) String() string {
	v := time.Duration(d)
	switch {
	case v == 0:
		return "0s"
	case v == math.MinInt64:
		return v.String()
	case v < 0:
		return "-" + Duration(-v).String()
	case v%time.Second != 0 && v < time.Second:
		return strconv.FormatFloat(float64(v)/float64(time.Millisecond), 'f', -1, 64) + "ms"
	case v%time.Second != 0:
		return strconv.FormatFloat(v.Seconds(), 'f', -1, 64) + "s"
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := v / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			v -= n * u.d
		}
	}
	return b.String()
}

// MarshalText writes the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the forms a scenario file accepts.
func (d *Duration) UnmarshalText(b []byte) error { return unmarshalUnit(d, string(b)) }

func (d *Duration) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": `^(0|-?([0-9]+(\.[0-9]+)? ?(min|ms|us|µs|ns|s|m|h|d) ?)+)$`,
		"examples": []string{"90s", "2m", "1h30m", "7d"}}
}

// ByteSize is an amount of data: "120B", "1KB", "5MB". K, M and G are
// 1024-based, as carriers bill.
type ByteSize int64

func (b *ByteSize) what() string { return "a size such as 120B, 64KB or 5MB" }

func (b *ByteSize) parse(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

var sizeUnits = []struct {
	name string
	n    int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"b", 1},
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	n, rest, ok := leadingNumber(s)
	if !ok {
		return 0, errUnitSyntax
	}
	rest = strings.ToLower(strings.TrimSpace(rest))
	for _, u := range sizeUnits {
		if rest == u.name {
			v := n * float64(u.n)
			if v >= math.MaxInt64 {
				return 0, errors.New("too large")
			}
			if v != math.Trunc(v) {
				return 0, errors.New("not a whole number of bytes")
			}
			if neg {
				v = -v
			}
			return int64(v), nil
		}
	}
	return 0, errUnitSyntax
}

// String writes the size in the largest unit that divides it exactly.
func (b ByteSize) String() string {
	v := int64(b)
	for _, u := range []struct {
		name string
		n    int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if v != 0 && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10) + "B"
}

// MarshalText writes the size as String does.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads the forms a scenario file accepts.
func (b *ByteSize) UnmarshalText(t []byte) error { return unmarshalUnit(b, string(t)) }

func (b *ByteSize) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": `^(0|-?[0-9]+(\.[0-9]+)? ?([Bb]|[KkMmGg][Ii]?[Bb]))$`,
		"examples": []string{"120B", "64KB", "5MB"}}
}

// BitRate is a link rate in bits per second: "2kbps", "375kbps", "1Mbps".
// K and M are 1000-based, as for every link rate.
type BitRate int64

func (r *BitRate) what() string { return "a bit rate such as 5kbps, 375kbps or 1Mbps" }

func (r *BitRate) parse(s string) error {
	s = strings.TrimSpace(s)
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	n, rest, ok := leadingNumber(s)
	if !ok {
		return errUnitSyntax
	}
	mult := 0.0
	switch strings.TrimSpace(rest) {
	case "bps", "bit/s":
		mult = 1
	case "kbps", "Kbps", "kbit/s":
		mult = 1e3
	case "Mbps", "mbps", "Mbit/s":
		mult = 1e6
	default:
		return errUnitSyntax
	}
	v := math.Round(n * mult)
	if v >= math.MaxInt64 {
		return errors.New("too large")
	}
	if neg {
		v = -v
	}
	*r = BitRate(v)
	return nil
}

// String writes the rate in kbps or Mbps when they divide it exactly.
func (r BitRate) String() string {
	v := int64(r)
	switch {
	case v != 0 && v%1_000_000 == 0:
		return strconv.FormatInt(v/1_000_000, 10) + "Mbps"
	case v != 0 && v%1000 == 0:
		return strconv.FormatInt(v/1000, 10) + "kbps"
	}
	return strconv.FormatInt(v, 10) + "bps"
}

// MarshalText writes the rate as String does.
func (r BitRate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads the forms a scenario file accepts.
func (r *BitRate) UnmarshalText(t []byte) error { return unmarshalUnit(r, string(t)) }

func (r *BitRate) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)? ?(bps|bit/s|[kK]bps|kbit/s|[Mm]bps|Mbit/s)$`,
		"examples": []string{"5kbps", "375kbps", "1Mbps"}}
}

// Percent is a percentage as written: Percent(10) is "10%".
type Percent float64

// Fraction is the percentage as a fraction: 10% is 0.1.
func (p Percent) Fraction() float64 { return float64(p) / 100 }

func (p *Percent) what() string { return "a percentage such as 10%" }

func (p *Percent) parse(s string) error {
	s = strings.TrimSpace(s)
	body, ok := strings.CutSuffix(s, "%")
	if !ok {
		return errUnitSyntax
	}
	body = strings.TrimSpace(body)
	neg := false
	if rest, ok := strings.CutPrefix(body, "-"); ok {
		neg, body = true, rest
	}
	n, rest, ok := leadingNumber(body)
	if !ok || rest != "" {
		return errUnitSyntax
	}
	if neg {
		n = -n
	}
	*p = Percent(n)
	return nil
}

// String writes the percentage with its % sign.
func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'g', -1, 64) + "%" }

// MarshalText writes the percentage as String does.
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads the forms a scenario file accepts.
func (p *Percent) UnmarshalText(t []byte) error { return unmarshalUnit(p, string(t)) }

func (p *Percent) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)? ?%$`, "examples": []string{"10%", "0.5%"}}
}

// Rate is how often something happens: "2/min", "1/10min", "5/s", "1/h",
// "3/d". N events happen every Per.
type Rate struct {
	N   float64
	Per Duration
}

// PerSecond is the rate in events per second.
func (r Rate) PerSecond() float64 {
	if r.Per <= 0 {
		return 0
	}
	return r.N / time.Duration(r.Per).Seconds()
}

// Interval is the mean time between events.
func (r Rate) Interval() time.Duration {
	if r.N <= 0 {
		return 0
	}
	return time.Duration(float64(r.Per) / r.N)
}

func (r *Rate) what() string { return "a rate such as 2/min, 1/10min or 5/s" }

var ratePeriods = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "second": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute,
	"h": time.Hour, "hour": time.Hour, "d": 24 * time.Hour, "day": 24 * time.Hour,
}

func (r *Rate) parse(s string) error {
	num, den, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return errUnitSyntax
	}
	num = strings.TrimSpace(num)
	neg := false
	if rest, ok := strings.CutPrefix(num, "-"); ok {
		neg, num = true, rest
	}
	n, rest, ok := leadingNumber(num)
	if !ok || rest != "" {
		return errUnitSyntax
	}
	den = strings.TrimSpace(den)
	per, ok := ratePeriods[den]
	if !ok {
		d, err := parseDuration(den)
		if err != nil || strings.HasPrefix(den, "-") {
			return errUnitSyntax
		}
		per = d
	}
	if neg {
		n = -n
	}
	*r = Rate{N: n, Per: Duration(per)}
	return nil
}

// String writes the rate as N/period.
func (r Rate) String() string {
	n := strconv.FormatFloat(r.N, 'g', -1, 64)
	switch time.Duration(r.Per) {
	case time.Second:
		return n + "/s"
	case time.Minute:
		return n + "/min"
	case time.Hour:
		return n + "/h"
	case 24 * time.Hour:
		return n + "/d"
	}
	per := r.Per.String()
	if strings.HasSuffix(per, "m") && !strings.HasSuffix(per, "ms") {
		per += "in" // "1/10min" reads better than "1/10m", and parses the same
	}
	return n + "/" + per
}

// MarshalText writes the rate as String does.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads the forms a scenario file accepts.
func (r *Rate) UnmarshalText(t []byte) error { return unmarshalUnit(r, string(t)) }

func (r *Rate) schema() map[string]any {
	return map[string]any{"type": "string",
		"pattern":  `^-?[0-9]+(\.[0-9]+)? ?/ ?(s|sec|second|m|min|minute|h|hour|d|day|([0-9]+(\.[0-9]+)?(min|ms|s|m|h|d))+)$`,
		"examples": []string{"2/min", "1/10min", "5/s", "1/h"}}
}

// DataPlan is a data budget per period: "5MB/month", "200KB/day". A month is
// 30 days, as the spec's per-month figures are.
type DataPlan struct {
	Size   ByteSize
	Period string // "day", "month" or "year"
}

var planPeriods = map[string]float64{"day": 30, "month": 1, "year": 30.0 / 365}

// PerMonth is the budget in bytes per 30-day month.
func (p DataPlan) PerMonth() float64 { return float64(p.Size) * planPeriods[p.Period] }

func (p *DataPlan) what() string { return "a data plan such as 5MB/month or 200KB/day" }

func (p *DataPlan) parse(s string) error {
	size, period, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return errUnitSyntax
	}
	v, err := parseSize(size)
	if err != nil {
		return err
	}
	period = strings.TrimSpace(period)
	if _, ok := planPeriods[period]; !ok {
		return errUnitSyntax
	}
	*p = DataPlan{Size: ByteSize(v), Period: period}
	return nil
}

// String writes the plan as size/period.
func (p DataPlan) String() string { return p.Size.String() + "/" + p.Period }

// MarshalText writes the plan as String does.
func (p DataPlan) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads the forms a scenario file accepts.
func (p *DataPlan) UnmarshalText(t []byte) error { return unmarshalUnit(p, string(t)) }

func (p *DataPlan) schema() map[string]any {
	return map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)? ?([Bb]|[KkMmGg][Ii]?[Bb]) ?/ ?(day|month|year)$`,
		"examples": []string{"5MB/month", "200KB/day"}}
}

func unmarshalUnit(u unitValue, s string) error {
	if err := u.parse(s); err != nil {
		return fmt.Errorf("must be %s (got %q)", u.what(), s)
	}
	return nil
}

// describe names the unit s is written in when it is not the one expected:
// "a size", "a duration" … or "" when s is none of them.
func describe(s string) string {
	for _, c := range []struct {
		u    unitValue
		name string
	}{
		{new(DataPlan), "a data plan"}, {new(Rate), "a rate"}, {new(Percent), "a percentage"},
		{new(BitRate), "a bit rate"}, {new(ByteSize), "a size"}, {new(Duration), "a duration"},
	} {
		if strings.TrimSpace(s) == "0" {
			return ""
		}
		if c.u.parse(s) == nil {
			return c.name
		}
	}
	return ""
}
