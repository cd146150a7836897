package amqpwire

import (
	"fmt"
	"math"
)

// Performative is the decoded body of an AMQP or SASL frame: one of *Open,
// *Begin, *Attach, *Flow, *Transfer, *Disposition, *Detach, *End, *Close,
// *SASLMechanisms, *SASLInit, *SASLChallenge, *SASLResponse or
// *SASLOutcome.
//
// Decode overwrites every field (absent fields take the specification's
// defaults) and returns the number of bytes the performative took; for a
// Transfer the rest of the frame body is the payload. Encode appends the
// performative to dst, leaving out trailing fields that are absent or hold
// their default. Decoded binary fields (delivery tags, SASL responses)
// alias the decoded buffer.
type Performative interface {
	Encode(dst []byte) ([]byte, error)
	Decode(b []byte) (int, error)
	// FrameType is the kind of frame the performative travels in.
	FrameType() FrameType
}

// DecodeFrameBody decodes the performative at the start of a frame body and
// returns it with the bytes that follow it (a transfer's payload; empty for
// other performatives sent by a correct peer). The payload aliases body.
// Only the performative needs to be present, so a caller that holds just the
// start of a large transfer frame can still classify it.
func DecodeFrameBody(body []byte) (Performative, []byte, error) {
	code, err := peekDescriptor(body, "frame body")
	if err != nil {
		return nil, nil, err
	}
	var p Performative
	switch code {
	case DescOpen:
		p = new(Open)
	case DescBegin:
		p = new(Begin)
	case DescAttach:
		p = new(Attach)
	case DescFlow:
		p = new(Flow)
	case DescTransfer:
		p = new(Transfer)
	case DescDisposition:
		p = new(Disposition)
	case DescDetach:
		p = new(Detach)
	case DescEnd:
		p = new(End)
	case DescClose:
		p = new(Close)
	case DescSASLMechanisms:
		p = new(SASLMechanisms)
	case DescSASLInit:
		p = new(SASLInit)
	case DescSASLChallenge:
		p = new(SASLChallenge)
	case DescSASLResponse:
		p = new(SASLResponse)
	case DescSASLOutcome:
		p = new(SASLOutcome)
	default:
		return nil, nil, &DecodeError{Offset: 0, Field: "frame body", Expected: "a performative", Found: fmt.Sprintf("descriptor 0x%x", code)}
	}
	n, err := p.Decode(body)
	if err != nil {
		return nil, nil, err
	}
	return p, body[n:], nil
}

// amqpFrame and saslFrame, embedded in each performative, say which frame
// type it travels in.
type (
	amqpFrame struct{}
	saslFrame struct{}
)

// FrameType returns FrameAMQP.
func (amqpFrame) FrameType() FrameType { return FrameAMQP }

// FrameType returns FrameSASL.
func (saslFrame) FrameType() FrameType { return FrameSASL }

// Role is a link endpoint's role, encoded as a boolean.
type Role bool

// The link roles.
const (
	RoleSender   Role = false
	RoleReceiver Role = true
)

func (r Role) String() string {
	if r == RoleReceiver {
		return "receiver"
	}
	return "sender"
}

// SenderSettleMode says when a link's sender settles deliveries.
type SenderSettleMode uint8

// The sender settle modes; SndMixed is the default.
const (
	SndUnsettled SenderSettleMode = 0
	SndSettled   SenderSettleMode = 1
	SndMixed     SenderSettleMode = 2
)

// ReceiverSettleMode says when a link's receiver settles deliveries.
type ReceiverSettleMode uint8

// The receiver settle modes; RcvFirst is the default.
const (
	RcvFirst  ReceiverSettleMode = 0
	RcvSecond ReceiverSettleMode = 1
)

// Durability is a terminus durability (spec §3.5.5).
type Durability uint32

// The terminus durabilities; DurabilityNone is the default.
const (
	DurabilityNone           Durability = 0
	DurabilityConfiguration  Durability = 1
	DurabilityUnsettledState Durability = 2
)

