package iothub

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ErrorCode is an IoT Hub error code, as it appears after "ErrorCode:" in the
// hub's HTTP error bodies. Each code also says how the other protocols carry it.
type ErrorCode string

const (
	CodeUnauthorized          ErrorCode = "IotHubUnauthorizedAccess"
	CodeDeviceNotFound        ErrorCode = "DeviceNotFound"
	CodeDeviceNotOnline       ErrorCode = "DeviceNotOnline"
	CodeDeviceDisabled        ErrorCode = "DeviceDisabled"
	CodeMessageTooLarge       ErrorCode = "MessageTooLarge"
	CodeThrottled             ErrorCode = "ThrottlingException"
	CodeQueueFull             ErrorCode = "DeviceMaximumQueueDepthExceeded"
	CodeQuotaExceeded         ErrorCode = "IotHubQuotaExceeded"
	CodeGatewayTimeout        ErrorCode = "GatewayTimeout"
	CodeArgumentInvalid       ErrorCode = "ArgumentInvalid"
	CodePreconditionFailed    ErrorCode = "PreconditionFailed"
	CodeLockLost              ErrorCode = "DeviceMessageLockLost"
	CodeDeviceAlreadyExists   ErrorCode = "DeviceAlreadyExists"
	CodeServerError           ErrorCode = "ServerError"
	CodeServiceUnavailable    ErrorCode = "ServiceUnavailable"
	CodeMethodNotFound        ErrorCode = "MethodNotFound"
	CodeRequestEntityTooLarge ErrorCode = "RequestEntityTooLarge"
)

type codeInfo struct {
	http   int
	number int    // the six-digit code in the hub's logs and some bodies
	amqp   string // AMQP error condition
}

// codes maps each code to its HTTP status, numeric code and AMQP condition
// (D-Q, spec §3.8 and §8; the numeric codes are those of the hub's error-code
// reference).
var codes = map[ErrorCode]codeInfo{
	CodeUnauthorized:          {401, 401002, "amqp:unauthorized-access"},
	CodeDeviceNotFound:        {404, 404001, "amqp:not-found"},
	CodeDeviceNotOnline:       {404, 404103, "amqp:not-found"},
	CodeDeviceDisabled:        {401, 401003, "amqp:unauthorized-access"},
	CodeMessageTooLarge:       {413, 413001, "amqp:link:message-size-exceeded"},
	CodeRequestEntityTooLarge: {413, 413002, "amqp:link:message-size-exceeded"},
	CodeThrottled:             {429, 429001, "com.microsoft:device-container-throttled"},
	CodeQueueFull:             {403, 403004, "amqp:resource-limit-exceeded"},
	CodeQuotaExceeded:         {403, 403002, "com.microsoft:quota-exceeded"},
	CodeGatewayTimeout:        {504, 504101, "com.microsoft:timeout"},
	CodeArgumentInvalid:       {400, 400004, "com.microsoft:argument-error"},
	CodePreconditionFailed:    {412, 412002, "com.microsoft:precondition-failed"},
	CodeLockLost:              {412, 412020, "com.microsoft:message-lock-lost"},
	CodeDeviceAlreadyExists:   {409, 409001, "com.microsoft:device-already-exists"},
	CodeServerError:           {500, 500001, "amqp:internal-error"},
	CodeServiceUnavailable:    {503, 503001, "com.microsoft:timeout"},
	CodeMethodNotFound:        {404, 404102, "amqp:not-found"},
}

// HTTPStatus is the status the hub answers with.
func (c ErrorCode) HTTPStatus() int {
	if i, ok := codes[c]; ok {
		return i.http
	}
	return 500
}

// Number is the hub's six-digit error code.
func (c ErrorCode) Number() int { return codes[c].number }

// AMQPCondition is the AMQP error condition the hub uses for the code.
func (c ErrorCode) AMQPCondition() string {
	if i, ok := codes[c]; ok {
		return i.amqp
	}
	return "amqp:internal-error"
}

// Error is an error as IoT Hub reports it: a code and a human text.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf makes an *Error.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Is lets errors.Is match an *Error by code: errors.Is(err, &Error{Code: CodeThrottled}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrorBody is the JSON body of an HTTP error, in the shape the Node service SDK
// parses: {"Message":"ErrorCode:<Code>;<text>","ExceptionMessage":"Tracking ID:…"}.
func ErrorBody(e *Error, trackingID string, now time.Time) []byte {
	b, _ := json.Marshal(struct {
		Message          string `json:"Message"`
		ExceptionMessage string `json:"ExceptionMessage"`
	}{
		Message:          "ErrorCode:" + string(e.Code) + ";" + e.Message,
		ExceptionMessage: "Tracking ID:" + trackingID + "-G:0-TimeStamp:" + now.UTC().Format("01/02/2006 15:04:05"),
	})
	return b
}

// ParseErrorBody reads an HTTP error body back into an *Error, as the SDKs do.
func ParseErrorBody(status int, body []byte) *Error {
	var v struct{ Message string }
	if json.Unmarshal(body, &v) == nil {
		if rest, ok := strings.CutPrefix(v.Message, "ErrorCode:"); ok {
			code, text, _ := strings.Cut(rest, ";")
			return &Error{Code: ErrorCode(code), Message: text}
		}
	}
	if c, ok := statusCodes[status]; ok {
		return &Error{Code: c, Message: clip(strings.TrimSpace(string(body)))}
	}
	return &Error{Code: CodeServerError, Message: fmt.Sprintf("HTTP %d: %s", status, clip(string(body)))}
}

// statusCodes is the code an HTTP status means when the body does not say.
var statusCodes = map[int]ErrorCode{
	400: CodeArgumentInvalid, 401: CodeUnauthorized, 403: CodeQuotaExceeded, 404: CodeDeviceNotFound,
	409: CodeDeviceAlreadyExists, 412: CodePreconditionFailed, 413: CodeMessageTooLarge,
	429: CodeThrottled, 500: CodeServerError, 503: CodeServiceUnavailable, 504: CodeGatewayTimeout,
}
