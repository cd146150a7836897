package metricdef

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Agg is a threshold's aggregation.
type Agg uint8

const (
	AggAvg Agg = iota + 1
	AggMin
	AggMax
	AggMed
	AggPercentile // p(N)
	AggCount
	AggRate
	AggValue
)

var aggNames = map[Agg]string{
	AggAvg: "avg", AggMin: "min", AggMax: "max", AggMed: "med", AggPercentile: "p(N)",
	AggCount: "count", AggRate: "rate", AggValue: "value",
}

func (a Agg) String() string {
	if s, ok := aggNames[a]; ok {
		return s
	}
	return "invalid"
}

// MarshalText writes the aggregation's name ("p(N)" for percentiles; the
// percentile itself is a separate field).
func (a Agg) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// aggsFor lists the aggregations that fit each metric type, in the order error
// messages name them.
var aggsFor = map[Type][]Agg{
	Trend:   {AggAvg, AggMin, AggMax, AggMed, AggPercentile},
	Counter: {AggCount, AggRate},
	Rate:    {AggRate},
}

// Op is a comparison.
type Op uint8

const (
	OpLT Op = iota + 1
	OpLE
	OpGT
	OpGE
	OpEQ
	OpNE
)

var opNames = map[Op]string{OpLT: "<", OpLE: "<=", OpGT: ">", OpGE: ">=", OpEQ: "==", OpNE: "!="}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "invalid"
}

// MarshalText writes the operator.
func (o Op) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// ValueUnit is the kind of unit an expression's value was written in.
type ValueUnit uint8

const (
	Plain   ValueUnit = iota // a bare number, already in the metric's base unit
	Size                     // B, KB, MB, GB
	Time                     // ms, s, m, h
	Percent                  // %
)

func (u ValueUnit) String() string {
	switch u {
	case Plain:
		return "a plain number"
	case Size:
		return "a size"
	case Time:
		return "a duration"
	case Percent:
		return "a percentage"
	}
	return "invalid"
}

// Key names what a threshold is about: a metric, optionally narrowed to the
// samples with some tag values.
type Key struct {
	Metric string
	Tags   map[string]string
}

// String writes the key in its canonical form, tags sorted.
func (k Key) String() string {
	if len(k.Tags) == 0 {
		return k.Metric
	}
	var b strings.Builder
	b.WriteString(k.Metric)
	b.WriteByte('{')
	for i, t := range slices.Sorted(maps.Keys(k.Tags)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t)
		b.WriteByte(':')
		b.WriteString(k.Tags[t])
	}
	b.WriteByte('}')
	return b.String()
}

// Expr is a parsed threshold expression, not yet bound to a metric.
type Expr struct {
	Agg        Agg
	Percentile float64 // for AggPercentile, in [0, 100]
	Op         Op
	Value      float64 // in base units: bytes, seconds, a fraction for %
	Unit       ValueUnit
	Source     string // the expression as written
}

// Threshold is an expression bound to the metric it is about, checked to fit it.
type Threshold struct {
	Metric     string            `json:"metric"`
	Tags       map[string]string `json:"tags,omitempty"`
	Agg        Agg               `json:"agg"`
	Percentile float64           `json:"percentile,omitempty"`
	Op         Op                `json:"op"`
	Value      float64           `json:"value"`
	Source     string            `json:"source"`
}

// Key is the threshold's key.
func (t Threshold) Key() Key { return Key{Metric: t.Metric, Tags: t.Tags} }

// String writes the threshold as "key: expression".
func (t Threshold) String() string { return t.Key().String() + ": " + t.Source }

// Holds reports whether an observed aggregate satisfies the threshold. A NaN
// observation (no samples) never holds.
func (t Threshold) Holds(observed float64) bool {
	if math.IsNaN(observed) {
		return false
	}
	switch t.Op {
	case OpLT:
		return observed < t.Value
	case OpLE:
		return observed <= t.Value
	case OpGT:
		return observed > t.Value
	case OpGE:
		return observed >= t.Value
	case OpEQ:
		return observed == t.Value
	case OpNE:
		return observed != t.Value
	}
	return false
}

// maxKeyLen bounds what ParseKey and ParseExpr look at; a real one is tens of
// bytes long.
const maxLen = 512