// Terminus expiry policies (spec §3.5.6); ExpirySessionEnd is the default.
const (
	ExpiryLinkDetach      Symbol = "link-detach"
	ExpirySessionEnd      Symbol = "session-end"
	ExpiryConnectionClose Symbol = "connection-close"
	ExpiryNever           Symbol = "never"
)

// Open negotiates connection parameters (spec §2.7.1).
type Open struct {
	amqpFrame
	ContainerID         string // mandatory
	Hostname            string
	MaxFrameSize        uint32 // default math.MaxUint32
	ChannelMax          uint16 // default math.MaxUint16
	IdleTimeout         uint32 // milliseconds; 0 = none
	OutgoingLocales     []Symbol
	IncomingLocales     []Symbol
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          *Map // symbol keys
}

// Encode implements Performative.
func (p *Open) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescOpen)
	l.reqString(p.ContainerID)
	l.string(p.Hostname)
	l.uintDef(p.MaxFrameSize, math.MaxUint32)
	l.ushortDef(p.ChannelMax, math.MaxUint16)
	l.uintDef(p.IdleTimeout, 0)
	l.symbols(p.OutgoingLocales)
	l.symbols(p.IncomingLocales)
	l.symbols(p.OfferedCapabilities)
	l.symbols(p.DesiredCapabilities)
	l.mapField(p.Properties)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *Open) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescOpen, "open")
	*p = Open{
		ContainerID:         readReq(&f, "container-id", (*decoder).readString),
		Hostname:            read(&f, "hostname", (*decoder).readString, ""),
		MaxFrameSize:        read(&f, "max-frame-size", (*decoder).readUint, math.MaxUint32),
		ChannelMax:          read(&f, "channel-max", (*decoder).readUshort, math.MaxUint16),
		IdleTimeout:         read(&f, "idle-time-out", (*decoder).readUint, 0),
		OutgoingLocales:     read(&f, "outgoing-locales", (*decoder).readSymbols, nil),
		IncomingLocales:     read(&f, "incoming-locales", (*decoder).readSymbols, nil),
		OfferedCapabilities: read(&f, "offered-capabilities", (*decoder).readSymbols, nil),
		DesiredCapabilities: read(&f, "desired-capabilities", (*decoder).readSymbols, nil),
		Properties:          read(&f, "properties", (*decoder).readMap, nil),
	}
	return f.finish()
}

// Begin begins a session on a channel (spec §2.7.2).
type Begin struct {
	amqpFrame
	RemoteChannel       *uint16 // set when answering a peer's begin
	NextOutgoingID      uint32  // mandatory
	IncomingWindow      uint32  // mandatory
	OutgoingWindow      uint32  // mandatory
	HandleMax           uint32  // default math.MaxUint32
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          *Map
}

// Encode implements Performative.
func (p *Begin) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescBegin)
	if p.RemoteChannel == nil {
		l.null()
	} else {
		l.ushort(*p.RemoteChannel)
	}
	l.uint(p.NextOutgoingID)
	l.uint(p.IncomingWindow)
	l.uint(p.OutgoingWindow)
	l.uintDef(p.HandleMax, math.MaxUint32)
	l.symbols(p.OfferedCapabilities)
	l.symbols(p.DesiredCapabilities)
	l.mapField(p.Properties)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *Begin) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescBegin, "begin")
	*p = Begin{
		RemoteChannel:       readOpt(&f, "remote-channel", (*decoder).readUshort),
		NextOutgoingID:      readReq(&f, "next-outgoing-id", (*decoder).readUint),
		IncomingWindow:      readReq(&f, "incoming-window", (*decoder).readUint),
		OutgoingWindow:      readReq(&f, "outgoing-window", (*decoder).readUint),
		HandleMax:           read(&f, "handle-max", (*decoder).readUint, math.MaxUint32),
		OfferedCapabilities: read(&f, "offered-capabilities", (*decoder).readSymbols, nil),
		DesiredCapabilities: read(&f, "desired-capabilities", (*decoder).readSymbols, nil),
		Properties:          read(&f, "properties", (*decoder).readMap, nil),
	}
	return f.finish()
}

