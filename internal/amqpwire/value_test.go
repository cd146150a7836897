package amqpwire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValueRoundTrip(t *testing.T) {
	nested := []any{}
	for range MaxDepth {
		nested = []any{nested}
	}
	tests := []struct {
		name string
		v    any
		hex  string // expected encoding; empty to check the round trip only
	}{
		{"null", nil, "40"},
		{"true", true, "41"},
		{"false", false, "42"},
		{"ubyte", uint8(7), "5007"},
		{"ushort", uint16(0x1234), "601234"},
		{"uint0", uint32(0), "43"},
		{"smalluint", uint32(255), "52ff"},
		{"uint", uint32(256), "7000000100"},
		{"ulong0", uint64(0), "44"},
		{"smallulong", uint64(255), "53ff"},
		{"ulong", uint64(1 << 40), "800000010000000000"},
		{"byte", int8(-1), "51ff"},
		{"short", int16(-2), "61fffe"},
		{"smallint", int32(-128), "5480"},
		{"int", int32(128), "7100000080"},
		{"int min", int32(math.MinInt32), "7180000000"},
		{"smalllong", int64(127), "557f"},
		{"long", int64(-129), "81ffffffffffffff7f"},
		{"float", float32(-0.5), "72bf000000"},
		{"float nan", float32(math.NaN()), ""},
		{"double", math.Inf(1), "827ff0000000000000"},
		{"decimal32", Decimal32{0xde, 0xad, 0xbe, 0xef}, "74deadbeef"},
		{"decimal64", Decimal64{1, 2, 3, 4, 5, 6, 7, 8}, "840102030405060708"},
		{"decimal128", Decimal128{15: 1}, "9400000000000000000000000000000001"},
		{"char", Char('A'), "7300000041"},
		{"timestamp", ms(1), "830000000000000001"},
		{"timestamp before epoch", ms(-1000), "83fffffffffffffc18"},
		{"timestamp extreme", ms(math.MinInt64), "838000000000000000"},
		{"uuid", UUID{0: 0xab, 15: 0xcd}, "98ab0000000000000000000000000000cd"},
		{"binary empty", []byte{}, "a000"},
		{"binary", []byte{1, 2}, "a0020102"},
		{"binary 256", bytes.Repeat([]byte{9}, 256), ""},
		{"string", "hi", "a1026869"},
		{"string 256", strings.Repeat("x", 256), ""},
		{"symbol", Symbol("s"), "a30173"},
		{"symbol 300", Symbol(strings.Repeat("y", 300)), ""},
		{"list0", []any{}, "45"},
		{"list8", []any{uint32(0), "a"}, "c0050243a10161"},
		{"list32", []any{strings.Repeat("z", 300)}, ""},
		{"list 256 elements", make([]any, 256), ""},
		{"map8 empty", &Map{}, "c10100"},
		{"map8", strMap("k", int32(1), Symbol("k"), int64(1), uint64(3), nil), ""},
		{"map keyed by list", strMap([]any{true}, Array{Type: TypeNull, Values: []any{nil, nil}}), ""},
		{"array8 symbol", SymbolArray("a", "bc"), "e00702a30161026263"},
		{"array32 symbol", SymbolArray(Symbol(strings.Repeat("q", 256))), ""},
		{"array bool", Array{Type: TypeBoolean, Values: []any{true, false}}, "e00402560100"},
		{"array uint wide", Array{Type: TypeUint, Values: []any{uint32(1), uint32(256)}}, "e00a02700000000100000100"},
		{"array uint small", Array{Type: TypeUint, Values: []any{uint32(1), uint32(2)}}, "e00402520102"},
		{"array ulong", Array{Type: TypeUlong, Values: []any{uint64(1), uint64(1 << 33)}}, ""},
		{"array ulong small", Array{Type: TypeUlong, Values: []any{uint64(3)}}, "e003015303"},
		{"array int", Array{Type: TypeInt, Values: []any{int32(-1), int32(1000)}}, ""},
		{"array int small", Array{Type: TypeInt, Values: []any{int32(-1)}}, "e0030154ff"},
		{"array long", Array{Type: TypeLong, Values: []any{int64(-1), int64(1000)}}, ""},
		{"array long small", Array{Type: TypeLong, Values: []any{int64(-1)}}, "e0030155ff"},
		{"array of every fixed type", Array{Type: TypeArray, Values: []any{
			Array{Type: TypeUbyte, Values: []any{uint8(1)}},
			Array{Type: TypeUshort, Values: []any{uint16(1)}},
			Array{Type: TypeByte, Values: []any{int8(1)}},
			Array{Type: TypeShort, Values: []any{int16(1)}},
			Array{Type: TypeFloat, Values: []any{float32(1)}},
			Array{Type: TypeDouble, Values: []any{float64(1)}},
			Array{Type: TypeDecimal32, Values: []any{Decimal32{1}}},
			Array{Type: TypeDecimal64, Values: []any{Decimal64{1}}},
			Array{Type: TypeDecimal128, Values: []any{Decimal128{1}}},
			Array{Type: TypeChar, Values: []any{Char('x')}},
			Array{Type: TypeTimestamp, Values: []any{ms(5)}},
			Array{Type: TypeUUID, Values: []any{UUID{1}}},
			Array{Type: TypeNull, Values: []any{nil}},
		}}, ""},
		{"array binary", Array{Type: TypeBinary, Values: []any{[]byte{1}, bytes.Repeat([]byte{2}, 300)}}, ""},
		{"array string", Array{Type: TypeString, Values: []any{"a", "b"}}, "e00602a101610162"},
		{"array string wide", Array{Type: TypeString, Values: []any{strings.Repeat("s", 256)}}, ""},
		{"array list", Array{Type: TypeList, Values: []any{[]any{}, []any{"x"}}}, ""},
		{"array map", Array{Type: TypeMap, Values: []any{strMap("a", nil)}}, ""},
		{"array described", Array{Type: TypeList, Descriptor: uint64(0x24), Values: []any{[]any{}}}, ""},
		{"array empty", Array{Type: TypeSymbol, Values: []any{}}, "e00200a3"},
		{"described", Described{Descriptor: uint64(0x77), Value: "v"}, "005377a10176"},
		{"described symbolic", Described{Descriptor: Symbol("x:y"), Value: nil}, "00a303783a7940"},
		{"nested to the depth limit", nested, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendValue([]byte{0xee}, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 0xee {
				t.Fatal("AppendValue overwrote dst")
			}
			b = b[1:]
			if tt.hex != "" && !bytes.Equal(b, unhexString(t, tt.hex)) {
				t.Errorf("encoded %x, want %s", b, tt.hex)
			}
			got, n, err := DecodeValue(append(b, 0x99))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Errorf("decoded %d bytes, want %d", n, len(b))
			}
			if !Equal(got, tt.v) {
				t.Errorf("round trip gave %#v, want %#v", got, tt.v)
			}
			if wt, _ := TypeOf(tt.v); wt != func() Type { gt, _ := TypeOf(got); return gt }() {
				t.Errorf("type changed from %v", wt)
			}
		})
	}
}

