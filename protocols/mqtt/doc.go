// Package mqtt owns the device side of IoT Hub's MQTT 3.1.1 interface, over
// TLS (mqtt) and over WebSockets (mqtt-ws): telemetry with its property bag,
// cloud-to-device messages, direct methods, the device twin, and SAS token
// renewal by reconnecting before the token expires, as IoT Hub requires on
// MQTT (it has no in-band renewal).
//
// Every connection is dialled through package network, so its bytes are
// metered at every layer; the client adds the payload layer itself: telemetry
// bodies up, C2D bodies down, method request and response payloads, and twin
// bodies, each in its operation class.
//
// Nothing is retried: a dropped connection is reported through OnState and
// the caller decides when to call Connect again. A token renewal waits for
// operations in flight, disconnects, and reconnects with a new token on a
// connection the ledger counts as token renewal; operations started during it
// wait for it and fail with ErrDisconnected if it fails.
package mqtt