// Attach attaches a link to a session (spec §2.7.3).
type Attach struct {
	amqpFrame
	Name                 string // mandatory
	Handle               uint32 // mandatory
	Role                 Role   // mandatory
	SndSettleMode        SenderSettleMode
	RcvSettleMode        ReceiverSettleMode
	Source               *Source
	Target               *Target
	Unsettled            *Map
	IncompleteUnsettled  bool
	InitialDeliveryCount *uint32 // set by senders
	MaxMessageSize       uint64  // 0 = no limit
	OfferedCapabilities  []Symbol
	DesiredCapabilities  []Symbol
	Properties           *Map // symbol keys
}

// Encode implements Performative.
func (p *Attach) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescAttach)
	l.reqString(p.Name)
	l.uint(p.Handle)
	l.bool(bool(p.Role))
	l.ubyteDef(uint8(p.SndSettleMode), uint8(SndMixed))
	l.ubyteDef(uint8(p.RcvSettleMode), uint8(RcvFirst))
	l.composite(p.Source != nil, p.Source.encode)
	l.composite(p.Target != nil, p.Target.encode)
	l.mapField(p.Unsettled)
	l.boolDef(p.IncompleteUnsettled, false)
	l.optUint(p.InitialDeliveryCount)
	l.ulongDef(p.MaxMessageSize, 0)
	l.symbols(p.OfferedCapabilities)
	l.symbols(p.DesiredCapabilities)
	l.mapField(p.Properties)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *Attach) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescAttach, "attach")
	*p = Attach{
		Name:                 readReq(&f, "name", (*decoder).readString),
		Handle:               readReq(&f, "handle", (*decoder).readUint),
		Role:                 Role(readReq(&f, "role", (*decoder).readBool)),
		SndSettleMode:        SenderSettleMode(read(&f, "snd-settle-mode", (*decoder).readUbyte, uint8(SndMixed))),
		RcvSettleMode:        ReceiverSettleMode(read(&f, "rcv-settle-mode", (*decoder).readUbyte, uint8(RcvFirst))),
		Source:               read(&f, "source", (*decoder).readSource, nil),
		Target:               read(&f, "target", (*decoder).readTarget, nil),
		Unsettled:            read(&f, "unsettled", (*decoder).readMap, nil),
		IncompleteUnsettled:  read(&f, "incomplete-unsettled", (*decoder).readBool, false),
		InitialDeliveryCount: readOpt(&f, "initial-delivery-count", (*decoder).readUint),
		MaxMessageSize:       read(&f, "max-message-size", (*decoder).readUlong, 0),
		OfferedCapabilities:  read(&f, "offered-capabilities", (*decoder).readSymbols, nil),
		DesiredCapabilities:  read(&f, "desired-capabilities", (*decoder).readSymbols, nil),
		Properties:           read(&f, "properties", (*decoder).readMap, nil),
	}
	return f.finish()
}

// Flow updates link and session flow-control state (spec §2.7.4). Handle
// is nil for a session-only flow.
type Flow struct {
	amqpFrame
	NextIncomingID *uint32
	IncomingWindow uint32 // mandatory
	NextOutgoingID uint32 // mandatory
	OutgoingWindow uint32 // mandatory
	Handle         *uint32
	DeliveryCount  *uint32
	LinkCredit     *uint32
	Available      *uint32
	Drain          bool
	Echo           bool
	Properties     *Map
}

