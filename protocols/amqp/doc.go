// Package amqp owns the device side of IoT Hub's AMQP 1.0 interface, over TLS
// (amqp) and over WebSockets (amqp-ws), on Azure/go-amqp: telemetry, single
// and batched; cloud-to-device messages settled as complete (accepted),
// abandon (released) or reject (rejected); direct methods; the device twin
// with desired-property updates; and SAS token renewal by a CBS put-token on
// the live connection.
//
// One connection carries one session, as the Node SDK's does:
//
//	$cbs                         sender + receiver   put-token (SAS, default)
//	/devices/{id}/messages/events        sender      telemetry, unsettled
//	/devices/{id}/messages/devicebound   receiver    C2D, when OnC2D is set
//	/devices/{id}/methods/devicebound    both        when OnMethod is set
//	/devices/{id}/twin                   both        on first twin use, or at
//	                                                 Connect when OnDesired is set
//
// Authentication is protocols.Config.AMQPAuth: SASL ANONYMOUS and a CBS
// put-token (the default with a key or token), SASL PLAIN with the token as
// password, or an X.509 client certificate with no SASL layer (the default
// with a certificate) or with SASL EXTERNAL. A CBS token is renewed after
// RenewAt of its life by another put-token on the same connection, which the
// ledger counts as token renewal; a PLAIN connection is bound to its token, so
// it is renewed by reconnecting, which the ledger counts the same way.
//
// Every connection is dialled through package network, so its bytes are
// metered at every layer; the client adds the payload layer itself: telemetry
// bodies up, C2D bodies down, method request and response payloads, and twin
// documents and patches, each in its operation class.
//
// Errors from the hub come back as *protocols.Error, classified from the AMQP
// condition of a rejection or detach (message-size-exceeded is ErrTooLarge,
// device-container-throttled ErrThrottled, unauthorized-access
// ErrUnauthorized) or from the status of a CBS or twin answer. Nothing is
// retried and nothing reconnects on its own: a lost connection, a link the
// hub detached, or a failed renewal closes the connection and is reported
// through OnState; the caller decides when to call Connect again.
package amqp
