package amqpwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// MaxDepth is how deeply compound and described values may nest. Deeper
// input is rejected so that hostile bytes cannot exhaust the stack.
const MaxDepth = 32

// MaxZeroWidthElements is how many array elements of zero-width types
// (null, true, false, uint0, ulong0, list0) one decode may produce in
// total. Such elements take no bytes, so without a limit a few bytes could
// demand gigabytes of element slots; every other element takes at least
// one byte of input.
const MaxZeroWidthElements = 4096

// Format codes (spec §1.6).
const (
	codeDescribed  = 0x00
	codeNull       = 0x40
	codeTrue       = 0x41
	codeFalse      = 0x42
	codeUint0      = 0x43
	codeUlong0     = 0x44
	codeList0      = 0x45
	codeBool       = 0x56
	codeUbyte      = 0x50
	codeByte       = 0x51
	codeSmallUint  = 0x52
	codeSmallUlong = 0x53
	codeSmallInt   = 0x54
	codeSmallLong  = 0x55
	codeUshort     = 0x60
	codeShort      = 0x61
	codeUint       = 0x70
	codeInt        = 0x71
	codeFloat      = 0x72
	codeChar       = 0x73
	codeDecimal32  = 0x74
	codeUlong      = 0x80
	codeLong       = 0x81
	codeDouble     = 0x82
	codeTimestamp  = 0x83
	codeDecimal64  = 0x84
	codeDecimal128 = 0x94
	codeUUID       = 0x98
	codeVbin8      = 0xa0
	codeStr8       = 0xa1
	codeSym8       = 0xa3
	codeVbin32     = 0xb0
	codeStr32      = 0xb1
	codeSym32      = 0xb3
	codeList8      = 0xc0
	codeMap8       = 0xc1
	codeList32     = 0xd0
	codeMap32      = 0xd1
	codeArray8     = 0xe0
	codeArray32    = 0xf0
)

// codes names each constructor and the AMQP type it encodes.
var codes = map[byte]struct {
	name string
	typ  Type
}{
	codeNull: {"null", TypeNull}, codeTrue: {"true", TypeBoolean}, codeFalse: {"false", TypeBoolean},
	codeBool: {"boolean", TypeBoolean}, codeUbyte: {"ubyte", TypeUbyte}, codeUshort: {"ushort", TypeUshort},
	codeUint0: {"uint0", TypeUint}, codeSmallUint: {"smalluint", TypeUint}, codeUint: {"uint", TypeUint},
	codeUlong0: {"ulong0", TypeUlong}, codeSmallUlong: {"smallulong", TypeUlong}, codeUlong: {"ulong", TypeUlong},
	codeByte: {"byte", TypeByte}, codeShort: {"short", TypeShort}, codeSmallInt: {"smallint", TypeInt},
	codeInt: {"int", TypeInt}, codeSmallLong: {"smalllong", TypeLong}, codeLong: {"long", TypeLong},
	codeFloat: {"float", TypeFloat}, codeDouble: {"double", TypeDouble}, codeDecimal32: {"decimal32", TypeDecimal32},
	codeDecimal64: {"decimal64", TypeDecimal64}, codeDecimal128: {"decimal128", TypeDecimal128},
	codeChar: {"char", TypeChar}, codeTimestamp: {"timestamp", TypeTimestamp}, codeUUID: {"uuid", TypeUUID},
	codeVbin8: {"vbin8", TypeBinary}, codeVbin32: {"vbin32", TypeBinary}, codeStr8: {"str8", TypeString},
	codeStr32: {"str32", TypeString}, codeSym8: {"sym8", TypeSymbol}, codeSym32: {"sym32", TypeSymbol},
	codeList0: {"list0", TypeList}, codeList8: {"list8", TypeList}, codeList32: {"list32", TypeList},
	codeMap8: {"map8", TypeMap}, codeMap32: {"map32", TypeMap}, codeArray8: {"array8", TypeArray},
	codeArray32: {"array32", TypeArray}, codeDescribed: {"described", 0},
}

