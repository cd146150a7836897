package amqpwire

import (
	"fmt"
	"time"
)

// Message is an annotated AMQP message (spec §3.2): the sections of a
// transfer's payload. Absent sections are nil. The body is one or more Data
// sections, one or more Sequence sections, or one AMQP value; HasValue
// tells a value section that holds null from no value section.
type Message struct {
	Header                *Header
	DeliveryAnnotations   *Map // symbol or ulong keys
	MessageAnnotations    *Map // symbol or ulong keys
	Properties            *Properties
	ApplicationProperties *Map // string keys
	Data                  [][]byte
	Sequence              [][]any
	Value                 any
	HasValue              bool // an amqp-value section is present (implied by Value != nil when encoding)
	Footer                *Map
}

// Header carries delivery details (spec §3.2.1).
type Header struct {
	Durable       bool
	Priority      uint8   // default 4
	TTL           *uint32 // milliseconds
	FirstAcquirer bool
	DeliveryCount uint32
}

// Properties are the immutable properties of a message (spec §3.2.4).
// MessageID and CorrelationID hold uint64, UUID, []byte or string and keep
// that type when re-encoded. Zero values mean absent.
type Properties struct {
	MessageID          any
	UserID             []byte
	To                 string
	Subject            string
	ReplyTo            string
	CorrelationID      any
	ContentType        Symbol
	ContentEncoding    Symbol
	AbsoluteExpiryTime time.Time
	CreationTime       time.Time
	GroupID            string
	GroupSequence      *uint32
	ReplyToGroupID     string
}

// DecodeMessage decodes a whole message; see Message.Decode.
func DecodeMessage(b []byte) (*Message, error) {
	m := new(Message)
	if err := m.Decode(b); err != nil {
		return nil, err
	}
	return m, nil
}

// The order sections must come in; the body kinds share one rank.
const (
	rankHeader = iota
	rankDeliveryAnnotations
	rankMessageAnnotations
	rankProperties
	rankApplicationProperties
	rankBody
	rankFooter
)

// Decode decodes all of b as the sections of one message, in the order the
// specification requires, each at most once except repeated data or
// amqp-sequence sections. Data sections and binary values alias b.
func (m *Message) Decode(b []byte) error {
	*m = Message{}
	d := newDecoder(b)
	rank := -1
	var body uint64 // descriptor of the body sections seen, 0 if none
	for d.off < d.end {
		start := d.off
		code, err := d.descriptor()
		if err != nil {
			d.obj, d.field = "message", ""
			return err
		}
		r, name := sectionRank(code)
		d.obj, d.field = name, ""
		switch {
		case r < 0:
			d.off = start
			return d.fail("a message section", fmt.Sprintf("descriptor 0x%x", code))
		case r < rank || (r == rank && (r != rankBody || code != body || code == DescAMQPValue)):
			d.off = start
			return d.fail("sections in the order header, annotations, properties, application-properties, body, footer", name+" out of order or repeated")
		}
		rank = r
		if r == rankBody {
			body = code
		}
		if err := m.section(d, code); err != nil {
			return err
		}
	}
	return nil
}

func sectionRank(code uint64) (int, string) {
	switch code {
	case DescHeader:
		return rankHeader, "header"
	case DescDeliveryAnnots:
		return rankDeliveryAnnotations, "delivery-annotations"
	case DescMessageAnnots:
		return rankMessageAnnotations, "message-annotations"
	case DescProperties:
		return rankProperties, "properties"
	case DescApplicationProps:
		return rankApplicationProperties, "application-properties"
	case DescData:
		return rankBody, "data"
	case DescAMQPSequence:
		return rankBody, "amqp-sequence"
	case DescAMQPValue:
		return rankBody, "amqp-value"
	case DescFooter:
		return rankFooter, "footer"
	}
	return -1, ""
}

