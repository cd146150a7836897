package amqpwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// AppendValue appends the encoding of v to dst, choosing the smallest
// constructor for v's AMQP type. It fails for Go types outside the mapping
// in the package documentation (plain int, for instance: say int32 or
// int64).
func AppendValue(dst []byte, v any) ([]byte, error) {
	e := encoder{b: dst}
	e.value(v)
	return e.b, e.err
}

// encoder appends to b; the first error sticks and later calls do nothing
// useful, so callers check err once at the end.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) setErr(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) u8(v byte)    { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *encoder) null() { e.u8(codeNull) }

func (e *encoder) bool(v bool) {
	if v {
		e.u8(codeTrue)
	} else {
		e.u8(codeFalse)
	}
}

func (e *encoder) uint(v uint32) {
	switch {
	case v == 0:
		e.u8(codeUint0)
	case v < 256:
		e.b = append(e.b, codeSmallUint, byte(v))
	default:
		e.u8(codeUint)
		e.u32(v)
	}
}

func (e *encoder) ulong(v uint64) {
	switch {
	case v == 0:
		e.u8(codeUlong0)
	case v < 256:
		e.b = append(e.b, codeSmallUlong, byte(v))
	default:
		e.u8(codeUlong)
		e.u64(v)
	}
}

func (e *encoder) int(v int32) {
	if v >= math.MinInt8 && v <= math.MaxInt8 {
		e.b = append(e.b, codeSmallInt, byte(v))
		return
	}
	e.u8(codeInt)
	e.u32(uint32(v))
}

func (e *encoder) long(v int64) {
	if v >= math.MinInt8 && v <= math.MaxInt8 {
		e.b = append(e.b, codeSmallLong, byte(v))
		return
	}
	e.u8(codeLong)
	e.u64(uint64(v))
}

func (e *encoder) timestamp(t time.Time) {
	e.u8(codeTimestamp)
	e.u64(uint64(t.UnixMilli()))
}

// variable writes a vbin, str or sym with the short form when it fits.
func (e *encoder) variable(code8 byte, p string) {
	if len(p) < 256 {
		e.b = append(e.b, code8, byte(len(p)))
	} else {
		e.b = append(e.b, code8|0x10)
		e.u32(uint32(len(p)))
	}
	e.b = append(e.b, p...)
}

func (e *encoder) binary(p []byte) {
	if len(p) < 256 {
		e.b = append(e.b, codeVbin8, byte(len(p)))
	} else {
		e.u8(codeVbin32)
		e.u32(uint32(len(p)))
	}
	e.b = append(e.b, p...)
}

func (e *encoder) string(s string) { e.variable(codeStr8, s) }
func (e *encoder) symbol(s Symbol) { e.variable(codeSym8, string(s)) }

// value writes any supported Go value with its constructor.
func (e *encoder) value(v any) {
	switch v := v.(type) {
	case nil:
		e.null()
	case bool:
		e.bool(v)
	case uint8:
		e.b = append(e.b, codeUbyte, v)
	case uint16:
		e.u8(codeUshort)
		e.u16(v)
	case uint32:
		e.uint(v)
	case uint64:
		e.ulong(v)
	case int8:
		e.b = append(e.b, codeByte, byte(v))
	case int16:
		e.u8(codeShort)
		e.u16(uint16(v))
	case int32:
		e.int(v)
	case int64:
		e.long(v)
	case float32:
		e.u8(codeFloat)
		e.u32(math.Float32bits(v))
	case float64:
		e.u8(codeDouble)
		e.u64(math.Float64bits(v))
	case Decimal32:
		e.u8(codeDecimal32)
		e.b = append(e.b, v[:]...)
	case Decimal64:
		e.u8(codeDecimal64)
		e.b = append(e.b, v[:]...)
	case Decimal128:
		e.u8(codeDecimal128)
		e.b = append(e.b, v[:]...)
	case Char:
		e.u8(codeChar)
		e.u32(uint32(v))
	case time.Time:
		e.timestamp(v)
	case UUID:
		e.u8(codeUUID)
		e.b = append(e.b, v[:]...)
	case []byte:
		e.binary(v)
	case string:
		e.string(v)
	case Symbol:
		e.symbol(v)
	case []any:
		e.list(v)
	case *Map:
		e.mapValue(v)
	case Array:
		e.array(v)
	case Described:
		e.u8(codeDescribed)
		e.value(v.Descriptor)
		e.value(v.Value)
	default:
		e.setErr(fmt.Errorf("encoding %T: %w", v, errUnsupported))
	}
}