func TestDecodeAcceptsEveryConstructor(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want any
	}{
		{"bool byte true", "5601", true},
		{"bool byte false", "5600", false},
		{"uint full width small value", "7000000001", uint32(1)},
		{"ulong full width", "800000000000000000", uint64(0)},
		{"vbin32 short", "b00000000101", []byte{1}},
		{"str32 short", "b10000000161", "a"},
		{"sym32 short", "b30000000161", Symbol("a")},
		{"list32 empty", "d00000000400000000", []any{}},
		{"list8 empty", "c00100", []any{}},
		{"map32", "d10000000600000002" + "4142", strMap(true, false)},
		{"array32 symbols", "f00000000900000002a301610162", SymbolArray("a", "b")},
		{"array of list0", "e00203" + "45", Array{Type: TypeList, Values: []any{[]any{}, []any{}, []any{}}}},
		{"array of true", "e0020241", Array{Type: TypeBoolean, Values: []any{true, true}}},
		{"array of uint0", "e0020243", Array{Type: TypeUint, Values: []any{uint32(0), uint32(0)}}},
		{"array32 of list32", "f00000001000000001d00000000700000001a10178", Array{Type: TypeList, Values: []any{[]any{"x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhexString(t, tt.hex)
			got, n, err := DecodeValue(b)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Errorf("decoded %d of %d bytes", n, len(b))
			}
			if tt.want != nil && !Equal(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestDecodeRejects feeds malformed and hostile values. Each must fail with
// a *DecodeError, quickly and without allocating what the input claims.
func TestDecodeRejects(t *testing.T) {
	deep := []byte{codeList0}
	for range MaxDepth + 1 {
		deep = append([]byte{codeList8, byte(len(deep) + 1), 1}, deep...)
	}
	deepDescribed := append(bytes.Repeat([]byte{codeDescribed, codeNull}, MaxDepth+1), codeNull)
	tests := []struct {
		name   string
		hex    string
		raw    []byte
		offset int
	}{
		{name: "empty input", hex: "", offset: 0},
		{name: "unknown constructor", hex: "57", offset: 0},
		{name: "reserved constructor", hex: "ff", offset: 0},
		{name: "truncated uint", hex: "70000001", offset: 1},
		{name: "truncated uuid", hex: "98" + "00", offset: 1},
		{name: "bool byte out of range", hex: "5602", offset: 1},
		{name: "vbin8 longer than input", hex: "a00501", offset: 2},
		{name: "str32 claims 4 GiB", hex: "b1ffffffff61", offset: 1},
		{name: "list32 claims 2^32 elements in 20 bytes", hex: "d00000000fffffffff" + "4040404040404040404040", offset: 5},
		{name: "list8 count above size", hex: "c002054040", offset: 2},
		{name: "list8 size below count field", hex: "c000", offset: 2},
		{name: "list8 size beyond input", hex: "c00a01", offset: 2},
		{name: "list element overruns list size", hex: "c00201a10161", offset: 4},
		{name: "list size leaves bytes unread", hex: "c003014040", offset: 4},
		{name: "map odd count", hex: "c1020140", offset: 3},
		{name: "array32 of null claims 2^32 elements", hex: "f000000005ffffffff40", offset: 10},
		{name: "array32 of 5000 nulls", hex: "f00000000500001388" + "40", offset: 10},
		{name: "array8 of strings beyond size", hex: "e003ffa100", offset: 4},
		{name: "array element type unknown", hex: "e0020157", offset: 3},
		{name: "array of described of described", hex: "e0050100400040", offset: 5},
		{name: "array elements beyond size", hex: "e0030270" + "0000", offset: 4},
		{name: "list nested too deep", raw: deep, offset: 3*MaxDepth + 3},
		{name: "described nested too deep", raw: deepDescribed, offset: 2*MaxDepth + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.raw
			if b == nil {
				b = unhexString(t, tt.hex)
			}
			var v any
			var err error
			allocs := testing.AllocsPerRun(1, func() { v, _, err = DecodeValue(b) })
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeValue = %#v, %v; want a *DecodeError", v, err)
			}
			if de.Offset != tt.offset {
				t.Errorf("error offset %d, want %d (%v)", de.Offset, tt.offset, err)
			}
			if ErrorCondition(err) != ConditionDecodeError {
				t.Errorf("ErrorCondition = %q", ErrorCondition(err))
			}
			if allocs > 100 {
				t.Errorf("rejecting %d bytes took %v allocations", len(b), allocs)
			}
		})
	}
}

// TestDecodeAllocationIsBounded decodes inputs crafted to amplify memory:
// the bytes allocated must stay within a small multiple of the input.
func TestDecodeAllocationIsBounded(t *testing.T) {
	// An array of 255 arrays, each claiming 255 zero-width nulls: 3 bytes
	// per inner array would give 65025 slots without the zero-width limit.
	var nulls []byte
	nulls = append(nulls, codeArray32, 0, 0, 0, 0, 0, 0, 0, 255, codeArray8)
	for range 255 {
		nulls = append(nulls, 2, 255, codeNull)
	}
	size := len(nulls) - 5
	nulls[1], nulls[2], nulls[3], nulls[4] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	_, _, err := DecodeValue(nulls)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("nested zero-width arrays decoded: %v", err)
	}
	// A modest array of nulls still decodes.
	ok := []byte{codeArray8, 2, 100, codeNull}
	ok = append(ok, make([]byte, 100)...)
	if _, _, err := DecodeValue(ok); err != nil {
		t.Fatalf("array of 100 nulls in %d bytes: %v", len(ok), err)
	}
}

func TestAppendValueRejects(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"plain int", 5},
		{"plain uint", uint(5)},
		{"struct", struct{}{}},
		{"in list", []any{1.5, 2}},
		{"in map", strMap("k", map[string]string{})},
		{"array without type", Array{Values: []any{}}},
		{"array with mixed types", Array{Type: TypeInt, Values: []any{int32(1), int64(2)}}},
		{"array with described element", Array{Type: TypeInt, Values: []any{Described{uint64(1), int32(1)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := AppendValue(nil, tt.v); err == nil {
				t.Fatalf("AppendValue(%#v) = %x, want an error", tt.v, b)
			}
		})
	}
}

func TestUUID(t *testing.T) {
	const s = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
	u := mustUUID(t, strings.ToUpper(s))
	if u.String() != s {
		t.Errorf("String() = %s, want %s", u, s)
	}
	if u[0] != 0xf8 || u[15] != 0xf6 {
		t.Errorf("bytes %x", u[:])
	}
	for _, bad := range []string{"", s[:35], s + "0", strings.Replace(s, "-", "+", 1), strings.Replace(s, "f8", "g8", 1),
		"f8-d4fae-7dec-11d0-a765-00a0c91e6bf6", "f81d4fae-7dec-11d0-a765-00a0c91e6b-6"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) succeeded", bad)
		}
	}
}

