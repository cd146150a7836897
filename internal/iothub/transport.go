package iothub

// WebSocket endpoint of MQTT and AMQP over WebSockets (D-MQTT, D-AMQP).
const (
	WebSocketPath   = "/$iothub/websocket"
	SubprotocolMQTT = "mqtt"
	SubprotocolAMQP = "AMQPWSB10"
)

// Query parameters of the device REST API (spec §4.1).
const (
	QueryAPIVersion = "api-version"
	// QueryReject is the bare flag that turns a C2D DELETE into a reject.
	QueryReject = "reject"
	// QueryLockTimeout is the .NET SDK's optional C2D lock timeout, in seconds.
	QueryLockTimeout = "iothub-messagelocktimeout"
)

// identityPath is /devices/{id}[/modules/{mid}] with each id percent-encoded,
// so that ids holding '#', '?' or '%' stay one path segment.
func identityPath(id Identity) string {
	p := "/devices/" + escape(id.DeviceID)
	if id.ModuleID != "" {
		p += "/modules/" + escape(id.ModuleID)
	}
	return p
}

// EventsPath is where a device or module POSTs device-to-cloud messages.
func EventsPath(id Identity) string { return identityPath(id) + "/messages/events" }

// DeviceBoundPath is where a device polls for cloud-to-device messages.
func DeviceBoundPath(deviceID string) string {
	return identityPath(Identity{DeviceID: deviceID}) + "/messages/devicebound"
}

// DeviceBoundLockPath names one received cloud-to-device message by its lock
// token: DELETE completes it (or rejects it with QueryReject).
func DeviceBoundLockPath(deviceID, lockToken string) string {
	return DeviceBoundPath(deviceID) + "/" + escape(lockToken)
}

// AbandonPath is where a device POSTs to abandon a received message.
func AbandonPath(deviceID, lockToken string) string {
	return DeviceBoundLockPath(deviceID, lockToken) + "/abandon"
}

// EventHubsPublisherPath is the Event Hubs REST send path of a named
// publisher (the emulator records the publisher as the device).
func EventHubsPublisherPath(entity, publisher string) string {
	return "/" + escape(entity) + "/publishers/" + escape(publisher) + "/messages"
}
