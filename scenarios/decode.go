package scenarios

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The decoder walks yaml.Node trees into the schema structs by reflection,
// driven by the same struct tags the JSON Schema generator reads:
//
//	json:"name"    the key (snake_case)
//	doc:"…"        its description
//	req:""         required (when its variant applies)
//	disc:""        the discriminator of a polymorphic section (kind, protocol)
//	only:"a,b"     applies only when the discriminator is a or b
//	enum:"a,b"     the values a string may take
//	min, max       inclusive bounds, written in the field's own unit ("1s")
//	gt, lt         exclusive bounds
//
// Defaults are set before decoding (setDefaults, and setKindDefaults once the
// discriminator is known), so a key that is absent keeps its default and the
// positions map tells what the file set. Every problem is collected with its
// place; decoding never stops at the first.

// defaulter fills a struct's defaults before a mapping is decoded into it.
type defaulter interface{ setDefaults() }

// kindDefaulter fills defaults that depend on the discriminator.
type kindDefaulter interface{ setKindDefaults(kind string) }

// nodeDecoder is a type that decodes itself (a scalar-or-mapping section, an
// ordered mapping).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// maxNodes bounds how many YAML nodes one file may expand to through aliases,
// and maxDepth how deeply values may nest; both are far beyond any scenario.
const (
	maxNodes = 200_000
	maxDepth = 64
)

type decoder struct {
	diags
	pos      map[string]pos    // every path the file sets → the place of its value
	raw      map[string]string // scalar paths → the text the file wrote
	failed   map[string]bool   // paths whose value could not be decoded
	nodes    int
	depth    int
	overflow bool
}

func newDecoder(file string) *decoder {
	return &decoder{diags: diags{file: file}, pos: map[string]pos{}, raw: map[string]string{}, failed: map[string]bool{}}
}

func at(n *yaml.Node) pos { return pos{n.Line, n.Column} }

// add records an error and that the value at path is not usable, so later
// checks of that value stay quiet: one mistake, one error.
func (d *decoder) add(at pos, path, format string, args ...any) {
	d.failed[path] = true
	d.diags.add(at, path, format, args...)
}

// join appends a mapping key to a path: a.b for plain keys, a["x{y}"] for others.
func join(path, key string) string {
	if plainKey.MatchString(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// enter counts a node against the budgets; false means stop descending.
func (d *decoder) enter(n *yaml.Node, path string) bool {
	d.nodes++
	if d.nodes > maxNodes || d.depth > maxDepth {
		if !d.overflow {
			d.overflow = true
			d.add(at(n), path, "the file nests or expands (through aliases) beyond %d levels or %d values; a scenario is far smaller", maxDepth, maxNodes)
		}
		return false
	}
	return true
}

// resolve follows aliases; it returns nil for a null value.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops > 100 {
			return nil
		}
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return d.resolve(n.Content[0])
	}
	return n
}

// got describes a node for "(got …)".
func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(clip(n.Value))
	}
	return "nothing"
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

type pair struct{ k, v *yaml.Node }

// pairs returns a mapping's entries with YAML merge keys (<<) applied: merged
// entries first, overridden by the mapping's own. Duplicate keys are errors.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	// Every entry counts against the budget: merging one big mapping through
	// many aliases must not cost more than the file could spell out.
	d.nodes += len(n.Content) / 2
	if !d.enter(n, path) {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(at(k), path, "keys must be plain words (got %s)", got(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(at(k), join(path, k.Value), "set twice (first at %d:%d)", first.Line, first.Column)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, v})
	}
	out := own
	for _, p := range merged {
		if _, ok := seen[p.k.Value]; !ok {
			seen[p.k.Value] = p.k
			out = append(out, p)
		}
	}
	return out
}