func TestMap(t *testing.T) {
	m := NewMap(MapEntry{Symbol("a"), int32(1)}, MapEntry{"a", int32(2)}, MapEntry{uint64(3), "u"})
	tests := []struct {
		name string
		get  func() (any, bool)
		want any
		ok   bool
	}{
		{"symbol key", func() (any, bool) { return m.GetSymbol("a") }, int32(1), true},
		{"string key", func() (any, bool) { return m.GetString("a") }, int32(2), true},
		{"ulong key", func() (any, bool) { return m.Get(uint64(3)) }, "u", true},
		{"uint key is another key", func() (any, bool) { return m.Get(uint32(3)) }, nil, false},
		{"missing", func() (any, bool) { return m.GetString("b") }, nil, false},
		{"nil map", func() (any, bool) { return (*Map)(nil).GetString("a") }, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.get()
			if ok != tt.ok || !Equal(got, tt.want) {
				t.Errorf("got %#v, %v; want %#v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	m.Set("a", int32(9))
	m.Set("new", true)
	if v, _ := m.GetString("a"); v != int32(9) || m.Len() != 4 {
		t.Errorf("after Set: a = %v, len %d", v, m.Len())
	}
	if !m.Delete(Symbol("a")) || m.Delete(Symbol("a")) || m.Len() != 3 {
		t.Errorf("Delete misbehaved; len %d", m.Len())
	}
	var keys []any
	for k := range m.All() {
		keys = append(keys, k)
	}
	if !Equal(keys, []any{"a", uint64(3), "new"}) {
		t.Errorf("order after edits: %#v", keys)
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"uint vs ulong", uint32(1), uint64(1), false},
		{"string vs symbol", "a", Symbol("a"), false},
		{"nil vs empty binary", []byte(nil), []byte{}, true},
		{"nan", math.NaN(), math.NaN(), true},
		{"timestamps in different zones", ms(5), ms(5).In(time.FixedZone("x", 3600)), true},
		{"maps in different order", strMap("a", nil, "b", nil), strMap("b", nil, "a", nil), false},
		{"arrays of different type", Array{Type: TypeInt, Values: []any{}}, Array{Type: TypeLong, Values: []any{}}, false},
		{"described", Described{uint64(1), "x"}, Described{uint64(1), "x"}, true},
		{"described descriptor type", Described{uint64(1), "x"}, Described{uint32(1), "x"}, false},
		{"list vs nil", []any{}, nil, false},
		{"unsupported types", 1, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equal(tt.a, tt.b); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseUUID(f *testing.F) {
	f.Add("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
	f.Add("F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUUID(s)
		if err != nil {
			return
		}
		if !strings.EqualFold(u.String(), s) {
			t.Fatalf("ParseUUID(%q).String() = %q", s, u)
		}
	})
}
