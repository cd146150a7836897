package scenarios

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/catmsim/catmsim/internal/metricdef"
)

//go:generate go test -run ^TestSchemaIsUpToDate$ -update

// JSONSchema returns the JSON Schema (draft 2020-12) of scenario files, for
// editors. It is generated from the same struct tags the decoder reads, so
// the two cannot disagree; scenarios/schema.json is its committed copy.
func JSONSchema() ([]byte, error) {
	root := schemaOf(reflect.TypeFor[Scenario](), nil)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = "https://github.com/catmsim/catmsim/scenarios/schema.json"
	root["title"] = "catmsim scenario"
	root["description"] = "A fleet of simulated cellular IoT devices, what they do, and what they are held to. Check a file with: sim validate <file>."
	props := root["properties"].(map[string]any)
	// What comes from outside the tags: the metric catalogue and name rules.
	th := props["thresholds"].(map[string]any)
	th["propertyNames"] = map[string]any{"pattern": thresholdKeys()}
	th["additionalProperties"] = map[string]any{"type": "array", "minItems": 1,
		"items": map[string]any{"type": "string", "examples": []string{"p(95) < 150KB", "avg < 500ms", "rate < 1%", "count < 10"}}}
	pr := props["profiles"].(map[string]any)
	pr["propertyNames"] = map[string]any{"pattern": nameRE.String()}
	pr["minProperties"] = 1
	props["fleet"].(map[string]any)["minItems"] = 1
	props["name"].(map[string]any)["pattern"] = scenarioNameRE.String()
	props["version"].(map[string]any)["const"] = 1
	root["patternProperties"] = map[string]any{"^x-": map[string]any{"description": "Ignored: a place for YAML anchors the rest of the file refers to."}}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// schemaer is a type with its own schema.
type schemaer interface{ jsonSchema() map[string]any }

func schemaOf(t reflect.Type, f *fieldMeta) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var s map[string]any
	pt := reflect.New(t).Interface()
	switch v := pt.(type) {
	case schemaer:
		s = v.jsonSchema()
	case unitValue:
		s = v.schema()
	default:
		switch t.Kind() {
		case reflect.Struct:
			s = structSchema(t)
		case reflect.Map:
			s = map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), nil)}
		case reflect.Slice:
			s = map[string]any{"type": "array", "items": schemaOf(t.Elem(), nil)}
		case reflect.String:
			s = map[string]any{"type": "string"}
		case reflect.Bool:
			s = map[string]any{"type": "boolean"}
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
			s = map[string]any{"type": "integer"}
			if t.Kind() == reflect.Uint32 || t.Kind() == reflect.Uint64 {
				s["minimum"] = 0
			}
		case reflect.Float64:
			s = map[string]any{"type": "number"}
		case reflect.Interface:
			s = map[string]any{}
		default:
			panic("scenarios: no schema for " + t.String())
		}
	}
	if f == nil {
		return s
	}
	if f.doc != "" {
		s["description"] = f.doc
	}
	if len(f.enum) > 0 && s["type"] == "string" {
		s["enum"] = f.enum
	}
	if s["type"] == "integer" || s["type"] == "number" {
		for _, b := range []struct{ tag, key string }{{f.min, "minimum"}, {f.max, "maximum"}, {f.gt, "exclusiveMinimum"}, {f.lt, "exclusiveMaximum"}} {
			if x, err := strconv.ParseFloat(b.tag, 64); err == nil {
				s[b.key] = x
			}
		}
	}
	return s
}

