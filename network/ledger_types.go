package network

// Direction is the way bytes travel on a device's link.
type Direction uint8

const (
	// Up is device to cloud.
	Up Direction = iota
	// Down is cloud to device.
	Down
	numDirections
)

func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "invalid"
}

// Layer is one of the four places on the stack where bytes are counted.
type Layer uint8

const (
	// LayerPayload is the application body the device meant to send or receive.
	LayerPayload Layer = iota
	// LayerProtocol is the plaintext protocol stream under TLS: MQTT packets, AMQP
	// frames, HTTP requests and responses, and WebSocket frames where used.
	LayerProtocol
	// LayerTLS is the ciphertext on the TCP stream, handshake included.
	LayerTLS
	// LayerIP is what a carrier bills: TLS bytes plus the TCP/IP headers of every
	// modelled segment, ACKs, SYN and FIN.
	LayerIP
	numLayers
)

func (l Layer) String() string {
	switch l {
	case LayerPayload:
		return "payload"
	case LayerProtocol:
		return "protocol"
	case LayerTLS:
		return "tls"
	case LayerIP:
		return "ip"
	}
	return "invalid"
}

// Class is the operation a byte was spent on. Bytes are attributed by decoding the
// protocol stream itself, never by timing.
type Class uint8

const (
	// ClassConnect covers connection set-up and tear-down: TCP, TLS handshake,
	// MQTT CONNECT/SUBSCRIBE/DISCONNECT, AMQP open/begin/attach/SASL/first CBS
	// put-token, HTTP upgrade to WebSocket.
	ClassConnect Class = iota
	// ClassTelemetry is device-to-cloud messages and their acknowledgements.
	ClassTelemetry
	// ClassKeepAlive is MQTT PINGREQ/PINGRESP and AMQP empty frames.
	ClassKeepAlive
	// ClassC2D is cloud-to-device messages, their acknowledgements and polls.
	ClassC2D
	// ClassTwin is twin GET, reported PATCH and desired-property notifications.
	ClassTwin
	// ClassMethod is direct-method requests and responses.
	ClassMethod
	// ClassTokenRenewal is SAS renewal: an AMQP CBS put-token on a live connection,
	// or every connect byte of an MQTT connection opened to renew a token.
	ClassTokenRenewal
	// ClassReconnect is every connect byte of a connection that is not the
	// device's first (after a drop, an outage or a sleep).
	ClassReconnect
	// ClassOther is bytes no decoder could place; nothing is hidden.
	ClassOther
	numClasses
)

var classNames = [numClasses]string{
	ClassConnect:      "connect",
	ClassTelemetry:    "telemetry",
	ClassKeepAlive:    "keepalive",
	ClassC2D:          "c2d",
	ClassTwin:         "twin",
	ClassMethod:       "method",
	ClassTokenRenewal: "token_renewal",
	ClassReconnect:    "reconnect",
	ClassOther:        "other",
}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "invalid"
}

// Classes lists every operation class in report order.
func Classes() []Class {
	out := make([]Class, numClasses)
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// Classifier decodes one connection's plaintext protocol stream and says which
// operation class each byte belongs to. A connection gets its own Classifier; the
// meter calls it for both directions but never concurrently. Every byte passed in
// is attributed exactly once, in order. A classifier may hold back the bytes of a
// packet whose class it cannot know yet (an MQTT topic split across reads, say) and
// attribute them in a later call, so that classes do not depend on how the stream
// was cut; within one call the attributed total may then differ from len(p), but
// over a connection it adds up. A classifier that holds bytes also implements
// Flush(dir, attribute), which the meter calls when the connection ends so that
// nothing held is lost (they count as ClassOther).
type Classifier interface {
	Classify(dir Direction, p []byte, attribute func(c Class, n int))
}

// ConnReason says why a connection was opened, so that its connect bytes can be
// charged to the right class.
type ConnReason uint8

const (
	// ReasonInitial is a device's first connection of the run.
	ReasonInitial ConnReason = iota
	// ReasonReconnect is a connection that replaces a dropped or slept one.
	ReasonReconnect
	// ReasonTokenRenewal is a connection opened to present a new SAS token (MQTT).
	ReasonTokenRenewal
)

func (r ConnReason) String() string {
	switch r {
	case ReasonInitial:
		return "initial"
	case ReasonReconnect:
		return "reconnect"
	case ReasonTokenRenewal:
		return "token_renewal"
	}
	return "invalid"
}

// connectClass is the class a connection's set-up and tear-down bytes are
// charged to.
func (r ConnReason) connectClass() Class {
	switch r {
	case ReasonReconnect:
		return ClassReconnect
	case ReasonTokenRenewal:
		return ClassTokenRenewal
	}
	return ClassConnect
}