// mergeSources reads the value of a << key: a mapping, an alias of one, or a
// list of them (earlier ones win).
func (d *decoder) mergeSources(v *yaml.Node, path string) []pair {
	v = d.resolve(v)
	if v == nil {
		return nil
	}
	if !d.enter(v, path) {
		return nil
	}
	d.depth++
	defer func() { d.depth-- }()
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, s := range v.Content {
			for _, p := range d.mergeSources(s, path) {
				if !seen[p.k.Value] {
					seen[p.k.Value] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.add(at(v), path, "<< merges a mapping or a list of mappings (got %s)", got(v))
	return nil
}

// fieldMeta is one struct field as the tags describe it.
type fieldMeta struct {
	index      int
	name       string
	doc        string
	req, disc  bool
	only, enum []string
	min, max   string
	gt, lt     string
	typ        reflect.Type
	omitEmpty  bool
}

type structMeta struct {
	fields []*fieldMeta
	byName map[string]*fieldMeta
	disc   *fieldMeta
}

var metas sync.Map // reflect.Type → *structMeta

func metaOf(t reflect.Type) *structMeta {
	if m, ok := metas.Load(t); ok {
		return m.(*structMeta)
	}
	m := &structMeta{byName: map[string]*fieldMeta{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !sf.IsExported() || name == "-" || name == "" {
			continue
		}
		f := &fieldMeta{index: i, name: name, doc: sf.Tag.Get("doc"), typ: sf.Type,
			min: sf.Tag.Get("min"), max: sf.Tag.Get("max"), gt: sf.Tag.Get("gt"), lt: sf.Tag.Get("lt"),
			omitEmpty: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")}
		_, f.req = sf.Tag.Lookup("req")
		_, f.disc = sf.Tag.Lookup("disc")
		if s := sf.Tag.Get("only"); s != "" {
			f.only = strings.Split(s, ",")
		}
		if s := sf.Tag.Get("enum"); s != "" {
			f.enum = strings.Split(s, ",")
		}
		m.fields = append(m.fields, f)
		m.byName[name] = f
		if f.disc {
			m.disc = f
		}
	}
	metas.Store(t, m)
	return m
}

func (f *fieldMeta) applies(kind string) bool {
	return kind == "" || len(f.only) == 0 || slices.Contains(f.only, kind)
}

// value decodes n into v, which is addressable.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value, f *fieldMeta) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if !d.enter(n, path) {
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	d.pos[path] = at(n)
	if n.Kind == yaml.ScalarNode {
		d.raw[path] = n.Value
	}

	if v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct {
		if v.IsNil() {
			v.Set(newDefault(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
		nd.decodeNode(d, n, path)
		return
	}
	if u, ok := v.Addr().Interface().(unitValue); ok {
		d.unit(n, path, u, f)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.value(n, path, e.Elem(), f)
		v.Set(e)
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.Slice:
		d.sequence(n, path, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.add(at(n), path, "must be a string (got %s)", got(n))
			return
		}
		if f != nil && len(f.enum) > 0 && !slices.Contains(f.enum, n.Value) {
			d.add(at(n), path, "must be %s (got %s)%s", orList(f.enum), got(n), suggestion(n.Value, f.enum))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || err != nil {
			d.add(at(n), path, "must be true or false (got %s)", got(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32:
		d.integer(n, path, v, f)
	case reflect.Float64:
		x, ok := d.float(n, path)
		if !ok {
			return
		}
		if f != nil && !d.bounds(n, path, f, x, func(s string) (float64, bool) {
			b, err := strconv.ParseFloat(s, 64)
			return b, err == nil
		}) {
			return
		}
		v.SetFloat(x)
	case reflect.Interface:
		v.Set(reflect.ValueOf(d.anyValue(n, path)))
	default:
		panic("scenarios: no decoder for " + v.Type().String())
	}
}

// newDefault returns a pointer to a new T with its defaults set, those of its
// default kind included.
func newDefault(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if df, ok := p.Interface().(defaulter); ok {
		df.setDefaults()
	}
	if kd, ok := p.Interface().(kindDefaulter); ok {
		if m := metaOf(t); m.disc != nil {
			if kind := p.Elem().Field(m.disc.index).String(); kind != "" {
				kd.setKindDefaults(kind)
			}
		}
	}
	return p
}

func (d *decoder) integer(n *yaml.Node, path string, v reflect.Value, f *fieldMeta) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.add(at(n), path, "must be a whole number (got %s)", got(n))
		return
	}
	text := strings.ReplaceAll(n.Value, "_", "")
	var lo, hi float64
	var x float64
	switch v.Kind() {
	case reflect.Uint64, reflect.Uint32:
		u, err := strconv.ParseUint(strings.TrimPrefix(text, "+"), 0, v.Type().Bits())
		if err != nil {
			d.add(at(n), path, "must be a whole number from 0 to %d (got %s)", uint64(math.MaxUint64)>>(64-v.Type().Bits()), got(n))
			return
		}
		if f != nil && !d.bounds(n, path, f, float64(u), parseBound) {
			return
		}
		v.SetUint(u)
		return
	case reflect.Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	default:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	i, err := strconv.ParseInt(text, 0, v.Type().Bits())
	if err != nil {
		d.add(at(n), path, "must be a whole number from %.0f to %.0f (got %s)", lo, hi, got(n))
		return
	}
	x = float64(i)
	if f != nil && !d.bounds(n, path, f, x, parseBound) {
		return
	}
	v.SetInt(i)
}

func parseBound(s string) (float64, bool) {
	b, err := strconv.ParseFloat(s, 64)
	return b, err == nil
}

func (d *decoder) float(n *yaml.Node, path string) (float64, bool) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!float" {
		d.add(at(n), path, "must be a number (got %s)", got(n))
		return 0, false
	}
	x, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
		d.add(at(n), path, "must be a finite number (got %s)", got(n))
		return 0, false
	}
	return x, true
}

// unit decodes a unit-typed scalar and checks the field's bounds.
func (d *decoder) unit(n *yaml.Node, path string, u unitValue, f *fieldMeta) {
	if n.Kind != yaml.ScalarNode {
		d.add(at(n), path, "must be %s (got %s)", u.what(), got(n))
		return
	}
	if err := u.parse(n.Value); err != nil {
		if err == errUnitSyntax {
			other := describe(n.Value)
			switch {
			case other != "":
				d.add(at(n), path, "must be %s (got %s, which is %s)", u.what(), got(n), other)
			case isNumber(n.Value):
				d.add(at(n), path, "must be %s, with its unit (got %s)", u.what(), got(n))
			default:
				d.add(at(n), path, "must be %s (got %s)", u.what(), got(n))
			}
		} else {
			d.add(at(n), path, "must be %s (got %s: %v)", u.what(), got(n), err)
		}
		return
	}
	if f == nil {
		return
	}
	d.bounds(n, path, f, quantity(u), func(s string) (float64, bool) {
		b := reflect.New(reflect.TypeOf(u).Elem()).Interface().(unitValue)
		if b.parse(s) != nil {
			return 0, false
		}
		return quantity(b), true
	})
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil
}

// quantity is a unit value as a number that orders the same way.
func quantity(u unitValue) float64 {
	switch v := u.(type) {
	case *Duration:
		return float64(*v)
	case *ByteSize:
		return float64(*v)
	case *BitRate:
		return float64(*v)
	case *Percent:
		return float64(*v)
	case *Rate:
		return v.PerSecond()
	case *DataPlan:
		return v.PerMonth()
	}
	panic("scenarios: no quantity for " + reflect.TypeOf(u).String())
}

// bounds checks x against the field's min, max, gt and lt tags, which parse
// gives a value in x's terms. It reports the first violated bound.
func (d *decoder) bounds(n *yaml.Node, path string, f *fieldMeta, x float64, parse func(string) (float64, bool)) bool {
	check := func(tag string, ok func(b float64) bool, format string) bool {
		if tag == "" {
			return true
		}
		b, parsed := parse(tag)
		if !parsed {
			panic("scenarios: bad bound " + tag + " on " + f.name)
		}
		if ok(b) {
			return true
		}
		d.add(at(n), path, format+" (got %s)", tag, got(n))
		return false
	}
	if f.gt == "0" || f.gt == "0s" || f.gt == "0B" {
		if !(x > 0) {
			d.add(at(n), path, "must be positive (got %s)", got(n))
			return false
		}
	} else if !check(f.gt, func(b float64) bool { return x > b }, "must be more than %s") {
		return false
	}
	return check(f.min, func(b float64) bool { return x >= b }, "must be at least %s") &&
		check(f.max, func(b float64) bool { return x <= b }, "must be at most %s") &&
		check(f.lt, func(b float64) bool { return x < b }, "must be less than %s")
}

// structure decodes a mapping into a struct.
func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	meta := metaOf(v.Type())
	if n.Kind != yaml.MappingNode {
		names := make([]string, 0, len(meta.fields))
		for _, f := range meta.fields {
			names = append(names, f.name)
		}
		if len(names) > 4 {
			names = append(names[:4], "…")
		}
		d.add(at(n), path, "must be a mapping with keys such as %s (got %s)", strings.Join(names, ", "), got(n))
		return
	}
	pairs := d.pairs(n, path)
	kind, kindKnown := "", false
	seen := map[string]bool{}
	if df := meta.disc; df != nil {
		for _, p := range pairs {
			if p.k.Value == df.name && d.resolve(p.v) != nil {
				seen[df.name] = true
				before := len(d.errs)
				d.value(p.v, join(path, df.name), v.Field(df.index), df)
				kindKnown = len(d.errs) == before
			}
		}
		if !seen[df.name] {
			kindKnown = !df.req
		}
		kind = v.Field(df.index).String()
		if kindKnown {
			// Start again from the defaults of this kind: the struct may hold
			// another kind's (the default kind's) until now.
			fresh := reflect.New(v.Type())
			if dft, ok := fresh.Interface().(defaulter); ok {
				dft.setDefaults()
			}
			fresh.Elem().Field(meta.disc.index).Set(v.Field(meta.disc.index))
			if kd, ok := fresh.Interface().(kindDefaulter); ok {
				kd.setKindDefaults(kind)
			}
			v.Set(fresh.Elem())
		}
		if !kindKnown {
			kind = "" // check no key against a kind that is wrong or missing
		}
	}
	for _, p := range pairs {
		name := p.k.Value
		f := meta.byName[name]
		switch {
		case f == nil && path == "" && strings.HasPrefix(name, "x-"):
			continue // extension keys hold anchors for the rest of the file
		case f == nil:
			d.unknownKey(p.k, path, meta)
			continue
		case f.disc:
			continue
		case !f.applies(kind):
			d.add(at(p.k), join(path, name), "applies only when %s is %s (here it is %s)", meta.disc.name, orList(f.only), kind)
			continue
		}
		if d.resolve(p.v) == nil {
			continue // null: as if absent
		}
		seen[name] = true
		d.value(p.v, join(path, name), v.Field(f.index), f)
	}
	for _, f := range meta.fields {
		if f.req && !seen[f.name] && f.applies(kind) && (kind != "" || len(f.only) == 0 || meta.disc == nil) {
			d.add(at(n), join(path, f.name), "is required")
		}
	}
}

// unknownKey reports a key the struct does not have, suggesting the nearest
// one.
func (d *decoder) unknownKey(k *yaml.Node, path string, meta *structMeta) {
	names := make([]string, len(meta.fields))
	for i, f := range meta.fields {
		names[i] = f.name
	}
	if c := closest(k.Value, names); c != "" {
		d.add(at(k), path, "unknown key %s — did you mean %s?", clip(k.Value), c)
		return
	}
	d.add(at(k), path, "unknown key %s; the keys here are %s", clip(k.Value), strings.Join(names, ", "))
}

// mapping decodes a mapping into a map[string]T.
func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.add(at(n), path, "must be a mapping of names to values (got %s)", got(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	et := v.Type().Elem()
	for _, p := range d.pairs(n, path) {
		e := reflect.New(et).Elem()
		if et.Kind() == reflect.Pointer && et.Elem().Kind() == reflect.Struct {
			e.Set(newDefault(et.Elem()))
		}
		kp := join(path, p.k.Value)
		if d.resolve(p.v) == nil {
			d.pos[kp] = at(p.k)
			d.add(at(p.k), kp, "has no value")
			continue
		}
		d.value(p.v, kp, e, nil)
		v.SetMapIndex(reflect.ValueOf(p.k.Value), e)
	}
}

// sequence decodes a list into a slice.
func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.add(at(n), path, "must be a list (got %s)", got(n))
		return
	}
	et := v.Type().Elem()
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, c := range n.Content {
		e := reflect.New(et).Elem()
		if et.Kind() == reflect.Pointer && et.Elem().Kind() == reflect.Struct {
			e.Set(newDefault(et.Elem()))
		}
		if d.resolve(c) == nil {
			d.add(at(c), index(path, i), "is empty")
			continue
		}
		d.value(c, index(path, i), e, nil)
		s = reflect.Append(s, e)
	}
	v.Set(s)
}

// anyValue turns a node into a JSON-compatible value: map[string]any, []any,
// string, int64, float64, bool or nil.
func (d *decoder) anyValue(n *yaml.Node, path string) any {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	if !d.enter(n, path) {
		return nil
	}
	d.depth++
	defer func() { d.depth-- }()
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, p := range d.pairs(n, path) {
			m[p.k.Value] = d.anyValue(p.v, join(path, p.k.Value))
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			s = append(s, d.anyValue(c, index(path, i)))
		}
		return s
	}
	switch n.ShortTag() {
	case "!!bool":
		if b, err := strconv.ParseBool(n.Value); err == nil {
			return b
		}
	case "!!int":
		if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return i
		}
		fallthrough
	case "!!float":
		x, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			d.add(at(n), path, "must be a finite number, as JSON has no other (got %s)", got(n))
			return nil
		}
		return x
	}
	return n.Value
}

// suggestion returns " — did you mean x?" when one candidate is close to s.
func suggestion(s string, candidates []string) string {
	if c := closest(s, candidates); c != "" {
		return " — did you mean " + c + "?"
	}
	return ""
}

func orList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// closest returns the candidate nearest to s, if it differs only in case, '-'
// and '_', or is the single nearest within two edits; else "".
func closest(s string, candidates []string) string {
	norm := func(x string) string {
		return strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(x))
	}
	for _, c := range candidates {
		if norm(c) == norm(s) {
			return c
		}
	}
	best, bestD, ties := "", 3, 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), c)
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

// editDistance is the Levenshtein distance between a and b, giving up (3) as
// soon as it must exceed 2.
func editDistance(a, b string) int {
	if l := len(a) - len(b); l > 2 || l < -2 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := i
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

// errorf is a convenience for custom decoders.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.add(at(n), path, "%s", fmt.Sprintf(format, args...))
}
