package amqpwire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"
)

// Symbol is an AMQP symbol: an ASCII name such as a descriptor, an error
// condition or an annotation key. It is a distinct Go type so that a symbol
// and a string with the same text stay distinct AMQP values.
type Symbol string

// Char is an AMQP char: one UTF-32 code point.
type Char rune

// Decimal32, Decimal64 and Decimal128 hold IEEE 754 decimal values in their
// encoded (big-endian) form. The codec carries them without interpreting them.
type (
	Decimal32  [4]byte
	Decimal64  [8]byte
	Decimal128 [16]byte
)

// UUID is an AMQP uuid (RFC 4122 bytes, network order).
type UUID [16]byte

// String returns the canonical lowercase 8-4-4-4-12 form.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// uuidHex holds the offset of each byte's two hex digits in the
// canonical form.
var uuidHex = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// ParseUUID parses the canonical 8-4-4-4-12 form in either letter case.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("parsing uuid %q: want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	for j, i := range uuidHex {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return UUID{}, fmt.Errorf("parsing uuid %q: %q is not a hex digit pair", s, s[i:i+2])
		}
		u[j] = hi<<4 | lo
	}
	return u, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Described is a described type: a descriptor (uint64 or Symbol by
// convention) and the value it describes. Generic decoding returns every
// described value as Described, whatever its descriptor.
type Described struct {
	Descriptor any
	Value      any
}

// MapEntry is one key/value pair of a Map.
type MapEntry struct {
	Key, Value any
}

// Map is an AMQP map. It keeps its entries in wire order, because keys may
// be any AMQP value (not only Go-comparable ones) and because re-encoding a
// received map should reproduce it. Lookups compare keys with Equal, so the
// string "a" and the Symbol "a" are different keys. A nil *Map is an empty
// map for every read method.
type Map struct {
	entries []MapEntry
}

// NewMap returns a map holding entries in the given order.
func NewMap(entries ...MapEntry) *Map {
	return &Map{entries: entries}
}

// Len returns the number of entries.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.entries)
}

// Entries returns the entries in order. The slice is the map's own storage:
// read it, do not modify it.
func (m *Map) Entries() []MapEntry {
	if m == nil {
		return nil
	}
	return m.entries
}

// All iterates over the entries in order.
func (m *Map) All() iter.Seq2[any, any] {
	return func(yield func(any, any) bool) {
		for _, e := range m.Entries() {
			if !yield(e.Key, e.Value) {
				return
			}
		}
	}
}

// Get returns the value of the first entry whose key equals key.
func (m *Map) Get(key any) (any, bool) {
	for _, e := range m.Entries() {
		if Equal(e.Key, key) {
			return e.Value, true
		}
	}
	return nil, false
}

// GetString returns the value stored under the AMQP string key.
func (m *Map) GetString(key string) (any, bool) {
	for _, e := range m.Entries() {
		if k, ok := e.Key.(string); ok && k == key {
			return e.Value, true
		}
	}
	return nil, false
}

// GetSymbol returns the value stored under the AMQP symbol key.
func (m *Map) GetSymbol(key string) (any, bool) {
	for _, e := range m.Entries() {
		if k, ok := e.Key.(Symbol); ok && string(k) == key {
			return e.Value, true
		}
	}
	return nil, false
}

// Set replaces the value of the first entry whose key equals key, or appends
// a new entry.
func (m *Map) Set(key, value any) {
	for i, e := range m.entries {
		if Equal(e.Key, key) {
			m.entries[i].Value = value
			return
		}
	}
	m.entries = append(m.entries, MapEntry{Key: key, Value: value})
}

// Delete removes the first entry whose key equals key and reports whether
// there was one.
func (m *Map) Delete(key any) bool {
	for i, e := range m.Entries() {
		if Equal(e.Key, key) {
			m.entries = append(m.entries[:i], m.entries[i+1:]...)
			return true
		}
	}
	return false
}

// Type names an AMQP type. It is needed where a value alone cannot say its
// type: the element type of an Array (which may be empty).
type Type uint8

