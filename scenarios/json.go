package scenarios

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// marshalApplicable writes a polymorphic section as JSON with only the keys
// that apply to its kind, in declaration order: a plan printed for an https
// profile shows no MQTT keep-alive.
func marshalApplicable(v reflect.Value) ([]byte, error) {
	meta := metaOf(v.Type())
	kind := ""
	if meta.disc != nil {
		kind = v.Field(meta.disc.index).String()
	}
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, f := range meta.fields {
		fv := v.Field(f.index)
		if !f.applies(kind) || f.omitEmpty && fv.IsZero() {
			continue
		}
		val, err := json.Marshal(fv.Interface())
		if err != nil {
			return nil, err
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		key, _ := json.Marshal(f.name)
		b.Write(key)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MarshalJSON writes the keys that apply to the target's kind.
func (t Target) MarshalJSON() ([]byte, error) { return marshalApplicable(reflect.ValueOf(t)) }

// MarshalJSON writes the keys that apply to the profile's protocol.
func (p Profile) MarshalJSON() ([]byte, error) { return marshalApplicable(reflect.ValueOf(p)) }

// MarshalJSON writes the keys that apply to the payload's kind.
func (p Payload) MarshalJSON() ([]byte, error) { return marshalApplicable(reflect.ValueOf(p)) }

// MarshalJSON writes the keys that apply to the arrival's kind.
func (a Arrival) MarshalJSON() ([]byte, error) { return marshalApplicable(reflect.ValueOf(a)) }

// MarshalJSON writes the keys that apply to the event's kind.
func (e Event) MarshalJSON() ([]byte, error) { return marshalApplicable(reflect.ValueOf(e)) }

// MarshalJSON writes the profile's name and then its keys.
func (p PlanProfile) MarshalJSON() ([]byte, error) {
	body, err := p.Profile.MarshalJSON()
	if err != nil {
		return nil, err
	}
	name, _ := json.Marshal(p.Name)
	out := append([]byte(`{"name":`), name...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}