// compound reserves the widest header for a list, map or array and returns
// its position; finish fills it in. With constructor false the header has
// no constructor byte, as for array elements.
func (e *encoder) compound(constructor bool) int {
	start := len(e.b)
	if constructor {
		e.u8(0)
	}
	e.b = append(e.b, 0, 0, 0, 0, 0, 0, 0, 0)
	return start
}

// finish completes the compound started at start holding count elements.
// If shrink is set and the content fits, it switches to the one-byte form
// (code32 minus 0x10) or, for an empty list, to list0. The content is moved
// down, which is cheaper than sizing every value twice.
func (e *encoder) finish(start int, constructor bool, code32 byte, count int, shrink bool) {
	hdr := start
	if constructor {
		hdr++
	}
	content := e.b[hdr+8:]
	switch {
	case shrink && constructor && code32 == codeList32 && count == 0:
		e.b[start] = codeList0
		e.b = e.b[:start+1]
	case shrink && len(content)+1 < 256 && count < 256:
		if constructor {
			e.b[start] = code32 - 0x10
		}
		e.b[hdr] = byte(len(content) + 1)
		e.b[hdr+1] = byte(count)
		n := copy(e.b[hdr+2:], content)
		e.b = e.b[:hdr+2+n]
	default:
		if constructor {
			e.b[start] = code32
		}
		if uint64(len(content))+4 > math.MaxUint32 || uint64(count) > math.MaxUint32 {
			e.setErr(fmt.Errorf("encoding a compound value of %d bytes: exceeds the 4 GiB limit of amqp", len(content)))
		}
		binary.BigEndian.PutUint32(e.b[hdr:], uint32(len(content)+4))
		binary.BigEndian.PutUint32(e.b[hdr+4:], uint32(count))
	}
}

func (e *encoder) list(l []any) {
	if len(l) == 0 {
		e.u8(codeList0)
		return
	}
	start := e.compound(true)
	for _, v := range l {
		e.value(v)
	}
	e.finish(start, true, codeList32, len(l), true)
}

func (e *encoder) mapValue(m *Map) {
	start := e.compound(true)
	for _, en := range m.Entries() {
		e.value(en.Key)
		e.value(en.Value)
	}
	e.finish(start, true, codeMap32, 2*m.Len(), true)
}

func (e *encoder) array(a Array) {
	start := e.compound(true)
	e.arrayContent(a)
	e.finish(start, true, codeArray32, len(a.Values), true)
}

// arrayCodes holds, per element type, the constructor every element fits
// and the one-byte form for when all elements are small (0: none).
// Compound elements always use their four-byte form, which any fits.
var arrayCodes = [...]struct{ wide, small byte }{
	TypeNull: {codeNull, 0}, TypeBoolean: {codeBool, 0}, TypeUbyte: {codeUbyte, 0},
	TypeUshort: {codeUshort, 0}, TypeUint: {codeUint, codeSmallUint}, TypeUlong: {codeUlong, codeSmallUlong},
	TypeByte: {codeByte, 0}, TypeShort: {codeShort, 0}, TypeInt: {codeInt, codeSmallInt},
	TypeLong: {codeLong, codeSmallLong}, TypeFloat: {codeFloat, 0}, TypeDouble: {codeDouble, 0},
	TypeDecimal32: {codeDecimal32, 0}, TypeDecimal64: {codeDecimal64, 0}, TypeDecimal128: {codeDecimal128, 0},
	TypeChar: {codeChar, 0}, TypeTimestamp: {codeTimestamp, 0}, TypeUUID: {codeUUID, 0},
	TypeBinary: {codeVbin32, codeVbin8}, TypeString: {codeStr32, codeStr8}, TypeSymbol: {codeSym32, codeSym8},
	TypeList: {codeList32, 0}, TypeMap: {codeMap32, 0}, TypeArray: {codeArray32, 0},
}

