// Package protocols owns the device side: the small interface every virtual
// device talks through, its optional capabilities, typed errors, credentials and
// options. Each protocol is a sub-package that dials through package network, so
// every byte it moves is metered.
//
// # Operations per protocol on IoT Hub
//
// A Client always sends telemetry; the other operations are optional
// interfaces, discovered with a type assertion. What each protocol supports
// is what IoT Hub offers on it:
//
//	operation                      mqtt  mqtt-ws  amqp  amqp-ws  https  eventhubs-https  mqtt-generic
//	telemetry (Client)             yes   yes      yes   yes      yes    yes              yes
//	batch send (BatchSender)       -     -        yes   yes      yes    yes              -
//	C2D pushed (C2DReceiver)       yes   yes      yes   yes      -      -                yes
//	C2D polled (C2DPoller)         -     -        -     -        yes    -                -
//	C2D complete                   yes¹  yes¹     yes   yes      yes    -                yes¹
//	C2D abandon, reject            -²    -²       yes   yes      yes    -                -²
//	direct methods (MethodServer)  yes   yes      yes   yes      -      -                -
//	twin get, reported patch       yes   yes      yes   yes      -      -                -
//	desired updates (OnDesired)    yes   yes      yes   yes      -      -                -
//	SAS token renewal              rec³  rec³     cbs⁴  cbs⁴     req⁵   req⁵             -
//	X.509 client certificate       yes   yes      yes   yes      yes    -                yes
//	state changes (StateNotifier)  yes   yes      yes   yes      -      -                yes
//
//	¹ the PUBACK is the completion
//	² reported as ErrUnsupported through OnState; the message is still completed
//	³ disconnect and reconnect with a new token before the old one expires
//	  (IoT Hub has no in-band renewal on MQTT); the ledger counts it as token_renewal
//	⁴ a CBS put-token on the live connection
//	⁵ each request carries a token, signed anew when the current one nears expiry
//
// Sub-packages: mqtt (mqtt, mqtt-ws), amqp (amqp, amqp-ws), https,
// eventhubs (eventhubs-https) and genericmqtt (mqtt-generic, a broker that is
// not IoT Hub, with topics such as measures/{device} up and ack/{device}
// down). Each exports New(Config).
//
// # Errors
//
// Every failure comes back as an *Error whose Kind says how firmware would
// react: unauthorized, throttled, too large, disconnected, timed out, not
// found, unsupported, quota exceeded. Nothing is retried silently and nothing
// reconnects on its own; a dropped connection is reported through OnState and
// the caller (the fleet's backoff) calls Connect again.
//
// # Bytes
//
// The network package meters the protocol, TLS and IP layers of every
// connection a client opens; the client itself adds the payload layer (the
// bodies of telemetry, C2D messages, method requests and responses, and twin
// documents) to the link's ledger, in the class of the operation. TLS
// handshakes offer X25519 and P-256 only, as a device's mbedTLS does, so
// their size is realistic.
package protocols