// Encode implements Performative.
func (p *Flow) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescFlow)
	l.optUint(p.NextIncomingID)
	l.uint(p.IncomingWindow)
	l.uint(p.NextOutgoingID)
	l.uint(p.OutgoingWindow)
	l.optUint(p.Handle)
	l.optUint(p.DeliveryCount)
	l.optUint(p.LinkCredit)
	l.optUint(p.Available)
	l.boolDef(p.Drain, false)
	l.boolDef(p.Echo, false)
	l.mapField(p.Properties)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *Flow) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescFlow, "flow")
	*p = Flow{
		NextIncomingID: readOpt(&f, "next-incoming-id", (*decoder).readUint),
		IncomingWindow: readReq(&f, "incoming-window", (*decoder).readUint),
		NextOutgoingID: readReq(&f, "next-outgoing-id", (*decoder).readUint),
		OutgoingWindow: readReq(&f, "outgoing-window", (*decoder).readUint),
		Handle:         readOpt(&f, "handle", (*decoder).readUint),
		DeliveryCount:  readOpt(&f, "delivery-count", (*decoder).readUint),
		LinkCredit:     readOpt(&f, "link-credit", (*decoder).readUint),
		Available:      readOpt(&f, "available", (*decoder).readUint),
		Drain:          read(&f, "drain", (*decoder).readBool, false),
		Echo:           read(&f, "echo", (*decoder).readBool, false),
		Properties:     read(&f, "properties", (*decoder).readMap, nil),
	}
	return f.finish()
}

// MessageFormatBatch is the message-format of a transfer whose data
// sections each hold one complete encoded message (see DecodeBatch).
const MessageFormatBatch uint32 = 0x80013700

// Transfer carries (part of) a message on a link (spec §2.7.5). The message
// itself follows the performative in the frame body.
type Transfer struct {
	amqpFrame
	Handle        uint32  // mandatory
	DeliveryID    *uint32 // absent on continuation frames
	DeliveryTag   []byte  // aliases the decoded buffer
	MessageFormat uint32  // 0 when absent
	Settled       bool
	More          bool
	RcvSettleMode *ReceiverSettleMode
	State         DeliveryState
	Resume        bool
	Aborted       bool
	Batchable     bool
}

// Encode implements Performative.
func (p *Transfer) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescTransfer)
	l.uint(p.Handle)
	l.optUint(p.DeliveryID)
	l.binary(p.DeliveryTag)
	if p.DeliveryID != nil {
		// The first transfer of a delivery must carry its message-format
		// (spec §2.7.5); go-amqp refuses one without.
		l.uint(p.MessageFormat)
	} else {
		l.uintDef(p.MessageFormat, 0)
	}
	l.boolDef(p.Settled, false)
	l.boolDef(p.More, false)
	if p.RcvSettleMode == nil {
		l.null()
	} else {
		l.ubyte(uint8(*p.RcvSettleMode))
	}
	l.composite(p.State != nil, func(e *encoder) { p.State.encodeState(e) })
	l.boolDef(p.Resume, false)
	l.boolDef(p.Aborted, false)
	l.boolDef(p.Batchable, false)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *Transfer) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescTransfer, "transfer")
	*p = Transfer{
		Handle:        readReq(&f, "handle", (*decoder).readUint),
		DeliveryID:    readOpt(&f, "delivery-id", (*decoder).readUint),
		DeliveryTag:   read(&f, "delivery-tag", (*decoder).readBinary, nil),
		MessageFormat: read(&f, "message-format", (*decoder).readUint, 0),
		Settled:       read(&f, "settled", (*decoder).readBool, false),
		More:          read(&f, "more", (*decoder).readBool, false),
	}
	if m := readOpt(&f, "rcv-settle-mode", (*decoder).readUbyte); m != nil {
		p.RcvSettleMode = (*ReceiverSettleMode)(m)
	}
	p.State = read(&f, "state", (*decoder).readState, nil)
	p.Resume = read(&f, "resume", (*decoder).readBool, false)
	p.Aborted = read(&f, "aborted", (*decoder).readBool, false)
	p.Batchable = read(&f, "batchable", (*decoder).readBool, false)
	return f.finish()
}

