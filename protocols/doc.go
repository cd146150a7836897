// Package protocols owns the device side: one client per protocol (MQTT, AMQP, HTTPS,
// Event Hubs REST, generic MQTT) behind one small interface, each dialling through
// package network so every byte is metered.
package protocols