// small reports whether v fits the one-byte form of its type.
func small(v any) bool {
	switch v := v.(type) {
	case uint32:
		return v < 256
	case uint64:
		return v < 256
	case int32:
		return v >= math.MinInt8 && v <= math.MaxInt8
	case int64:
		return v >= math.MinInt8 && v <= math.MaxInt8
	case []byte:
		return len(v) < 256
	case string:
		return len(v) < 256
	case Symbol:
		return len(v) < 256
	}
	return false
}

// arrayElementCode picks the one constructor all elements of a share.
func arrayElementCode(a Array) (byte, error) {
	if a.Type == 0 || int(a.Type) >= len(arrayCodes) {
		return 0, fmt.Errorf("encoding array: element type %s is not set or not known", a.Type)
	}
	c := arrayCodes[a.Type]
	for i, v := range a.Values {
		if t, ok := TypeOf(v); !ok || t != a.Type {
			return 0, fmt.Errorf("encoding array of %s: element %d is %T", a.Type, i, v)
		}
		if _, ok := v.(Described); ok {
			return 0, fmt.Errorf("encoding array of %s: element %d is described; set Array.Descriptor instead", a.Type, i)
		}
		if !small(v) {
			c.small = 0
		}
	}
	if c.small != 0 {
		return c.small, nil
	}
	return c.wide, nil
}

// arrayContent writes an array's element constructor and elements.
func (e *encoder) arrayContent(a Array) {
	code, err := arrayElementCode(a)
	if err != nil {
		e.setErr(err)
		return
	}
	if a.Descriptor != nil {
		e.u8(codeDescribed)
		e.value(a.Descriptor)
	}
	e.u8(code)
	for _, v := range a.Values {
		e.elementBody(code, v)
	}
}

// elementBody writes one array element without its constructor.
func (e *encoder) elementBody(code byte, v any) {
	switch code {
	case codeNull:
	case codeBool:
		if v.(bool) {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case codeSmallUint:
		e.u8(byte(v.(uint32)))
	case codeSmallUlong:
		e.u8(byte(v.(uint64)))
	case codeSmallInt:
		e.u8(byte(v.(int32)))
	case codeSmallLong:
		e.u8(byte(v.(int64)))
	case codeUint:
		e.u32(v.(uint32))
	case codeUlong:
		e.u64(v.(uint64))
	case codeInt:
		e.u32(uint32(v.(int32)))
	case codeLong:
		e.u64(uint64(v.(int64)))
	case codeVbin8, codeVbin32:
		elementBytes(e, code, v.([]byte))
	case codeStr8, codeStr32:
		elementBytes(e, code, v.(string))
	case codeSym8, codeSym32:
		elementBytes(e, code, v.(Symbol))
	case codeList32:
		l := v.([]any)
		start := e.compound(false)
		for _, x := range l {
			e.value(x)
		}
		e.finish(start, false, codeList32, len(l), false)
	case codeMap32:
		m := v.(*Map)
		start := e.compound(false)
		for _, en := range m.Entries() {
			e.value(en.Key)
			e.value(en.Value)
		}
		e.finish(start, false, codeMap32, 2*m.Len(), false)
	case codeArray32:
		a := v.(Array)
		start := e.compound(false)
		e.arrayContent(a)
		e.finish(start, false, codeArray32, len(a.Values), false)
	default:
		// Every remaining code is the only constructor of a fixed-width
		// type, so the body is the value's encoding minus that byte.
		n := len(e.b)
		e.value(v)
		copy(e.b[n:], e.b[n+1:])
		e.b = e.b[:len(e.b)-1]
	}
}

// elementBytes writes the length prefix (one byte for the 0xa_ codes, four
// for 0xb_) and the bytes of a vbin, str or sym array element.
func elementBytes[T ~[]byte | ~string](e *encoder, code byte, p T) {
	if code&0xf0 == 0xa0 {
		e.u8(byte(len(p)))
	} else {
		e.u32(uint32(len(p)))
	}
	e.b = append(e.b, p...)
}