// Disposition settles or updates the state of the deliveries First..Last
// (spec §2.7.6). Last nil means First only.
type Disposition struct {
	amqpFrame
	Role      Role   // mandatory
	First     uint32 // mandatory
	Last      *uint32
	Settled   bool
	State     DeliveryState
	Batchable bool
}

// Encode implements Performative.
func (p *Disposition) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescDisposition)
	l.bool(bool(p.Role))
	l.uint(p.First)
	l.optUint(p.Last)
	l.boolDef(p.Settled, false)
	l.composite(p.State != nil, func(e *encoder) { p.State.encodeState(e) })
	l.boolDef(p.Batchable, false)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *Disposition) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescDisposition, "disposition")
	*p = Disposition{
		Role:      Role(readReq(&f, "role", (*decoder).readBool)),
		First:     readReq(&f, "first", (*decoder).readUint),
		Last:      readOpt(&f, "last", (*decoder).readUint),
		Settled:   read(&f, "settled", (*decoder).readBool, false),
		State:     read(&f, "state", (*decoder).readState, nil),
		Batchable: read(&f, "batchable", (*decoder).readBool, false),
	}
	return f.finish()
}

// Detach detaches a link (spec §2.7.7).
type Detach struct {
	amqpFrame
	Handle uint32 // mandatory
	Closed bool
	Error  *Error
}

// Encode implements Performative.
func (p *Detach) Encode(dst []byte) ([]byte, error) {
	e := encoder{b: dst}
	l := e.describedList(DescDetach)
	l.uint(p.Handle)
	l.boolDef(p.Closed, false)
	l.composite(p.Error != nil, p.Error.encode)
	l.end()
	return e.b, e.err
}

// Decode implements Performative.
func (p *Detach) Decode(b []byte) (int, error) {
	d := newDecoder(b)
	f := d.describedList(DescDetach, "detach")
	*p = Detach{
		Handle: readReq(&f, "handle", (*decoder).readUint),
		Closed: read(&f, "closed", (*decoder).readBool, false),
		Error:  read(&f, "error", (*decoder).readError, nil),
	}
	return f.finish()
}

// End ends a session (spec §2.7.8).
type End struct {
	amqpFrame
	Error *Error
}

// Encode implements Performative.
func (p *End) Encode(dst []byte) ([]byte, error) {
	return encodeErrorOnly(dst, DescEnd, p.Error)
}

// Decode implements Performative.
func (p *End) Decode(b []byte) (int, error) {
	var err error
	var n int
	p.Error, n, err = decodeErrorOnly(b, DescEnd, "end")
	return n, err
}

// Close closes the connection (spec §2.7.9).
type Close struct {
	amqpFrame
	Error *Error
}

// Encode implements Performative.
func (p *Close) Encode(dst []byte) ([]byte, error) {
	return encodeErrorOnly(dst, DescClose, p.Error)
}

// Decode implements Performative.
func (p *Close) Decode(b []byte) (int, error) {
	var err error
	var n int
	p.Error, n, err = decodeErrorOnly(b, DescClose, "close")
	return n, err
}

func encodeErrorOnly(dst []byte, code uint64, e *Error) ([]byte, error) {
	enc := encoder{b: dst}
	l := enc.describedList(code)
	l.composite(e != nil, e.encode)
	l.end()
	return enc.b, enc.err
}

func decodeErrorOnly(b []byte, code uint64, name string) (*Error, int, error) {
	d := newDecoder(b)
	f := d.describedList(code, name)
	e := read(&f, "error", (*decoder).readError, nil)
	n, err := f.finish()
	return e, n, err
}

// Error describes why an endpoint or delivery failed (spec §2.8.14).
type Error struct {
	Condition   Symbol // mandatory
	Description string
	Info        *Map // symbol keys
}

func (e *Error) Error() string {
	if e.Description == "" {
		return string(e.Condition)
	}
	return string(e.Condition) + ": " + e.Description
}

func (p *Error) encode(e *encoder) {
	l := e.describedList(DescError)
	l.e.symbol(p.Condition)
	l.kept()
	l.string(p.Description)
	l.mapField(p.Info)
	l.end()
}

