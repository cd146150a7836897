package protocols

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
)

// Protocol names a device-side transport.
type Protocol string

const (
	MQTT           Protocol = "mqtt"
	MQTTWebSocket  Protocol = "mqtt-ws"
	AMQP           Protocol = "amqp"
	AMQPWebSocket  Protocol = "amqp-ws"
	HTTPS          Protocol = "https"
	EventHubsHTTPS Protocol = "eventhubs-https"
	GenericMQTT    Protocol = "mqtt-generic"
)

// Client is one device's connection to its hub. Every implementation sends
// telemetry; the other operations are the optional interfaces below, which a
// caller discovers with a type assertion (see the table in the package doc).
// A Client is used by one device: its methods may be called from several
// goroutines, but Connect and Close are not called concurrently.
type Client interface {
	// Connect opens the connection: dial over the device's link, TLS, the
	// protocol's handshake and authentication, and the subscriptions for the
	// handlers registered so far. HTTPS clients connect lazily; Connect checks
	// the configuration.
	Connect(ctx context.Context) error
	// SendTelemetry sends one device-to-cloud message and returns when the hub
	// acknowledged it (MQTT PUBACK at QoS 1, AMQP disposition, HTTP 204/201),
	// or at once after writing it at QoS 0.
	SendTelemetry(ctx context.Context, m *iothub.Message) error
	// Close ends the connection gracefully and stops the client's goroutines.
	Close(ctx context.Context) error
}

// BatchSender sends several messages in one request (HTTPS JSON batches, AMQP
// batched transfers, Event Hubs batches).
type BatchSender interface {
	SendBatch(ctx context.Context, ms []*iothub.Message) error
}

// C2DMessage is a cloud-to-device message as a device receives it.
type C2DMessage struct {
	iothub.Message
	LockToken     string
	DeliveryCount int
	Enqueued      time.Time
}

// Outcome is how a device settles a cloud-to-device message.
type Outcome int

const (
	Complete Outcome = iota
	Abandon
	Reject
)

func (o Outcome) String() string {
	switch o {
	case Complete:
		return "complete"
	case Abandon:
		return "abandon"
	case Reject:
		return "reject"
	}
	return "invalid"
}

// C2DHandler decides the outcome of a cloud-to-device message. MQTT can only
// complete (its PUBACK is the completion); asking it to abandon or reject is
// reported as ErrUnsupported and the message is completed.
type C2DHandler func(ctx context.Context, m *C2DMessage) Outcome

// C2DReceiver delivers cloud-to-device messages pushed by the hub (MQTT, AMQP).
// Register the handler before Connect.
type C2DReceiver interface {
	OnC2D(h C2DHandler)
}

// C2DPoller polls for cloud-to-device messages (HTTPS). Poll returns nil when
// none waits.
type C2DPoller interface {
	PollC2D(ctx context.Context) (*C2DMessage, error)
	SettleC2D(ctx context.Context, lockToken string, o Outcome) error
}

// MethodHandler answers a direct method with a status and a JSON payload.
type MethodHandler func(ctx context.Context, name string, payload []byte) (status int, response []byte)

// MethodServer serves direct methods. Register the handler before Connect.
type MethodServer interface {
	OnMethod(h MethodHandler)
}

// DesiredHandler receives a desired-properties patch (with its "$version").
type DesiredHandler func(patch []byte, version int64)

// TwinClient reads and writes the device twin.
type TwinClient interface {
	// GetTwin returns the device's view of its twin:
	// {"desired":{…,"$version":n},"reported":{…,"$version":m}}.
	GetTwin(ctx context.Context) ([]byte, error)
	// PatchReported merges a reported-properties patch; it returns the new
	// reported version where the protocol says it.
	PatchReported(ctx context.Context, patch []byte) (int64, error)
	// OnDesired registers a handler for desired-property updates; register it
	// before Connect.
	OnDesired(h DesiredHandler)
}

// StateHandler hears about connection changes the device did not ask for: a
// drop, a hub-side close, a failed token renewal. err says why. It also hears,
// with connected still true, about a cloud-to-device outcome the protocol
// could not carry (ErrUnsupported: MQTT completes every message). Handlers
// run on the client's own goroutine, one at a time, and must not call Close.
type StateHandler func(connected bool, err error)

