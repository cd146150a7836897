package amqpwire

import (
	"fmt"
	"time"
)

// Descriptor codes of the performatives, SASL frames, and the composite
// types they carry (spec §2.7, §2.8, §3.2, §3.4, §3.5, §5.3). The domain
// 0x00000000 is implied: the codes are what goes on the wire as ulong.
const (
	DescOpen             uint64 = 0x10
	DescBegin            uint64 = 0x11
	DescAttach           uint64 = 0x12
	DescFlow             uint64 = 0x13
	DescTransfer         uint64 = 0x14
	DescDisposition      uint64 = 0x15
	DescDetach           uint64 = 0x16
	DescEnd              uint64 = 0x17
	DescClose            uint64 = 0x18
	DescError            uint64 = 0x1d
	DescReceived         uint64 = 0x23
	DescAccepted         uint64 = 0x24
	DescRejected         uint64 = 0x25
	DescReleased         uint64 = 0x26
	DescModified         uint64 = 0x27
	DescSource           uint64 = 0x28
	DescTarget           uint64 = 0x29
	DescSASLMechanisms   uint64 = 0x40
	DescSASLInit         uint64 = 0x41
	DescSASLChallenge    uint64 = 0x42
	DescSASLResponse     uint64 = 0x43
	DescSASLOutcome      uint64 = 0x44
	DescHeader           uint64 = 0x70
	DescDeliveryAnnots   uint64 = 0x71
	DescMessageAnnots    uint64 = 0x72
	DescProperties       uint64 = 0x73
	DescApplicationProps uint64 = 0x74
	DescData             uint64 = 0x75
	DescAMQPSequence     uint64 = 0x76
	DescAMQPValue        uint64 = 0x77
	DescFooter           uint64 = 0x78
)

// descNames are the symbolic descriptors, which a peer may send instead of
// the numeric ones.
var descNames = map[uint64]string{
	DescOpen: "amqp:open:list", DescBegin: "amqp:begin:list", DescAttach: "amqp:attach:list",
	DescFlow: "amqp:flow:list", DescTransfer: "amqp:transfer:list",
	DescDisposition: "amqp:disposition:list", DescDetach: "amqp:detach:list",
	DescEnd: "amqp:end:list", DescClose: "amqp:close:list", DescError: "amqp:error:list",
	DescReceived: "amqp:received:list", DescAccepted: "amqp:accepted:list",
	DescRejected: "amqp:rejected:list", DescReleased: "amqp:released:list",
	DescModified: "amqp:modified:list", DescSource: "amqp:source:list",
	DescTarget: "amqp:target:list", DescSASLMechanisms: "amqp:sasl-mechanisms:list",
	DescSASLInit: "amqp:sasl-init:list", DescSASLChallenge: "amqp:sasl-challenge:list",
	DescSASLResponse: "amqp:sasl-response:list", DescSASLOutcome: "amqp:sasl-outcome:list",
	DescHeader: "amqp:header:list", DescDeliveryAnnots: "amqp:delivery-annotations:map",
	DescMessageAnnots: "amqp:message-annotations:map", DescProperties: "amqp:properties:list",
	DescApplicationProps: "amqp:application-properties:map", DescData: "amqp:data:binary",
	DescAMQPSequence: "amqp:amqp-sequence:list", DescAMQPValue: "amqp:amqp-value:*",
	DescFooter: "amqp:footer:map",
}

var descCodes = func() map[Symbol]uint64 {
	m := make(map[Symbol]uint64, len(descNames))
	for c, n := range descNames {
		m[Symbol(n)] = c
	}
	return m
}()

// PeekDescriptor returns the numeric descriptor of the described value at
// the start of b (a frame body or a message section) without decoding the
// rest. A known symbolic descriptor is translated to its code; an unknown
// one is an error.
func PeekDescriptor(b []byte) (uint64, error) {
	return peekDescriptor(b, "")
}

func peekDescriptor(b []byte, obj string) (uint64, error) {
	d := newDecoder(b)
	d.obj = obj
	return d.descriptor()
}

