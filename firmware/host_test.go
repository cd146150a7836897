package firmware

import (
	"slices"
	"testing"
)

func TestDecodeProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Property
		ok   bool
	}{
		{"none", "", nil, true},
		{"one, as C writes it with sizeof-1", "temperatureAlert\x00true", []Property{{"temperatureAlert", "true"}}, true},
		{"one, terminated", "a\x00b\x00", []Property{{"a", "b"}}, true},
		{"two", "a\x00b\x00c\x00d", []Property{{"a", "b"}, {"c", "d"}}, true},
		{"empty value", "a\x00\x00", []Property{{"a", ""}}, true},
		{"terminated name without value", "a\x00", nil, false},
		{"name without value", "a", nil, false},
		{"three fields", "a\x00b\x00c", nil, false},
		{"empty name", "\x00b", nil, false},
		{"empty name later", "a\x00b\x00\x00d", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decodeProperties([]byte(tc.in))
			if ok != tc.ok || !slices.Equal(got, tc.want) {
				t.Errorf("decodeProperties(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestEncodePropertiesLeavesOutWhatItCannotCarry(t *testing.T) {
	props := []Property{{"a", "b"}, {"", "x"}, {"n\x00", "v"}, {"k", "v\x00w"}, {"c", ""}}
	n := encodedPropertiesLen(props)
	b := make([]byte, n)
	encodeProperties(b, props)
	if string(b) != "a\x00b\x00c\x00\x00" {
		t.Errorf("encoded %q", b)
	}
	got, ok := decodeProperties(b)
	if want := []Property{{"a", "b"}, {"c", ""}}; !ok || !slices.Equal(got, want) {
		t.Errorf("round trip gave %q, %v; want %q", got, ok, want)
	}
}

// FuzzDecodeProperties checks that any bytes a module passes as properties
// decode without panicking, into no more properties than the bytes allow,
// and that what decodes encodes back to bytes that decode the same.
func FuzzDecodeProperties(f *testing.F) {
	for _, s := range []string{"", "a\x00b", "a\x00b\x00", "a\x00\x00c\x00d", "\x00", "\x00\x00\x00", "a\x00b\x00c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		props, ok := decodeProperties(b)
		if !ok {
			return
		}
		if len(props) > (len(b)+1)/2 {
			t.Fatalf("%d properties from %d bytes", len(props), len(b))
		}
		enc := make([]byte, encodedPropertiesLen(props))
		encodeProperties(enc, props)
		again, ok := decodeProperties(enc)
		if !ok || !slices.Equal(again, props) {
			t.Fatalf("%q decoded to %q, encoded to %q, decoded again to %q, %v", b, props, enc, again, ok)
		}
	})
}