func (d *decoder) readError() (*Error, error) {
	f := d.describedList(DescError, "error")
	e := &Error{
		Condition:   readReq(&f, "condition", (*decoder).readSymbol),
		Description: read(&f, "description", (*decoder).readString, ""),
		Info:        read(&f, "info", (*decoder).readMap, nil),
	}
	return e, f.done()
}

// Source is the source terminus of a link (spec §3.5.3).
type Source struct {
	Address               string
	Durable               Durability
	ExpiryPolicy          Symbol // default ExpirySessionEnd; "" encodes as the default
	Timeout               uint32 // seconds
	Dynamic               bool
	DynamicNodeProperties *Map
	DistributionMode      Symbol
	Filter                *Map
	DefaultOutcome        DeliveryState
	Outcomes              []Symbol
	Capabilities          []Symbol
}

func (p *Source) encode(e *encoder) {
	l := e.describedList(DescSource)
	l.string(p.Address)
	l.uintDef(uint32(p.Durable), 0)
	l.symbol(expiryOut(p.ExpiryPolicy))
	l.uintDef(p.Timeout, 0)
	l.boolDef(p.Dynamic, false)
	l.mapField(p.DynamicNodeProperties)
	l.symbol(p.DistributionMode)
	l.mapField(p.Filter)
	l.composite(p.DefaultOutcome != nil, func(e *encoder) { p.DefaultOutcome.encodeState(e) })
	l.symbols(p.Outcomes)
	l.symbols(p.Capabilities)
	l.end()
}

// expiryOut leaves the default policy out of the encoding.
func expiryOut(s Symbol) Symbol {
	if s == ExpirySessionEnd {
		return ""
	}
	return s
}

func (d *decoder) readSource() (*Source, error) {
	f := d.describedList(DescSource, "source")
	s := &Source{
		Address:               read(&f, "address", (*decoder).readString, ""),
		Durable:               Durability(read(&f, "durable", (*decoder).readUint, 0)),
		ExpiryPolicy:          read(&f, "expiry-policy", (*decoder).readSymbol, ExpirySessionEnd),
		Timeout:               read(&f, "timeout", (*decoder).readUint, 0),
		Dynamic:               read(&f, "dynamic", (*decoder).readBool, false),
		DynamicNodeProperties: read(&f, "dynamic-node-properties", (*decoder).readMap, nil),
		DistributionMode:      read(&f, "distribution-mode", (*decoder).readSymbol, ""),
		Filter:                read(&f, "filter", (*decoder).readMap, nil),
		DefaultOutcome:        read(&f, "default-outcome", (*decoder).readState, nil),
		Outcomes:              read(&f, "outcomes", (*decoder).readSymbols, nil),
		Capabilities:          read(&f, "capabilities", (*decoder).readSymbols, nil),
	}
	if s.ExpiryPolicy == "" {
		s.ExpiryPolicy = ExpirySessionEnd // an empty symbol is no policy
	}
	return s, f.done()
}

// Target is the target terminus of a link (spec §3.5.4).
type Target struct {
	Address               string
	Durable               Durability
	ExpiryPolicy          Symbol // default ExpirySessionEnd; "" encodes as the default
	Timeout               uint32 // seconds
	Dynamic               bool
	DynamicNodeProperties *Map
	Capabilities          []Symbol
}

func (p *Target) encode(e *encoder) {
	l := e.describedList(DescTarget)
	l.string(p.Address)
	l.uintDef(uint32(p.Durable), 0)
	l.symbol(expiryOut(p.ExpiryPolicy))
	l.uintDef(p.Timeout, 0)
	l.boolDef(p.Dynamic, false)
	l.mapField(p.DynamicNodeProperties)
	l.symbols(p.Capabilities)
	l.end()
}

