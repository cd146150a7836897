package iothub

import "time"

// APIVersion is the api-version this project's clients send: the one the Node SDK
// and the documentation use. The emulator accepts any value.
const APIVersion = "2021-04-12"

// Limits of IoT Hub (D-Q 2023 revision, D-MSG, D-C2D, D-DM; spec §6).
const (
	// MaxD2CSize bounds a device-to-cloud message: body plus system property
	// values plus application property names and values.
	MaxD2CSize = 256 * 1024
	// MaxC2DSize bounds a cloud-to-device message body.
	MaxC2DSize = 64 * 1024
	// C2DQueueDepth is how many cloud-to-device messages may wait per device.
	C2DQueueDepth = 50
	// DefaultC2DTTL is the hub's default time-to-live for queued C2D messages.
	DefaultC2DTTL = time.Hour
	// MaxC2DTTL is the longest TTL the hub accepts.
	MaxC2DTTL = 48 * time.Hour
	// DefaultMaxDeliveryCount is how often a C2D message is delivered before it
	// is dead-lettered; only explicit abandons count.
	DefaultMaxDeliveryCount = 10
	// C2DLockTimeout is how long a delivered, unsettled C2D message stays locked.
	C2DLockTimeout = time.Minute
	// MaxMethodPayload bounds a direct method's request and its response.
	MaxMethodPayload = 128 * 1024
	// DefaultMethodResponseTimeout applies when an invocation names none.
	DefaultMethodResponseTimeout = 30 * time.Second
	// MinMethodResponseTimeout and MaxMethodResponseTimeout bound an invocation's
	// responseTimeoutInSeconds (current docs: 5 to 300 s).
	MinMethodResponseTimeout = 5 * time.Second
	MaxMethodResponseTimeout = 300 * time.Second
	// MaxMethodConnectTimeout bounds connectTimeoutInSeconds.
	MaxMethodConnectTimeout = 300 * time.Second
	// MaxTwinSection bounds each of desired and reported properties as JSON.
	MaxTwinSection = 32 * 1024
	// MaxTwinTags bounds the tags of a twin.
	MaxTwinTags = 8 * 1024
	// MaxMQTTIdle is the longest the hub waits for traffic on an MQTT connection:
	// 1.5 × the client's keep-alive, capped at the Azure load balancer's
	// 29.45-minute idle timeout (D-MQTT).
	MaxMQTTIdle = 1767 * time.Second
	// MaxSubscriptions is how many topic filters one MQTT client may hold.
	MaxSubscriptions = 5
	// MessageMeterUnit is the size of one message on the daily quota meter.
	MessageMeterUnit = 4 * 1024
)

// MQTTIdleTimeout is when the hub closes an MQTT connection that has been silent,
// given the keep-alive the client asked for in CONNECT. A keep-alive of zero asks
// for no timeout; the hub still closes at its cap.
func MQTTIdleTimeout(keepAlive time.Duration) time.Duration {
	if keepAlive <= 0 {
		return MaxMQTTIdle
	}
	t := keepAlive + keepAlive/2
	if t > MaxMQTTIdle {
		return MaxMQTTIdle
	}
	return t
}