func codeName(c byte) string {
	if n, ok := codes[c]; ok {
		return fmt.Sprintf("%s (0x%02x)", n.name, c)
	}
	return fmt.Sprintf("unknown constructor 0x%02x", c)
}

// DecodeValue decodes one AMQP value from the start of b and returns it with
// the number of bytes it took. See the package documentation for the Go
// types it returns; binary values alias b.
func DecodeValue(b []byte) (v any, n int, err error) {
	d := newDecoder(b)
	v, err = d.value()
	return v, d.off, err
}

// decoder reads AMQP values from b[off:end]. end is lowered while a
// compound value is read so that nothing inside it can read past its
// declared size.
type decoder struct {
	b     []byte
	off   int
	end   int
	depth int
	zero  int // zero-width array elements still allowed

	obj, field string // what is being decoded, for error messages
}

func newDecoder(b []byte) *decoder {
	return &decoder{b: b, end: len(b), zero: MaxZeroWidthElements}
}

func (d *decoder) fail(expected, found string) error {
	f := d.obj
	if d.field != "" {
		f += "." + d.field
	}
	return &DecodeError{Offset: d.off, Field: f, Expected: expected, Found: found}
}

func (d *decoder) unexpected(code byte, expected string) error {
	d.off-- // point at the constructor
	return d.fail(expected, codeName(code))
}

func (d *decoder) need(n int, what string) error {
	if n < 0 || d.end-d.off < n {
		return d.fail(fmt.Sprintf("%d bytes of %s", n, what), fmt.Sprintf("%d bytes left", d.end-d.off))
	}
	return nil
}