// section decodes the value of a section whose descriptor was just read.
func (m *Message) section(d *decoder, code uint64) error {
	var err error
	switch code {
	case DescHeader:
		m.Header, err = d.headerFields()
	case DescDeliveryAnnots:
		m.DeliveryAnnotations, err = d.annotations()
	case DescMessageAnnots:
		m.MessageAnnotations, err = d.annotations()
	case DescProperties:
		m.Properties, err = d.propertiesFields()
	case DescApplicationProps:
		m.ApplicationProperties, err = d.readMap()
		for _, e := range m.ApplicationProperties.Entries() {
			if _, ok := e.Key.(string); !ok && err == nil {
				err = d.fail("application-properties keys of type string", fmt.Sprintf("a key of Go type %T", e.Key))
			}
		}
	case DescData:
		var p []byte
		if p, err = d.readBinary(); err == nil {
			m.Data = append(m.Data, p)
		}
	case DescAMQPSequence:
		var c byte
		var l []any
		if c, err = d.code(); err == nil {
			switch c {
			case codeList0:
				l = []any{}
			case codeList8, codeList32:
				l, err = d.list(c)
			default:
				err = d.unexpected(c, "list")
			}
		}
		if err == nil {
			m.Sequence = append(m.Sequence, l)
		}
	case DescAMQPValue:
		m.Value, err = d.value()
		m.HasValue = true
	case DescFooter:
		m.Footer, err = d.annotations()
	}
	return err
}

// annotations reads an annotations map, whose keys must be symbols or
// ulongs (spec §3.2.10).
func (d *decoder) annotations() (*Map, error) {
	m, err := d.readMap()
	if err != nil {
		return nil, err
	}
	for _, e := range m.entries {
		switch e.Key.(type) {
		case Symbol, uint64:
		default:
			return nil, d.fail("annotation keys of type symbol or ulong", fmt.Sprintf("a key of Go type %T", e.Key))
		}
	}
	return m, nil
}

// headerFields reads the list of a header section.
func (d *decoder) headerFields() (*Header, error) {
	f := d.listAfterDescriptor("header")
	h := &Header{
		Durable:       read(&f, "durable", (*decoder).readBool, false),
		Priority:      read(&f, "priority", (*decoder).readUbyte, 4),
		TTL:           readOpt(&f, "ttl", (*decoder).readUint),
		FirstAcquirer: read(&f, "first-acquirer", (*decoder).readBool, false),
		DeliveryCount: read(&f, "delivery-count", (*decoder).readUint, 0),
	}
	return h, f.done()
}

// propertiesFields reads the list of a properties section.
func (d *decoder) propertiesFields() (*Properties, error) {
	f := d.listAfterDescriptor("properties")
	p := &Properties{
		MessageID:          read(&f, "message-id", (*decoder).readMessageID, nil),
		UserID:             read(&f, "user-id", (*decoder).readBinary, nil),
		To:                 read(&f, "to", (*decoder).readString, ""),
		Subject:            read(&f, "subject", (*decoder).readString, ""),
		ReplyTo:            read(&f, "reply-to", (*decoder).readString, ""),
		CorrelationID:      read(&f, "correlation-id", (*decoder).readMessageID, nil),
		ContentType:        read(&f, "content-type", (*decoder).readSymbol, ""),
		ContentEncoding:    read(&f, "content-encoding", (*decoder).readSymbol, ""),
		AbsoluteExpiryTime: read(&f, "absolute-expiry-time", (*decoder).readTimestamp, time.Time{}),
		CreationTime:       read(&f, "creation-time", (*decoder).readTimestamp, time.Time{}),
		GroupID:            read(&f, "group-id", (*decoder).readString, ""),
		GroupSequence:      readOpt(&f, "group-sequence", (*decoder).readUint),
		ReplyToGroupID:     read(&f, "reply-to-group-id", (*decoder).readString, ""),
	}
	return p, f.done()
}

// readMessageID reads a message-id or correlation-id: ulong, uuid, binary
// or string (spec §3.2.11 to §3.2.15).
func (d *decoder) readMessageID() (any, error) {
	c, ok := d.peek()
	switch {
	case !ok:
	case c == codeUlong0 || c == codeSmallUlong || c == codeUlong || c == codeUUID ||
		c == codeVbin8 || c == codeVbin32 || c == codeStr8 || c == codeStr32:
		return d.value()
	default:
		d.off++
		return nil, d.unexpected(c, "ulong, uuid, binary or string")
	}
	return nil, d.fail("a message id", "end of data")
}

