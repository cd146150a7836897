// Package hub owns the IoT Hub emulator: its device registry and authentication,
// per-device state (twins, cloud-to-device queues, pending method calls), the message
// store that records every accepted device-to-cloud message, the cloud-side Go API, and
// the MQTT, AMQP, HTTPS and WebSocket front ends.
package hub