// descriptor reads the 0x00 constructor and the descriptor after it.
func (d *decoder) descriptor() (uint64, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	if c != codeDescribed {
		return 0, d.unexpected(c, "a described type")
	}
	c, err = d.code()
	if err != nil {
		return 0, err
	}
	switch c {
	case codeUlong0, codeSmallUlong, codeUlong:
		v, err := d.body(c)
		if err != nil {
			return 0, err
		}
		return v.(uint64), nil
	case codeSym8, codeSym32:
		start := d.off - 1
		p, err := d.variable(c)
		if err != nil {
			return 0, err
		}
		if code, ok := descCodes[Symbol(p)]; ok {
			return code, nil
		}
		d.off = start
		return 0, d.fail("a known symbolic descriptor", fmt.Sprintf("%q", p))
	}
	return 0, d.unexpected(c, "a ulong or symbol descriptor")
}

// fields reads the fields of a described list in order. Errors stick: once
// one is set every later read returns a zero value, and done reports it.
type fields struct {
	d        *decoder
	n, i     int // field count, next field index
	end      int // offset where the list ends
	savedEnd int
	savedObj string
	err      error
}

// describedList reads the descriptor (which must be want) and the list
// header of a composite value.
func (d *decoder) describedList(want uint64, name string) fields {
	if d.obj == "" {
		d.obj = name
	}
	start := d.off
	got, err := d.descriptor()
	if err == nil && got != want {
		d.off = start
		err = d.fail(descNames[want], fmt.Sprintf("descriptor 0x%x", got))
	}
	if err != nil {
		return fields{d: d, err: err}
	}
	return d.listAfterDescriptor(name)
}

// listAfterDescriptor is describedList for a section whose descriptor has
// already been read.
func (d *decoder) listAfterDescriptor(name string) fields {
	f := fields{d: d, savedObj: d.obj}
	d.obj, d.field = name, ""
	if err := d.enter(); err != nil {
		f.err = err
		return f
	}
	c, err := d.code()
	switch {
	case err != nil:
	case c == codeList0:
		f.end = d.off
	case c == codeList8 || c == codeList32:
		f.n, f.end, err = d.compound(c, 1)
	default:
		err = d.unexpected(c, "list")
	}
	f.err = err
	f.savedEnd = d.end
	if err == nil {
		d.end = f.end
	}
	return f
}

// done finishes the list: fields beyond those this package knows are
// skipped, as the specification asks of receivers.
func (f *fields) done() error {
	d := f.d
	if f.err != nil {
		return f.err
	}
	d.end = f.savedEnd
	d.depth--
	defer func() { d.obj = f.savedObj }()
	if f.i < f.n {
		d.off = f.end
	} else if d.off != f.end {
		d.field = ""
		return d.fail(fmt.Sprintf("%d fields ending at offset %d", f.n, f.end), fmt.Sprintf("%d unread bytes", f.end-d.off))
	}
	return nil
}

// finish is done for a top-level value, returning the bytes it took.
func (f *fields) finish() (int, error) {
	err := f.done()
	return f.d.off, err
}

// next moves to the next field and reports whether it holds a value (it
// is neither beyond the list's count nor null).
func (f *fields) next(name string) bool {
	if f.err != nil {
		return false
	}
	f.d.field = name
	f.i++
	if f.i > f.n {
		return false
	}
	c, ok := f.d.peek()
	if !ok {
		f.err = f.d.fail("field "+name, "end of list")
		return false
	}
	if c == codeNull {
		f.d.off++
		return false
	}
	return true
}

// read decodes the next field with r, returning def when it is absent.
func read[T any](f *fields, name string, r func(*decoder) (T, error), def T) T {
	if !f.next(name) {
		return def
	}
	v, err := r(f.d)
	if err != nil {
		f.err = err
		return def
	}
	return v
}

// readReq decodes a mandatory field.
func readReq[T any](f *fields, name string, r func(*decoder) (T, error)) T {
	var zero T
	if !f.next(name) {
		if f.err == nil {
			f.err = f.d.fail("mandatory field "+name, "null or no value")
		}
		return zero
	}
	v, err := r(f.d)
	if err != nil {
		f.err = err
	}
	return v
}