// The AMQP types. The zero Type is invalid, so an Array whose Type was
// forgotten fails to encode instead of encoding as something else.
const (
	TypeNull Type = iota + 1
	TypeBoolean
	TypeUbyte
	TypeUshort
	TypeUint
	TypeUlong
	TypeByte
	TypeShort
	TypeInt
	TypeLong
	TypeFloat
	TypeDouble
	TypeDecimal32
	TypeDecimal64
	TypeDecimal128
	TypeChar
	TypeTimestamp
	TypeUUID
	TypeBinary
	TypeString
	TypeSymbol
	TypeList
	TypeMap
	TypeArray
)

var typeNames = [...]string{
	"invalid", "null", "boolean", "ubyte", "ushort", "uint", "ulong", "byte", "short", "int",
	"long", "float", "double", "decimal32", "decimal64", "decimal128", "char", "timestamp",
	"uuid", "binary", "string", "symbol", "list", "map", "array",
}

// String returns the type's name as the specification spells it.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// TypeOf returns the AMQP type that v encodes as, and false if v's Go type
// has no AMQP mapping. Described values report the type of their value.
func TypeOf(v any) (Type, bool) {
	switch v := v.(type) {
	case nil:
		return TypeNull, true
	case bool:
		return TypeBoolean, true
	case uint8:
		return TypeUbyte, true
	case uint16:
		return TypeUshort, true
	case uint32:
		return TypeUint, true
	case uint64:
		return TypeUlong, true
	case int8:
		return TypeByte, true
	case int16:
		return TypeShort, true
	case int32:
		return TypeInt, true
	case int64:
		return TypeLong, true
	case float32:
		return TypeFloat, true
	case float64:
		return TypeDouble, true
	case Decimal32:
		return TypeDecimal32, true
	case Decimal64:
		return TypeDecimal64, true
	case Decimal128:
		return TypeDecimal128, true
	case Char:
		return TypeChar, true
	case time.Time:
		return TypeTimestamp, true
	case UUID:
		return TypeUUID, true
	case []byte:
		return TypeBinary, true
	case string:
		return TypeString, true
	case Symbol:
		return TypeSymbol, true
	case []any:
		return TypeList, true
	case *Map:
		return TypeMap, true
	case Array:
		return TypeArray, true
	case Described:
		return TypeOf(v.Value)
	}
	return 0, false
}

// Array is an AMQP array: values that share one type and, optionally, one
// descriptor. Values holds the element values (undescribed) as the Go types
// that Type maps to.
type Array struct {
	Type       Type
	Descriptor any // nil, or the descriptor every element carries
	Values     []any
}

// SymbolArray returns an array of symbols.
func SymbolArray(syms ...Symbol) Array {
	vs := make([]any, len(syms))
	for i, s := range syms {
		vs[i] = s
	}
	return Array{Type: TypeSymbol, Values: vs}
}

// Equal reports whether a and b are the same AMQP value of the same AMQP
// type: uint32(1) and uint64(1) differ, as do "a" and Symbol("a"). Floats
// compare by bit pattern (so a NaN equals itself), timestamps by instant,
// nil and empty lists and binaries are equal, and maps compare entry by
// entry in order.
func Equal(a, b any) bool {
	switch a := a.(type) {
	case float32:
		b, ok := b.(float32)
		return ok && math.Float32bits(a) == math.Float32bits(b)
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !Equal(a[i], b[i]) {
				return false
			}
		}
		return true
	case *Map:
		b, ok := b.(*Map)
		if !ok || a.Len() != b.Len() {
			return false
		}
		for i, e := range a.Entries() {
			f := b.entries[i]
			if !Equal(e.Key, f.Key) || !Equal(e.Value, f.Value) {
				return false
			}
		}
		return true
	case Array:
		b, ok := b.(Array)
		return ok && a.Type == b.Type && Equal(a.Descriptor, b.Descriptor) && Equal(a.Values, b.Values)
	case Described:
		b, ok := b.(Described)
		return ok && Equal(a.Descriptor, b.Descriptor) && Equal(a.Value, b.Value)
	case nil, bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
		Decimal32, Decimal64, Decimal128, Char, UUID, string, Symbol:
		return a == b
	}
	return false
}

// errUnsupported reports a Go value that has no AMQP mapping.
var errUnsupported = errors.New("go type has no amqp mapping")
