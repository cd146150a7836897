// Package amqpwire owns the AMQP 1.0 wire format: the type system, frames,
// performatives, SASL frames and message sections, decoded from untrusted
// bytes and encoded for either end of a connection. It is a codec only; it
// keeps no connection, session or link state.
//
// It was written from the OASIS AMQP 1.0 specification (parts 1, 2, 3 and
// 5) because the Go client libraries do not expose a server-side codec.
//
// # Layers
//
//	stream ──> FrameReader.ReadProtocolHeader  "AMQP" id 1 0 0 (id 0 plain, 3 SASL; 2 TLS is refused)
//	       ──> FrameReader.ReadFrame           Frame{Type, Channel, Body}; empty Body = heartbeat
//	       ──> DecodeFrameBody / Frame.Performative
//	                                           *Open … *Close, *SASLInit …, plus the payload
//	       ──> DecodeMessage / DecodeBatch     a transfer's payload as *Message
//
// and back with Message.Encode, AppendFrame or FrameWriter.WriteFrame.
// ParseFrameHeader and PeekDescriptor let a stream classifier look at a
// frame without reading or decoding all of it.
//
// # Types
//
// Decoding yields, and encoding accepts, exactly these Go types, so that a
// value keeps its AMQP type through a decode and re-encode (a correlation-id
// received as ulong is sent back as ulong, an annotation built as int32 goes
// out as int):
//
//	AMQP                      Go
//	null                      nil
//	boolean                   bool
//	ubyte, ushort             uint8, uint16
//	uint, ulong               uint32, uint64
//	byte, short, int, long    int8, int16, int32, int64
//	float, double             float32, float64
//	decimal32/64/128          Decimal32, Decimal64, Decimal128 (opaque bytes)
//	char                      Char (a rune)
//	timestamp                 time.Time, in UTC, millisecond precision
//	uuid                      UUID ([16]byte; String and ParseUUID use 8-4-4-4-12)
//	binary                    []byte
//	string                    string
//	symbol                    Symbol
//	list                      []any
//	map                       *Map (ordered; keys of any type)
//	array                     Array (element Type, optional Descriptor, Values)
//	described                 Described{Descriptor, Value}
//
// Plain int and uint are not accepted: say which AMQP type is meant.
// Encoding always picks the smallest constructor (uint0, smalluint, str8,
// list8, …); decoding accepts every constructor. Use Equal to compare
// values with their types.
//
// Performative and section fields use the plain Go type of their AMQP type.
// Fields whose absence means something different from any value are
// pointers (Transfer.DeliveryID, Begin.RemoteChannel, Header.TTL);
// fields with a default in the specification are values that decoding sets
// to the default when the field is absent, and that encoding leaves out
// when they hold it. Multiple-valued symbol fields are []Symbol; they are
// decoded from a single symbol or an array and encoded as an array.
//
// # Memory
//
// Decoding copies strings and symbols, but binary values, Data sections,
// delivery tags, SASL responses and transfer payloads are sub-slices of
// the decoded buffer (with capacity clipped, so appending to them cannot
// overwrite it). Frame bodies returned by FrameReader are fresh for every
// frame, so values decoded from them may be kept. A caller decoding from a
// buffer it reuses must copy what it keeps.
//
// Hostile input cannot make the decoder allocate out of proportion to its
// length: every size and count is checked against the bytes that remain
// before anything is allocated, arrays of elements that take no bytes
// (nulls, say) are limited to MaxZeroWidthElements per decode, nesting is
// limited to MaxDepth, and FrameReader rejects a frame
// above its limit with *FrameSizeError before reading its body.
//
// # Errors
//
// Malformed input yields *DecodeError with the offset, the field being
// decoded and what was expected; ErrorCondition maps codec errors to the
// condition (amqp:decode-error, amqp:connection:framing-error) to close the
// connection with. Fields after the last one this package knows are
// skipped, as the specification asks; missing mandatory fields are errors.
//
// Transactions (coordinator targets and transactional states) are not
// supported and fail to decode.
package amqpwire