func (d *decoder) code() (byte, error) {
	if d.off >= d.end {
		return 0, d.fail("a constructor", "end of data")
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// peek returns the next byte without consuming it; ok is false at the end.
func (d *decoder) peek() (byte, bool) {
	if d.off >= d.end {
		return 0, false
	}
	return d.b[d.off], true
}

// fixed consumes n bytes; callers check need first.
func (d *decoder) fixed(n int) []byte {
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

func (d *decoder) enter() error {
	if d.depth >= MaxDepth {
		return d.fail(fmt.Sprintf("nesting at most %d deep", MaxDepth), "deeper nesting")
	}
	d.depth++
	return nil
}

// value reads a constructor and the value it introduces.
func (d *decoder) value() (any, error) {
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	if c == codeDescribed {
		if err := d.enter(); err != nil {
			return nil, err
		}
		desc, err := d.value()
		if err != nil {
			return nil, err
		}
		v, err := d.value()
		d.depth--
		return Described{Descriptor: desc, Value: v}, err
	}
	return d.body(c)
}

// width returns the fixed size of the data after constructor c, or -1 for
// variable-width and compound constructors.
func width(c byte) int {
	switch c {
	case codeNull, codeTrue, codeFalse, codeUint0, codeUlong0, codeList0:
		return 0
	case codeBool, codeUbyte, codeByte, codeSmallUint, codeSmallUlong, codeSmallInt, codeSmallLong:
		return 1
	case codeUshort, codeShort:
		return 2
	case codeUint, codeInt, codeFloat, codeChar, codeDecimal32:
		return 4
	case codeUlong, codeLong, codeDouble, codeTimestamp, codeDecimal64:
		return 8
	case codeDecimal128, codeUUID:
		return 16
	}
	return -1
}

// body reads the data that follows constructor c.
func (d *decoder) body(c byte) (any, error) {
	if w := width(c); w > 0 {
		if err := d.need(w, codes[c].name); err != nil {
			return nil, err
		}
	}
	switch c {
	case codeNull:
		return nil, nil
	case codeTrue:
		return true, nil
	case codeFalse:
		return false, nil
	case codeBool:
		switch d.fixed(1)[0] {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		d.off--
		return nil, d.fail("boolean 0x00 or 0x01", fmt.Sprintf("0x%02x", d.b[d.off]))
	case codeUbyte:
		return d.fixed(1)[0], nil
	case codeUshort:
		return binary.BigEndian.Uint16(d.fixed(2)), nil
	case codeUint0:
		return uint32(0), nil
	case codeSmallUint:
		return uint32(d.fixed(1)[0]), nil
	case codeUint:
		return binary.BigEndian.Uint32(d.fixed(4)), nil
	case codeUlong0:
		return uint64(0), nil
	case codeSmallUlong:
		return uint64(d.fixed(1)[0]), nil
	case codeUlong:
		return binary.BigEndian.Uint64(d.fixed(8)), nil
	case codeByte:
		return int8(d.fixed(1)[0]), nil
	case codeShort:
		return int16(binary.BigEndian.Uint16(d.fixed(2))), nil
	case codeSmallInt:
		return int32(int8(d.fixed(1)[0])), nil
	case codeInt:
		return int32(binary.BigEndian.Uint32(d.fixed(4))), nil
	case codeSmallLong:
		return int64(int8(d.fixed(1)[0])), nil
	case codeLong:
		return int64(binary.BigEndian.Uint64(d.fixed(8))), nil
	case codeFloat:
		return math.Float32frombits(binary.BigEndian.Uint32(d.fixed(4))), nil
	case codeDouble:
		return math.Float64frombits(binary.BigEndian.Uint64(d.fixed(8))), nil
	case codeDecimal32:
		return Decimal32(d.fixed(4)), nil
	case codeDecimal64:
		return Decimal64(d.fixed(8)), nil
	case codeDecimal128:
		return Decimal128(d.fixed(16)), nil
	case codeChar:
		return Char(binary.BigEndian.Uint32(d.fixed(4))), nil
	case codeTimestamp:
		return time.UnixMilli(int64(binary.BigEndian.Uint64(d.fixed(8)))).UTC(), nil
	case codeUUID:
		return UUID(d.fixed(16)), nil
	case codeVbin8, codeVbin32:
		return d.variable(c)
	case codeStr8, codeStr32:
		p, err := d.variable(c)
		return string(p), err
	case codeSym8, codeSym32:
		p, err := d.variable(c)
		return Symbol(p), err
	case codeList0:
		return []any{}, nil
	case codeList8, codeList32:
		return d.list(c)
	case codeMap8, codeMap32:
		return d.mapBody(c)
	case codeArray8, codeArray32:
		return d.array(c)
	}
	return nil, d.unexpected(c, "a known constructor")
}

// variable reads the length-prefixed data of a vbin, str or sym; the
// result aliases the input.
func (d *decoder) variable(c byte) ([]byte, error) {
	n, err := d.length(c&0xf0 == 0xb0, codes[c].name)
	if err != nil {
		return nil, err
	}
	if err := d.need(n, codes[c].name); err != nil {
		return nil, err
	}
	return d.fixed(n), nil
}

// length reads a 1- or 4-byte length prefix.
func (d *decoder) length(wide bool, what string) (int, error) {
	if !wide {
		if err := d.need(1, what); err != nil {
			return 0, err
		}
		return int(d.fixed(1)[0]), nil
	}
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(d.fixed(4))
	if uint64(n) > uint64(d.end-d.off) {
		d.off -= 4
		return 0, d.fail(fmt.Sprintf("at most %d bytes of %s", d.end-d.off-4, what), fmt.Sprintf("a length of %d", n))
	}
	return int(n), nil
}

// compound reads the size and count of a list, map or array and returns
// the count and the offset where the compound ends. The count is checked
// against the bytes the compound claims (each element takes at least
// minElemSize bytes) before anything is allocated.
func (d *decoder) compound(c byte, minElemSize int) (count, end int, err error) {
	wide := c&0xf0 == 0xd0 || c&0xf0 == 0xf0
	what := codes[c].name
	size, err := d.length(wide, what)
	if err != nil {
		return 0, 0, err
	}
	w := 1
	if wide {
		w = 4
	}
	if size < w {
		return 0, 0, d.fail(fmt.Sprintf("%s size of at least %d", what, w), fmt.Sprintf("size %d", size))
	}
	if err := d.need(size, what); err != nil {
		return 0, 0, err
	}
	end = d.off + size
	if wide {
		count = int(binary.BigEndian.Uint32(d.fixed(4)))
	} else {
		count = int(d.fixed(1)[0])
	}
	if count < 0 || count*minElemSize > size-w {
		d.off -= w
		return 0, 0, d.fail(fmt.Sprintf("an element count that fits in %d bytes", size-w), fmt.Sprintf("count %d", count))
	}
	return count, end, nil
}

// push limits reading to [off, end) while a compound value's content is
// read, and pop restores the limit after checking that the content took
// exactly its declared size.
func (d *decoder) push(end int) (saved int, err error) {
	if err := d.enter(); err != nil {
		return 0, err
	}
	saved, d.end = d.end, end
	return saved, nil
}

func (d *decoder) pop(saved int, what string) error {
	end := d.end
	d.end = saved
	d.depth--
	if d.off != end {
		return d.fail(fmt.Sprintf("%s to end at offset %d", what, end), fmt.Sprintf("%d unread bytes", end-d.off))
	}
	return nil
}

func (d *decoder) list(c byte) ([]any, error) {
	count, end, err := d.compound(c, 1)
	if err != nil {
		return nil, err
	}
	saved, err := d.push(end)
	if err != nil {
		return nil, err
	}
	l := make([]any, count)
	for i := range l {
		if l[i], err = d.value(); err != nil {
			return nil, err
		}
	}
	return l, d.pop(saved, "list")
}

func (d *decoder) mapBody(c byte) (*Map, error) {
	count, end, err := d.compound(c, 1)
	if err != nil {
		return nil, err
	}
	if count%2 != 0 {
		return nil, d.fail("an even map element count", fmt.Sprintf("count %d", count))
	}
	saved, err := d.push(end)
	if err != nil {
		return nil, err
	}
	m := &Map{entries: make([]MapEntry, count/2)}
	for i := range m.entries {
		e := &m.entries[i]
		if e.Key, err = d.value(); err != nil {
			return nil, err
		}
		if e.Value, err = d.value(); err != nil {
			return nil, err
		}
	}
	return m, d.pop(saved, "map")
}

func (d *decoder) array(c byte) (Array, error) {
	// The element width is known only after the constructor, so the count
	// is checked below.
	count, end, err := d.compound(c, 0)
	if err != nil {
		return Array{}, err
	}
	saved, err := d.push(end)
	if err != nil {
		return Array{}, err
	}
	var a Array
	ec, err := d.code()
	if err != nil {
		return Array{}, err
	}
	if ec == codeDescribed {
		if a.Descriptor, err = d.value(); err != nil {
			return Array{}, err
		}
		if ec, err = d.code(); err != nil {
			return Array{}, err
		}
	}
	t := codes[ec].typ
	if t == 0 {
		return Array{}, d.unexpected(ec, "an array element constructor")
	}
	switch w := width(ec); {
	case w == 0 && count > d.zero:
		return Array{}, d.fail(fmt.Sprintf("at most %d zero-width array elements", MaxZeroWidthElements), fmt.Sprintf("count %d", count))
	case w == 0:
		d.zero -= count
	case count*max(w, 1) > d.end-d.off:
		return Array{}, d.fail(fmt.Sprintf("%d elements of at least %d bytes", count, max(w, 1)), fmt.Sprintf("%d bytes left", d.end-d.off))
	}
	a.Type = t
	a.Values = make([]any, count)
	for i := range a.Values {
		if a.Values[i], err = d.body(ec); err != nil {
			return Array{}, err
		}
	}
	err = d.pop(saved, "array")
	return a, err
}