// Encode appends the message's sections to dst in the specification's
// order. A message-id or correlation-id of another type than uint64, UUID,
// []byte or string is an error, as are application-properties keys that
// are not strings.
func (m *Message) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	if h := m.Header; h != nil {
		l := e.describedList(DescHeader)
		l.boolDef(h.Durable, false)
		l.ubyteDef(h.Priority, 4)
		l.optUint(h.TTL)
		l.boolDef(h.FirstAcquirer, false)
		l.uintDef(h.DeliveryCount, 0)
		l.end()
	}
	e.mapSection(DescDeliveryAnnots, m.DeliveryAnnotations)
	e.mapSection(DescMessageAnnots, m.MessageAnnotations)
	if p := m.Properties; p != nil {
		checkID(&e, p.MessageID)
		checkID(&e, p.CorrelationID)
		l := e.describedList(DescProperties)
		l.value(p.MessageID)
		l.binary(p.UserID)
		l.string(p.To)
		l.string(p.Subject)
		l.string(p.ReplyTo)
		l.value(p.CorrelationID)
		l.symbol(p.ContentType)
		l.symbol(p.ContentEncoding)
		l.timestamp(p.AbsoluteExpiryTime)
		l.timestamp(p.CreationTime)
		l.string(p.GroupID)
		l.optUint(p.GroupSequence)
		l.string(p.ReplyToGroupID)
		l.end()
	}
	for _, en := range m.ApplicationProperties.Entries() {
		if _, ok := en.Key.(string); !ok {
			e.setErr(fmt.Errorf("encoding application-properties: key of Go type %T; keys must be strings", en.Key))
		}
	}
	e.mapSection(DescApplicationProps, m.ApplicationProperties)
	bodies := 0
	for _, p := range m.Data {
		e.section(DescData)
		e.binary(p)
		bodies = 1
	}
	if len(m.Sequence) > 0 {
		bodies++
	}
	for _, s := range m.Sequence {
		e.section(DescAMQPSequence)
		e.list(s)
	}
	if m.HasValue || m.Value != nil {
		bodies++
		e.section(DescAMQPValue)
		e.value(m.Value)
	}
	if bodies > 1 {
		e.setErr(fmt.Errorf("encoding message: the body must be data, amqp-sequence or amqp-value sections, not a mix"))
	}
	e.mapSection(DescFooter, m.Footer)
	return e.b, e.err
}

// checkID refuses message and correlation ids of types the specification
// does not allow, so that a mistake shows at the sender.
func checkID(e *encoder, id any) {
	switch id.(type) {
	case nil, uint64, UUID, []byte, string:
	default:
		e.setErr(fmt.Errorf("encoding message properties: an id of Go type %T; use uint64, UUID, []byte or string", id))
	}
}

func (e *encoder) section(code uint64) {
	e.u8(codeDescribed)
	e.ulong(code)
}

func (e *encoder) mapSection(code uint64, m *Map) {
	if m != nil {
		e.section(code)
		e.mapValue(m)
	}
}

// DecodeBatch decodes the payload of a transfer with message-format
// MessageFormatBatch: a message whose data sections each hold one complete
// encoded message. It returns those inner messages in order.
func DecodeBatch(payload []byte) ([]*Message, error) {
	outer, err := DecodeMessage(payload)
	if err != nil {
		return nil, fmt.Errorf("decoding batch envelope: %w", err)
	}
	msgs := make([]*Message, len(outer.Data))
	for i, p := range outer.Data {
		if msgs[i], err = DecodeMessage(p); err != nil {
			return nil, fmt.Errorf("decoding message %d of batch: %w", i, err)
		}
	}
	return msgs, nil
}

// EncodeBatch appends a batch envelope holding msgs, each encoded into its
// own data section. Send it with message-format MessageFormatBatch.
func EncodeBatch(dst []byte, msgs []*Message) ([]byte, error) {
	env := Message{Data: make([][]byte, len(msgs))}
	for i, m := range msgs {
		p, err := m.Encode(nil)
		if err != nil {
			return dst, fmt.Errorf("encoding message %d of batch: %w", i, err)
		}
		env.Data[i] = p
	}
	return env.Encode(dst)
}