// readOpt decodes a field whose absence matters and has no default.
func readOpt[T any](f *fields, name string, r func(*decoder) (T, error)) *T {
	if !f.next(name) {
		return nil
	}
	v, err := r(f.d)
	if err != nil {
		f.err = err
		return nil
	}
	return &v
}

// Typed readers: each reads a constructor and accepts only the encodings of
// its AMQP type.

// readAs reads a value encoded with one of codes, the constructors of one
// AMQP type, and returns it as T (the Go type body gives that AMQP type).
func readAs[T any](d *decoder, want string, codes ...byte) (T, error) {
	var zero T
	c, err := d.code()
	if err != nil {
		return zero, err
	}
	for _, ok := range codes {
		if c == ok {
			v, err := d.body(c)
			if err != nil {
				return zero, err
			}
			return v.(T), nil
		}
	}
	return zero, d.unexpected(c, want)
}

func (d *decoder) readBool() (bool, error) {
	return readAs[bool](d, "boolean", codeTrue, codeFalse, codeBool)
}

func (d *decoder) readUbyte() (uint8, error) { return readAs[uint8](d, "ubyte", codeUbyte) }

func (d *decoder) readUshort() (uint16, error) { return readAs[uint16](d, "ushort", codeUshort) }

func (d *decoder) readTimestamp() (time.Time, error) {
	return readAs[time.Time](d, "timestamp", codeTimestamp)
}

// The readers below do not go through body, whose boxing of the value
// costs an allocation on the path of every transfer, flow and message.

func (d *decoder) readString() (string, error) {
	p, err := d.readVariable("string", codeStr8)
	return string(p), err
}

func (d *decoder) readSymbol() (Symbol, error) {
	p, err := d.readVariable("symbol", codeSym8)
	return Symbol(p), err
}

// readBinary returns a slice aliasing the input.
func (d *decoder) readBinary() ([]byte, error) {
	return d.readVariable("binary", codeVbin8)
}

// readVariable reads a vbin, str or sym given its one-byte-length
// constructor code8 (the four-byte form is code8|0x10).
func (d *decoder) readVariable(want string, code8 byte) ([]byte, error) {
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	if c != code8 && c != code8|0x10 {
		return nil, d.unexpected(c, want)
	}
	return d.variable(c)
}
func (d *decoder) readUint() (uint32, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	if c != codeUint0 && c != codeSmallUint && c != codeUint {
		return 0, d.unexpected(c, "uint")
	}
	v, err := d.unsigned(c)
	return uint32(v), err
}

func (d *decoder) readUlong() (uint64, error) {
	c, err := d.code()
	if err != nil {
		return 0, err
	}
	if c != codeUlong0 && c != codeSmallUlong && c != codeUlong {
		return 0, d.unexpected(c, "ulong")
	}
	return d.unsigned(c)
}

// unsigned reads the data after constructor c as a big-endian unsigned
// number of width(c) bytes.
func (d *decoder) unsigned(c byte) (uint64, error) {
	n := width(c)
	if err := d.need(n, codes[c].name); err != nil {
		return 0, err
	}
	var v uint64
	for _, b := range d.fixed(n) {
		v = v<<8 | uint64(b)
	}
	return v, nil
}

// readSymbols reads a field of symbols with multiple="true", which may be
// sent as one symbol or as an array of symbols.
func (d *decoder) readSymbols() ([]Symbol, error) {
	c, ok := d.peek()
	if ok && (c == codeSym8 || c == codeSym32) {
		s, err := d.readSymbol()
		return []Symbol{s}, err
	}
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	var a Array
	switch c {
	case codeArray8, codeArray32:
		a, err = d.array(c)
	case codeList0, codeList8, codeList32:
		// Not what the specification says, but Qpid Proton sends a list
		// when its Python binding is handed one.
		var v any
		v, err = d.body(c)
		a.Type, a.Values = TypeSymbol, v.([]any)
		for _, x := range a.Values {
			if _, ok := x.(Symbol); !ok && err == nil {
				err = d.fail("list of symbol", fmt.Sprintf("an element of Go type %T", x))
			}
		}
	default:
		return nil, d.unexpected(c, "symbol or array of symbol")
	}
	if err != nil {
		return nil, err
	}
	if a.Descriptor != nil || (a.Type != TypeSymbol && len(a.Values) > 0) {
		return nil, d.fail("array of symbol", "array of "+a.Type.String())
	}
	out := make([]Symbol, len(a.Values))
	for i, v := range a.Values {
		out[i] = v.(Symbol)
	}
	return out, nil
}