// ParseKey reads a threshold key, "metric" or "metric{tag:value,...}", and
// checks that the metric exists, that it has each tag, and that closed tags
// (protocol, class, direction) have a value they can take.
func ParseKey(s string) (Key, error) {
	if len(s) > maxLen {
		return Key{}, fmt.Errorf("threshold key is %d bytes long; the limit is %d", len(s), maxLen)
	}
	name, rest, hasTags := strings.Cut(strings.TrimSpace(s), "{")
	name = strings.TrimSpace(name)
	m, ok := Lookup(name)
	if !ok {
		if name == "" {
			return Key{}, errors.New("threshold key names no metric")
		}
		if c := closest(name, Names()); c != "" {
			return Key{}, fmt.Errorf("unknown metric %q — did you mean %s?", name, c)
		}
		return Key{}, fmt.Errorf("unknown metric %q; the metrics are %s", name, strings.Join(Names(), ", "))
	}
	k := Key{Metric: name}
	if !hasTags {
		return k, nil
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok || strings.ContainsAny(body, "{}") {
		return Key{}, fmt.Errorf("threshold key %q: tags go in one pair of braces, as in %s{group:field}", s, name)
	}
	k.Tags = map[string]string{}
	for _, pair := range strings.Split(body, ",") {
		tag, val, ok := strings.Cut(pair, ":")
		tag, val = strings.TrimSpace(tag), strings.TrimSpace(val)
		if !ok || tag == "" || val == "" {
			return Key{}, fmt.Errorf("threshold key %q: each tag is written tag:value (got %q)", s, strings.TrimSpace(pair))
		}
		if !m.HasTag(tag) {
			return Key{}, fmt.Errorf("metric %s has no tag %q; its tags are %s", name, tag, strings.Join(m.Tags, ", "))
		}
		if _, dup := k.Tags[tag]; dup {
			return Key{}, fmt.Errorf("threshold key %q names tag %s twice", s, tag)
		}
		if vals := tagValues[tag]; vals != nil && !slices.Contains(vals, val) {
			hint := ""
			if c := closest(val, vals); c != "" {
				hint = " — did you mean " + c + "?"
			}
			return Key{}, fmt.Errorf("tag %s cannot be %q; it is one of %s%s", tag, val, strings.Join(vals, ", "), hint)
		}
		k.Tags[tag] = val
	}
	return k, nil
}

// ParseExpr reads a threshold expression such as "p(95) < 150KB". It checks
// the grammar only; Key.Threshold checks that it fits a metric.
func ParseExpr(s string) (Expr, error) {
	if len(s) > maxLen {
		return Expr{}, fmt.Errorf("threshold is %d bytes long; the limit is %d", len(s), maxLen)
	}
	e := Expr{Source: strings.TrimSpace(s)}
	p := &lexer{s: e.Source}
	if p.s == "" {
		return Expr{}, errors.New("threshold is empty; write it as aggregation op value, e.g. \"p(95) < 2s\"")
	}
	word := p.word()
	switch word {
	case "avg":
		e.Agg = AggAvg
	case "min":
		e.Agg = AggMin
	case "max":
		e.Agg = AggMax
	case "med":
		e.Agg = AggMed
	case "count":
		e.Agg = AggCount
	case "rate":
		e.Agg = AggRate
	case "value":
		e.Agg = AggValue
	case "p":
		p.blanks()
		if !p.eat("(") {
			return Expr{}, p.errorf("expected \"(\" after p, as in p(95)")
		}
		p.blanks()
		n, ok := p.number()
		if !ok {
			return Expr{}, p.errorf("expected a percentile in p(…), as in p(95)")
		}
		p.blanks()
		if !p.eat(")") {
			return Expr{}, p.errorf("expected \")\" to close p(%s", strconv.FormatFloat(n, 'g', -1, 64))
		}
		if !(n >= 0 && n <= 100) {
			return Expr{}, fmt.Errorf("threshold %q: a percentile is between 0 and 100 (got %g)", e.Source, n)
		}
		e.Agg, e.Percentile = AggPercentile, n
	default:
		hint := ""
		if strings.HasPrefix(word, "p") && len(word) > 1 && word[1] >= '0' && word[1] <= '9' {
			hint = " — write percentiles as p(" + word[1:] + ")"
		} else if c := closest(word, []string{"avg", "min", "max", "med", "count", "rate", "value"}); c != "" {
			hint = " — did you mean " + c + "?"
		}
		if word == "" {
			return Expr{}, fmt.Errorf("threshold %q does not start with an aggregation (avg, min, max, med, p(N), count, rate or value)", e.Source)
		}
		return Expr{}, fmt.Errorf("threshold %q: unknown aggregation %q%s; use avg, min, max, med, p(N), count, rate or value", e.Source, word, hint)
	}
	p.blanks()
	switch {
	case p.eat("<="):
		e.Op = OpLE
	case p.eat(">="):
		e.Op = OpGE
	case p.eat("=="):
		e.Op = OpEQ
	case p.eat("!="):
		e.Op = OpNE
	case p.eat("<"):
		e.Op = OpLT
	case p.eat(">"):
		e.Op = OpGT
	default:
		return Expr{}, p.errorf("expected an operator (<, <=, >, >=, == or !=)")
	}
	p.blanks()
	n, ok := p.number()
	if !ok {
		return Expr{}, p.errorf("expected a number after %s", e.Op)
	}
	p.blanks()
	unit := p.rest()
	v, u, err := applyUnit(n, unit)
	if err != nil {
		return Expr{}, fmt.Errorf("threshold %q: %w", e.Source, err)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return Expr{}, fmt.Errorf("threshold %q: the value is out of range", e.Source)
	}
	e.Value, e.Unit = v, u
	return e, nil
}

// applyUnit converts n written in unit to base units.
func applyUnit(n float64, unit string) (float64, ValueUnit, error) {
	switch unit {
	case "":
		return n, Plain, nil
	case "%":
		return n / 100, Percent, nil
	case "ms":
		return n / 1000, Time, nil
	case "s":
		return n, Time, nil
	case "m":
		return n * 60, Time, nil
	case "h":
		return n * 3600, Time, nil
	}
	switch strings.ToUpper(unit) {
	case "B":
		return n, Size, nil
	case "KB":
		return n * 1024, Size, nil
	case "MB":
		return n * 1024 * 1024, Size, nil
	case "GB":
		return n * 1024 * 1024 * 1024, Size, nil
	}
	return 0, 0, fmt.Errorf("unknown unit %q; use B, KB, MB, GB (1024-based), ms, s, m, h or %%", unit)
}

// Threshold binds an expression to the key's metric, checking that its
// aggregation fits the metric's type and its unit the metric's unit.
func (k Key) Threshold(e Expr) (Threshold, error) {
	m, ok := Lookup(k.Metric)
	if !ok {
		return Threshold{}, fmt.Errorf("unknown metric %q", k.Metric)
	}
	fits := aggsFor[m.Type]
	if !slices.Contains(fits, e.Agg) {
		names := make([]string, len(fits))
		for i, a := range fits {
			names[i] = a.String()
		}
		what := e.Agg.String()
		if e.Agg == AggValue {
			what = "value (which is for gauges)"
		}
		return Threshold{}, fmt.Errorf("%s is a %s: use %s, not %s", m.Name, m.Type, orList(names), what)
	}
	switch {
	case e.Unit == Size && m.Unit != Bytes, e.Unit == Time && m.Unit != Seconds,
		e.Unit == Percent && m.Unit != Ratio:
		return Threshold{}, fmt.Errorf("%s is in %s, but %q is %s", m.Name, m.Unit, e.Source, e.Unit)
	case e.Unit != Plain && e.Agg == AggRate && m.Type == Counter:
		return Threshold{}, fmt.Errorf("rate of %s is per second: write a plain number (got %q)", m.Name, e.Source)
	case e.Unit != Plain && e.Agg == AggCount:
		return Threshold{}, fmt.Errorf("count of %s is a plain number (got %q)", m.Name, e.Source)
	case m.Type == Rate && !(e.Value >= 0 && e.Value <= 1):
		return Threshold{}, fmt.Errorf("%s is a fraction from 0 to 1: write it as such or as a percentage, e.g. 1%% (got %q)", m.Name, e.Source)
	}
	return Threshold{
		Metric: k.Metric, Tags: k.Tags, Agg: e.Agg, Percentile: e.Percentile,
		Op: e.Op, Value: e.Value, Source: e.Source,
	}, nil
}

// Parse reads a key and an expression and binds them.
func Parse(key, expr string) (Threshold, error) {
	k, err := ParseKey(key)
	if err != nil {
		return Threshold{}, err
	}
	e, err := ParseExpr(expr)
	if err != nil {
		return Threshold{}, err
	}
	return k.Threshold(e)
}

func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// lexer walks an expression.
type lexer struct {
	s string
	i int
}

func (p *lexer) blanks() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *lexer) eat(tok string) bool {
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

// word reads letters and digits.
func (p *lexer) word() string {
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			break
		}
		p.i++
	}
	return p.s[start:p.i]
}

// number reads a decimal number with an optional sign, fraction and exponent.
func (p *lexer) number() (float64, bool) {
	start := p.i
	if p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] == '+') {
		p.i++
	}
	digits := p.digits()
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		digits += p.digits()
	}
	if digits == 0 {
		p.i = start
		return 0, false
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		save := p.i
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] == '+') {
			p.i++
		}
		if p.digits() == 0 {
			p.i = save
		}
	}
	n, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil {
		// Only overflow gets here: the text is a well-formed number.
		return math.Inf(1), true
	}
	return n, true
}

func (p *lexer) digits() int {
	n := 0
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *lexer) rest() string {
	r := strings.TrimRight(p.s[p.i:], " \t")
	p.i = len(p.s)
	return r
}

func (p *lexer) errorf(format string, args ...any) error {
	at := p.s[p.i:]
	where := "at the end"
	if at != "" {
		where = fmt.Sprintf("at %q", at)
	}
	return fmt.Errorf("threshold %q: %s %s", p.s, fmt.Sprintf(format, args...), where)
}
