package scenarios

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Fields are a JSON payload's fields in the order the file lists them, so
// the bytes a device sends do not depend on map order.
type Fields []Field

// Field is one generated field of a JSON payload.
type Field struct {
	Name string
	Gen  Generator
}

// Generator kinds.
const (
	GenSequence   = "sequence"    // the device's message sequence number, from 0
	GenTimestamp  = "timestamp"   // the send time, RFC 3339 with milliseconds
	GenConstant   = "constant"    // a fixed value
	GenUniform    = "uniform"     // uniform random in [min, max]
	GenRandomWalk = "random_walk" // start, then ± step each message, clamped to [min, max]
	GenChoice     = "choice"      // one of a list, uniformly
)

var scalarGens = []string{GenSequence, GenTimestamp}
var mappingGens = []string{GenConstant, GenUniform, GenRandomWalk, GenChoice}

// Generator makes one field's value for each message. Random generators draw
// from the device's own seeded generator, so a device sends the same values
// in every run with the same seed.
type Generator struct {
	Kind       string
	Constant   any
	Uniform    *Uniform
	RandomWalk *RandomWalk
	Choice     []any
}

// Uniform draws uniformly from [Min, Max], rounded to Decimals places.
type Uniform struct {
	Min      float64 `json:"min" req:"" doc:"Lowest value."`
	Max      float64 `json:"max" req:"" doc:"Highest value."`
	Decimals int     `json:"decimals" min:"0" max:"9" doc:"Decimal places in the payload."`
}

func (u *Uniform) setDefaults() { u.Decimals = 1 }

// RandomWalk starts at Start and moves by a uniform step in [-Step, Step] for
// each message, staying within [Min, Max] when they are set.
type RandomWalk struct {
	Start    float64  `json:"start" req:"" doc:"First value."`
	Step     float64  `json:"step" req:"" gt:"0" doc:"Largest change between two messages."`
	Min      *float64 `json:"min,omitempty" doc:"Lower bound."`
	Max      *float64 `json:"max,omitempty" doc:"Upper bound."`
	Decimals int      `json:"decimals" min:"0" max:"9" doc:"Decimal places in the payload."`
}

func (r *RandomWalk) setDefaults() { r.Decimals = 1 }

func (fs *Fields) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping of field names to generators (got %s)", got(n))
		return
	}
	*fs = nil // the file's fields replace the default ones
	for _, p := range d.pairs(n, path) {
		fp := join(path, p.k.Value)
		v := d.resolve(p.v)
		if v == nil {
			d.add(at(p.k), fp, "has no generator; use %s, or a mapping with one of %s", orList(scalarGens), orList(mappingGens))
			continue
		}
		var g Generator
		d.value(v, fp, reflect.ValueOf(&g).Elem(), nil)
		*fs = append(*fs, Field{Name: p.k.Value, Gen: g})
	}
}

func (g *Generator) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !slices.Contains(scalarGens, n.Value) {
			d.errorf(n, path, "must be %s, or a mapping with one of %s (got %s)%s",
				orList(scalarGens), orList(mappingGens), got(n), suggestion(n.Value, append(scalarGens, mappingGens...)))
			return
		}
		g.Kind = n.Value
		return
	case yaml.MappingNode:
	default:
		d.errorf(n, path, "must be %s, or a mapping with one of %s (got %s)", orList(scalarGens), orList(mappingGens), got(n))
		return
	}
	pairs := d.pairs(n, path)
	if len(pairs) != 1 {
		d.errorf(n, path, "must have exactly one generator, one of %s (got %d keys)", orList(mappingGens), len(pairs))
		return
	}
	k, v := pairs[0].k, pairs[0].v
	gp := join(path, k.Value)
	switch k.Value {
	case GenConstant:
		if d.resolve(v) == nil {
			d.errorf(k, gp, "needs a value")
			return
		}
		g.Constant = d.anyValue(v, gp)
	case GenUniform:
		g.Uniform = &Uniform{}
		g.Uniform.setDefaults()
		d.value(v, gp, reflect.ValueOf(g.Uniform).Elem(), nil)
		if g.Uniform.Min > g.Uniform.Max {
			d.errorf(v, gp, "min (%g) is above max (%g)", g.Uniform.Min, g.Uniform.Max)
		}
	case GenRandomWalk:
		g.RandomWalk = &RandomWalk{}
		g.RandomWalk.setDefaults()
		d.value(v, gp, reflect.ValueOf(g.RandomWalk).Elem(), nil)
		r := g.RandomWalk
		switch {
		case r.Min != nil && r.Max != nil && *r.Min > *r.Max:
			d.errorf(v, gp, "min (%g) is above max (%g)", *r.Min, *r.Max)
		case r.Min != nil && r.Start < *r.Min, r.Max != nil && r.Start > *r.Max:
			d.errorf(v, gp, "start (%g) is outside [min, max]", r.Start)
		}
	case GenChoice:
		rv := d.resolve(v)
		if rv == nil || rv.Kind != yaml.SequenceNode || len(rv.Content) == 0 {
			d.errorf(k, gp, "must be a list of one or more values")
			return
		}
		list, _ := d.anyValue(rv, gp).([]any)
		g.Choice = list
	default:
		d.errorf(k, path, "unknown generator %s; use %s, or a mapping with one of %s%s", clip(k.Value),
			orList(scalarGens), orList(mappingGens), suggestion(k.Value, mappingGens))
		return
	}
	g.Kind = k.Value
}

// MarshalJSON writes the generator as a scenario would.
func (g Generator) MarshalJSON() ([]byte, error) {
	var v any
	switch g.Kind {
	case GenConstant:
		v = map[string]any{g.Kind: g.Constant}
	case GenUniform:
		v = map[string]any{g.Kind: g.Uniform}
	case GenRandomWalk:
		v = map[string]any{g.Kind: g.RandomWalk}
	case GenChoice:
		v = map[string]any{g.Kind: g.Choice}
	default:
		v = g.Kind
	}
	return json.Marshal(v)
}

// MarshalJSON writes the fields as one object, in order.
func (fs Fields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.Gen)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
