package amqpwire

import (
	"errors"
	"fmt"
)

// DecodeError reports bytes that are not valid AMQP where the decoder was
// reading. A server answers it by closing the connection with
// ConditionDecodeError (see ErrorCondition).
type DecodeError struct {
	Offset   int    // byte offset from the start of the decoded buffer
	Field    string // what was being decoded, e.g. "attach.handle"; may be empty
	Expected string // what the decoder wanted, e.g. "uint"
	Found    string // what it found, e.g. "str8 (0xa1)" or "end of data"
}

func (e *DecodeError) Error() string {
	where := ""
	if e.Field != "" {
		where = " in " + e.Field
	}
	return fmt.Sprintf("amqp decode error at offset %d%s: expected %s, found %s", e.Offset, where, e.Expected, e.Found)
}

// FrameSizeError reports a frame larger than the agreed maximum frame size.
// FrameReader returns it before allocating anything for the frame body.
type FrameSizeError struct {
	Size uint32 // the size the frame header claims, or the size of the frame to write
	Max  uint32 // the limit in force
}

func (e *FrameSizeError) Error() string {
	return fmt.Sprintf("amqp frame of %d bytes exceeds the maximum frame size of %d bytes", e.Size, e.Max)
}

// ErrProtocolHeader is wrapped by every error about the 8-byte protocol
// header; test for it with errors.Is.
var ErrProtocolHeader = errors.New("unsupported amqp protocol header")

// Error conditions defined by the AMQP specification (§2.8.15 to §2.8.18)
// that a codec user needs most.
const (
	ConditionInternalError         Symbol = "amqp:internal-error"
	ConditionNotFound              Symbol = "amqp:not-found"
	ConditionUnauthorizedAccess    Symbol = "amqp:unauthorized-access"
	ConditionDecodeError           Symbol = "amqp:decode-error"
	ConditionResourceLimitExceeded Symbol = "amqp:resource-limit-exceeded"
	ConditionNotAllowed            Symbol = "amqp:not-allowed"
	ConditionInvalidField          Symbol = "amqp:invalid-field"
	ConditionNotImplemented        Symbol = "amqp:not-implemented"
	ConditionResourceLocked        Symbol = "amqp:resource-locked"
	ConditionPreconditionFailed    Symbol = "amqp:precondition-failed"
	ConditionResourceDeleted       Symbol = "amqp:resource-deleted"
	ConditionIllegalState          Symbol = "amqp:illegal-state"
	ConditionFrameSizeTooSmall     Symbol = "amqp:frame-size-too-small"
	ConditionConnectionForced      Symbol = "amqp:connection:forced"
	ConditionFramingError          Symbol = "amqp:connection:framing-error"
	ConditionConnectionRedirect    Symbol = "amqp:connection:redirect"
	ConditionWindowViolation       Symbol = "amqp:session:window-violation"
	ConditionErrantLink            Symbol = "amqp:session:errant-link"
	ConditionHandleInUse           Symbol = "amqp:session:handle-in-use"
	ConditionUnattachedHandle      Symbol = "amqp:session:unattached-handle"
	ConditionDetachForced          Symbol = "amqp:link:detach-forced"
	ConditionTransferLimitExceeded Symbol = "amqp:link:transfer-limit-exceeded"
	ConditionMessageSizeExceeded   Symbol = "amqp:link:message-size-exceeded"
	ConditionLinkRedirect          Symbol = "amqp:link:redirect"
	ConditionStolen                Symbol = "amqp:link:stolen"
)

// ErrorCondition maps an error from this package to the condition a peer
// should be sent when closing the connection because of it, or "" when err
// did not come from the codec. An oversized or malformed frame header is a
// framing error; anything else that fails to decode is a decode error.
func ErrorCondition(err error) Symbol {
	var de *DecodeError
	var fe *FrameSizeError
	switch {
	case errors.As(err, &fe):
		return ConditionFramingError
	case errors.As(err, &de):
		if de.Field == "frame header" {
			return ConditionFramingError
		}
		return ConditionDecodeError
	case errors.Is(err, ErrProtocolHeader):
		return ConditionFramingError
	}
	return ""
}
