// Package genericmqtt owns the mqtt-generic client: MQTT 3.1.1 over TLS to a
// broker that is not IoT Hub, authenticated by a client certificate (and
// optionally a username and password), publishing telemetry to a topic
// template such as measures/{device} and receiving cloud-to-device messages
// on another such as ack/{device} — the pattern of SAP IoT and of most
// self-hosted brokers.
//
// MQTT 3.1.1 has no message properties, so only a message's body is sent.
// Connections are dialled through package network, with classifier rules
// that charge the two topics to telemetry and c2d; the client adds the
// payload layer. Nothing reconnects on its own: a drop is reported through
// OnState.
package genericmqtt