func (d *decoder) readTarget() (*Target, error) {
	f := d.describedList(DescTarget, "target")
	t := &Target{
		Address:               read(&f, "address", (*decoder).readString, ""),
		Durable:               Durability(read(&f, "durable", (*decoder).readUint, 0)),
		ExpiryPolicy:          read(&f, "expiry-policy", (*decoder).readSymbol, ExpirySessionEnd),
		Timeout:               read(&f, "timeout", (*decoder).readUint, 0),
		Dynamic:               read(&f, "dynamic", (*decoder).readBool, false),
		DynamicNodeProperties: read(&f, "dynamic-node-properties", (*decoder).readMap, nil),
		Capabilities:          read(&f, "capabilities", (*decoder).readSymbols, nil),
	}
	if t.ExpiryPolicy == "" {
		t.ExpiryPolicy = ExpirySessionEnd
	}
	return t, f.done()
}

// DeliveryState is the state of a delivery: Received, or one of the
// outcomes Accepted, Rejected, Released and Modified (spec §3.4).
// Transactional states are not supported and fail to decode.
type DeliveryState interface {
	encodeState(e *encoder)
}

// Received says how much of a delivery has arrived (spec §3.4.1).
type Received struct {
	SectionNumber uint32
	SectionOffset uint64
}

// Accepted is the outcome of a successfully processed delivery.
type Accepted struct{}

// Rejected is the outcome of an invalid delivery; Error says why.
type Rejected struct {
	Error *Error
}

// Released is the outcome of a delivery that was not and will not be
// processed by this receiver.
type Released struct{}

// Modified is the outcome of a delivery that was not processed and whose
// annotations the sender should modify (spec §3.4.5).
type Modified struct {
	DeliveryFailed     bool
	UndeliverableHere  bool
	MessageAnnotations *Map
}

func (s Received) encodeState(e *encoder) {
	l := e.describedList(DescReceived)
	l.uint(s.SectionNumber)
	l.e.ulong(s.SectionOffset)
	l.kept()
	l.end()
}

func (Accepted) encodeState(e *encoder) {
	l := e.describedList(DescAccepted)
	l.end()
}

func (Released) encodeState(e *encoder) {
	l := e.describedList(DescReleased)
	l.end()
}

func (s Rejected) encodeState(e *encoder) {
	l := e.describedList(DescRejected)
	l.composite(s.Error != nil, s.Error.encode)
	l.end()
}

func (s Modified) encodeState(e *encoder) {
	l := e.describedList(DescModified)
	l.boolDef(s.DeliveryFailed, false)
	l.boolDef(s.UndeliverableHere, false)
	l.mapField(s.MessageAnnotations)
	l.end()
}

func (d *decoder) readState() (DeliveryState, error) {
	code, err := PeekDescriptor(d.b[d.off:d.end])
	if err != nil {
		return nil, d.fail("a delivery state", "no descriptor")
	}
	switch code {
	case DescReceived:
		f := d.describedList(code, "received")
		s := Received{
			SectionNumber: readReq(&f, "section-number", (*decoder).readUint),
			SectionOffset: readReq(&f, "section-offset", (*decoder).readUlong),
		}
		return s, f.done()
	case DescAccepted:
		f := d.describedList(code, "accepted")
		return Accepted{}, f.done()
	case DescReleased:
		f := d.describedList(code, "released")
		return Released{}, f.done()
	case DescRejected:
		f := d.describedList(code, "rejected")
		s := Rejected{Error: read(&f, "error", (*decoder).readError, nil)}
		return s, f.done()
	case DescModified:
		f := d.describedList(code, "modified")
		s := Modified{
			DeliveryFailed:     read(&f, "delivery-failed", (*decoder).readBool, false),
			UndeliverableHere:  read(&f, "undeliverable-here", (*decoder).readBool, false),
			MessageAnnotations: read(&f, "message-annotations", (*decoder).readMap, nil),
		}
		return s, f.done()
	}
	return nil, d.fail("a delivery state (received, accepted, rejected, released or modified)", fmt.Sprintf("descriptor 0x%x", code))
}