// StateNotifier reports connection changes.
type StateNotifier interface {
	OnState(h StateHandler)
}

// Errors come back as *Error, whose Kind says how a device's firmware would
// react; errors.Is(err, ErrThrottled) and friends match on Kind. Nothing is
// retried silently: the caller decides.
type Error struct {
	Kind Kind
	Op   string // what the client was doing: "connect", "send", "twin get" …
	Err  error  // the underlying cause, often an *iothub.Error
}

// Kind classifies an error the way device logic needs to react to it.
type Kind int

const (
	KindOther         Kind = iota
	KindUnauthorized       // bad, expired or foreign credentials; reconnecting with the same ones will fail again
	KindThrottled          // the hub throttled the operation; back off and retry
	KindTooLarge           // the message exceeds the hub's limit; retrying will fail again
	KindDisconnected       // the connection is gone; reconnect
	KindTimeout            // no answer in time
	KindNotFound           // unknown device, or a method target not online
	KindUnsupported        // the protocol cannot do this
	KindQuotaExceeded      // the hub's daily quota is used up
)

var kindNames = map[Kind]string{
	KindOther: "error", KindUnauthorized: "unauthorized", KindThrottled: "throttled", KindTooLarge: "too large",
	KindDisconnected: "disconnected", KindTimeout: "timed out", KindNotFound: "not found", KindUnsupported: "unsupported",
	KindQuotaExceeded: "quota exceeded",
}

func (k Kind) String() string { return kindNames[k] }

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Op, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the error's kind.
func (e *Error) Is(target error) bool {
	s, ok := target.(sentinel)
	return ok && Kind(s) == e.Kind
}

type sentinel Kind

func (s sentinel) Error() string { return Kind(s).String() }

// Sentinels for errors.Is.
var (
	ErrUnauthorized  error = sentinel(KindUnauthorized)
	ErrThrottled     error = sentinel(KindThrottled)
	ErrTooLarge      error = sentinel(KindTooLarge)
	ErrDisconnected  error = sentinel(KindDisconnected)
	ErrTimeout       error = sentinel(KindTimeout)
	ErrNotFound      error = sentinel(KindNotFound)
	ErrUnsupported   error = sentinel(KindUnsupported)
	ErrQuotaExceeded error = sentinel(KindQuotaExceeded)
)

// KindOf classifies a hub error code.
func KindOf(code iothub.ErrorCode) Kind {
	switch code {
	case iothub.CodeUnauthorized, iothub.CodeDeviceDisabled:
		return KindUnauthorized
	case iothub.CodeThrottled:
		return KindThrottled
	case iothub.CodeMessageTooLarge, iothub.CodeRequestEntityTooLarge:
		return KindTooLarge
	case iothub.CodeDeviceNotFound, iothub.CodeDeviceNotOnline, iothub.CodeMethodNotFound:
		return KindNotFound
	case iothub.CodeGatewayTimeout:
		return KindTimeout
	case iothub.CodeQuotaExceeded, iothub.CodeQueueFull:
		return KindQuotaExceeded
	}
	return KindOther
}

// Wrap makes an *Error for op from err, classifying hub errors by their code,
// context deadlines as timeouts and closed connections as disconnects. An
// *Error passes through unchanged.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	k := KindOther
	var he *iothub.Error
	var ne net.Error
	switch {
	case errors.As(err, &he):
		k = KindOf(he.Code)
	case errors.Is(err, context.DeadlineExceeded):
		k = KindTimeout
	case errors.Is(err, net.ErrClosed), errors.As(err, &ne) && !ne.Timeout():
		k = KindDisconnected
	case errors.As(err, &ne) && ne.Timeout():
		k = KindTimeout
	}
	return &Error{Kind: k, Op: op, Err: err}
}