func (d *decoder) readMap() (*Map, error) {
	c, err := d.code()
	if err != nil {
		return nil, err
	}
	if c != codeMap8 && c != codeMap32 {
		return nil, d.unexpected(c, "map")
	}
	return d.mapBody(c)
}

// listWriter writes the fields of a described list. Null fields are written
// as placeholders and trailing ones are cut at the end, since a list that
// stops early means the same as one padded with nulls and is shorter.
type listWriter struct {
	e              *encoder
	start          int
	n, keepN, keep int
}

func (e *encoder) describedList(code uint64) listWriter {
	e.u8(codeDescribed)
	e.ulong(code)
	start := e.compound(true)
	return listWriter{e: e, start: start, keep: len(e.b)}
}

func (l *listWriter) end() {
	l.e.b = l.e.b[:l.keep]
	l.e.finish(l.start, true, codeList32, l.keepN, true)
}

func (l *listWriter) null() {
	l.e.null()
	l.n++
}

// kept marks the field just written as a value.
func (l *listWriter) kept() {
	l.n++
	l.keepN, l.keep = l.n, len(l.e.b)
}

func (l *listWriter) uint(v uint32) { l.e.uint(v); l.kept() }
func (l *listWriter) uintDef(v, def uint32) {
	if v == def {
		l.null()
	} else {
		l.uint(v)
	}
}
func (l *listWriter) optUint(p *uint32) {
	if p == nil {
		l.null()
	} else {
		l.uint(*p)
	}
}
func (l *listWriter) ulongDef(v, def uint64) {
	if v == def {
		l.null()
	} else {
		l.e.ulong(v)
		l.kept()
	}
}
func (l *listWriter) ubyte(v uint8) { l.e.b = append(l.e.b, codeUbyte, v); l.kept() }
func (l *listWriter) ubyteDef(v, def uint8) {
	if v == def {
		l.null()
	} else {
		l.ubyte(v)
	}
}
func (l *listWriter) ushort(v uint16) { l.e.u8(codeUshort); l.e.u16(v); l.kept() }
func (l *listWriter) ushortDef(v, def uint16) {
	if v == def {
		l.null()
	} else {
		l.ushort(v)
	}
}
func (l *listWriter) bool(v bool) { l.e.bool(v); l.kept() }
func (l *listWriter) boolDef(v, def bool) {
	if v == def {
		l.null()
	} else {
		l.bool(v)
	}
}

// reqString always writes s, even when empty.
func (l *listWriter) reqString(s string) { l.e.string(s); l.kept() }
func (l *listWriter) string(s string) {
	if s == "" {
		l.null()
	} else {
		l.reqString(s)
	}
}
func (l *listWriter) symbol(s Symbol) {
	if s == "" {
		l.null()
	} else {
		l.e.symbol(s)
		l.kept()
	}
}

// symbols writes a multiple="true" symbol field as an array.
func (l *listWriter) symbols(s []Symbol) {
	if len(s) == 0 {
		l.null()
		return
	}
	l.e.array(SymbolArray(s...))
	l.kept()
}

// binary writes nil as null and an empty non-nil slice as empty binary.
func (l *listWriter) binary(p []byte) {
	if p == nil {
		l.null()
	} else {
		l.e.binary(p)
		l.kept()
	}
}
func (l *listWriter) mapField(m *Map) {
	if m == nil {
		l.null()
	} else {
		l.e.mapValue(m)
		l.kept()
	}
}
func (l *listWriter) timestamp(t time.Time) {
	if t.IsZero() {
		l.null()
	} else {
		l.e.timestamp(t)
		l.kept()
	}
}
func (l *listWriter) value(v any) {
	if v == nil {
		l.null()
	} else {
		l.e.value(v)
		l.kept()
	}
}

// composite writes a described composite field, or null when absent.
func (l *listWriter) composite(present bool, write func(*encoder)) {
	if !present {
		l.null()
		return
	}
	write(l.e)
	l.kept()
}