// structSchema describes a struct; a polymorphic one (with a discriminator)
// gets one alternative per kind, each allowing only the keys of that kind.
func structSchema(t reflect.Type) map[string]any {
	meta := metaOf(t)
	defaults := newDefault(t).Elem()
	props := map[string]any{}
	var required []string
	for _, f := range meta.fields {
		ps := schemaOf(f.typ, f)
		if d, ok := defaultOf(defaults.Field(f.index)); ok && !f.disc {
			ps["default"] = d
		}
		props[f.name] = ps
		if f.req && len(f.only) == 0 {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	df := meta.disc
	if df == nil {
		return s
	}
	defaultKind := defaults.Field(df.index).String()
	if defaultKind != "" {
		props[df.name].(map[string]any)["default"] = defaultKind
	}
	var variants []any
	for _, kind := range df.enum {
		var vreq, forbid []any
		if kind != defaultKind || df.req {
			vreq = append(vreq, df.name)
		}
		kindDefaults := newDefault(t)
		if kd, ok := kindDefaults.Interface().(kindDefaulter); ok {
			kd.setKindDefaults(kind)
		}
		vprops := map[string]any{df.name: map[string]any{"const": kind}}
		for _, f := range meta.fields {
			switch {
			case f.disc:
			case !f.applies(kind):
				forbid = append(forbid, map[string]any{"required": []string{f.name}})
			case len(f.only) > 0:
				if f.req {
					vreq = append(vreq, f.name)
				}
				if d, ok := defaultOf(kindDefaults.Elem().Field(f.index)); ok {
					vprops[f.name] = map[string]any{"default": d}
				}
			}
		}
		v := map[string]any{"title": kind, "properties": vprops}
		if len(vreq) > 0 {
			v["required"] = vreq
		}
		if len(forbid) > 0 {
			v["not"] = map[string]any{"anyOf": forbid}
		}
		variants = append(variants, v)
	}
	s["oneOf"] = variants
	return s
}

// defaultOf is a field's default as JSON, unless it is the zero value.
func defaultOf(v reflect.Value) (any, bool) {
	if v.IsZero() || v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, false
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return nil, false
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil, false
	}
	return out, true
}

func (l *Link) jsonSchema() map[string]any {
	spec := structSchema(reflect.TypeFor[linkSpec]())
	props := spec["properties"].(map[string]any)
	props["base"].(map[string]any)["enum"] = linkBases()
	props["base"].(map[string]any)["default"] = "typical"
	for name, p := range props {
		if name != "base" {
			delete(p.(map[string]any), "default") // they come from the base
		}
	}
	return map[string]any{"oneOf": []any{
		map[string]any{"type": "string", "enum": linkBases(), "description": "A built-in link profile (spec/catm-model.md §7)."},
		spec,
	}}
}

func (fs *Fields) jsonSchema() map[string]any {
	return map[string]any{"type": "object", "additionalProperties": (&Generator{}).jsonSchema()}
}

func (g *Generator) jsonSchema() map[string]any {
	one := func(name string, v map[string]any) map[string]any {
		return map[string]any{"type": "object", "properties": map[string]any{name: v}, "required": []string{name}, "additionalProperties": false}
	}
	return map[string]any{"oneOf": []any{
		map[string]any{"type": "string", "enum": scalarGens},
		one(GenConstant, map[string]any{"description": "A fixed value."}),
		one(GenUniform, described(structSchema(reflect.TypeFor[Uniform]()), "Uniform random in [min, max].")),
		one(GenRandomWalk, described(structSchema(reflect.TypeFor[RandomWalk]()), "Starts at start and moves by up to ± step per message, within [min, max] when set.")),
		one(GenChoice, map[string]any{"type": "array", "minItems": 1, "description": "Values to choose from, uniformly."}),
	}}
}

// thresholdKeys is the pattern of threshold keys: a catalogue metric,
// optionally with tags.
func thresholdKeys() string {
	names := metricdef.Names()
	slices.Sort(names)
	for i, n := range names {
		names[i] = regexp.QuoteMeta(n)
	}
	return `^(` + strings.Join(names, "|") + `)(\{[a-z]+:[^,{}]+(,[a-z]+:[^,{}]+)*\})?$`
}

func described(s map[string]any, doc string) map[string]any {
	s["description"] = doc
	return s
}