// Credentials are how a device authenticates.
type Credentials struct {
	// Key is the device's (or module's) decoded shared access key; tokens are
	// signed with it, with KeyName as skn when it is a policy key.
	Key     []byte
	KeyName string
	// Token, when set, is a ready-made SAS token used as is (never renewed).
	Token string
	// TokenTTL is the lifetime of each token the client signs (sas.DefaultTTL
	// when zero); RenewAt is the fraction of it after which the client renews
	// (0.8 when zero, as the C SDK does): MQTT by reconnecting, AMQP by a CBS
	// put-token on the live connection, HTTPS by signing a new token.
	TokenTTL time.Duration
	RenewAt  float64
	// Certificate authenticates with X.509 instead of a key.
	Certificate *tls.Certificate
	// Username and Password are sent in CONNECT by the generic MQTT target, for
	// brokers that want them besides (or instead of) a client certificate.
	// IoT Hub clients ignore them.
	Username, Password string
}

// TLSOptions are the TLS choices devices in the field vary.
type TLSOptions struct {
	RootCAs    *x509.CertPool // nil: the system roots
	ServerName string         // default: the hub's host name
	MinVersion uint16         // default TLS 1.2
	MaxVersion uint16         // default TLS 1.3
	// Resumption keeps a session cache so reconnects resume the TLS session
	// (when the server allows it; IoT Hub does not).
	Resumption bool
}

// Config is what every client needs.
type Config struct {
	Protocol Protocol
	// HostName is the hub's name (token resources, MQTT usernames); Address is
	// where the socket goes, host:port ("" = HostName on the protocol's
	// standard port).
	HostName string
	Address  string
	Identity iothub.Identity
	Auth     Credentials
	TLS      TLSOptions
	// Dialer opens connections over the device's modelled link; its Link's
	// ledger receives the payload layer.
	Dialer *network.Dialer
	// Now is the clock for token expiry; time.Now when nil.
	Now func() time.Time

	APIVersion string // iothub.APIVersion when empty
	ModelID    string // IoT Plug and Play model id, sent in the MQTT username and AMQP link properties
	ClientType string // the DeviceClientType / user agent to send, "" for none

	// MQTT: keep-alive interval (it dominates the idle data bill on CAT-M), clean
	// or persistent session, and the QoS of telemetry (0 or 1).
	KeepAlive    time.Duration
	CleanSession bool
	QoS          byte
	// AMQP: the idle-time-out to advertise (the hub sends heartbeats at half of it),
	// and how the device authenticates ("" chooses AMQPAuthCBS for a key or
	// token and AMQPAuthNoSASL for a certificate).
	IdleTimeout time.Duration
	AMQPAuth    AMQPAuth
	// HTTPS: open a new TLS connection for every request, as MicroPython's
	// urequests does, instead of keeping one alive.
	NewConnectionPerRequest bool
	// Event Hubs REST: the event hub (entity) to post to; Auth.KeyName is the
	// policy; HostName is the namespace host.
	EventHub string
	// Generic MQTT broker: topic templates with {device} for the device id, e.g.
	// "measures/{device}" up and "ack/{device}" down.
	TopicUp, TopicDown string
}

// AMQPAuth is how an AMQP device proves who it is; the SDKs differ, and so do
// the bytes it costs.
type AMQPAuth string

const (
	// AMQPAuthCBS: SASL ANONYMOUS, then a SAS token put on $cbs and renewed
	// there on the live connection (the Node and .NET SDKs' claims-based
	// security).
	AMQPAuthCBS AMQPAuth = "cbs"
	// AMQPAuthPlain: SASL PLAIN with {deviceId}@sas.{hubName} and the SAS token
	// as password. The connection is bound to that token, so renewing it means
	// reconnecting.
	AMQPAuthPlain AMQPAuth = "plain"
	// AMQPAuthExternal: SASL EXTERNAL, naming the TLS client certificate.
	AMQPAuthExternal AMQPAuth = "external"
	// AMQPAuthNoSASL: no SASL layer; the hub takes the TLS client certificate
	// (the C SDK's X.509 devices).
	AMQPAuthNoSASL AMQPAuth = "none"
)

// HTTPClient is what HTTPS-based clients need from the network: a transport
// that dials over the link and meters every request.
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}
