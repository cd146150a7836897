package amqpwire

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func mustUUID(t testing.TB, s string) UUID {
	t.Helper()
	u, err := ParseUUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func unhexString(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func symMap(kv ...any) *Map {
	m := &Map{}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i]
		if s, ok := k.(string); ok {
			k = Symbol(s)
		}
		m.Set(k, kv[i+1])
	}
	return m
}

func strMap(kv ...any) *Map {
	m := &Map{}
	for i := 0; i < len(kv); i += 2 {
		m.Set(kv[i], kv[i+1])
	}
	return m
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	mapType   = reflect.TypeFor[*Map]()
	bytesType = reflect.TypeFor[[]byte]()
)

// diff compares decoded structures: AMQP values (in interface fields, *Map
// and []byte) with Equal, everything else field by field. It returns "" if
// a and b match, or the path of the first difference.
func diff(a, b any) string {
	return diffValue(reflect.ValueOf(a), reflect.ValueOf(b), "")
}

func diffValue(a, b reflect.Value, path string) string {
	if !a.IsValid() || !b.IsValid() {
		if a.IsValid() != b.IsValid() {
			return path + ": one side is nil"
		}
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %s != %s", path, a.Type(), b.Type())
	}
	switch {
	case a.Type() == timeType || a.Type() == mapType || a.Type() == bytesType:
		if !Equal(a.Interface(), b.Interface()) {
			return fmt.Sprintf("%s: %v != %v", path, show(a), show(b))
		}
		return ""
	}
	switch a.Kind() {
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: %v != %v", path, show(a), show(b))
			}
			return ""
		}
		if a.Elem().Type() != b.Elem().Type() {
			return fmt.Sprintf("%s: %T != %T", path, a.Elem().Interface(), b.Elem().Interface())
		}
		if _, ok := TypeOf(a.Elem().Interface()); ok {
			if !Equal(a.Elem().Interface(), b.Elem().Interface()) {
				return fmt.Sprintf("%s: %v != %v", path, show(a), show(b))
			}
			return ""
		}
		return diffValue(a.Elem(), b.Elem(), path)
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return fmt.Sprintf("%s: %v != %v", path, show(a), show(b))
			}
			return ""
		}
		return diffValue(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			if d := diffValue(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d != %d", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if d := diffValue(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !a.CanInterface() {
		return ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return fmt.Sprintf("%s: %v != %v", path, show(a), show(b))
	}
	return ""
}

func show(v reflect.Value) string {
	if !v.IsValid() || !v.CanInterface() {
		return "<invalid>"
	}
	x := v.Interface()
	if m, ok := x.(*Map); ok && m != nil {
		var parts []string
		for k, v := range m.All() {
			parts = append(parts, fmt.Sprintf("%#v: %#v", k, v))
		}
		return "Map{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("%#v", x)
}

// countingWriter records the size of every Write call.
type countingWriter struct {
	bytes.Buffer
	writes []int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}
