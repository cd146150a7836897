// Package iothub owns the wire facts of Azure IoT Hub that both the device-side
// clients and the emulator need: topic names and their parsing, the MQTT property
// bag encoding, the MQTT username forms, AMQP link addresses and annotation names,
// HTTP header names and error bodies, message system properties, API versions and
// the hub's limits.
//
// It is a leaf: it imports nothing of this project, so the emulator never imports
// client code and the clients never import the emulator, and an interop test that
// passes proves two independent sides agree. Where the official SDKs disagree with
// the documentation, this package follows the SDKs and accepts every variant they
// send (spec/iothub-protocol.md).
package iothub
