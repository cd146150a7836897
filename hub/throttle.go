package hub

import "github.com/catmsim/catmsim/internal/iothub"

// Op is an operation the hub meters against its quotas.
type Op int

const (
	OpConnect Op = iota
	OpD2C
	OpC2DSend
	OpC2DReceive
	OpMethod
	OpTwinRead
	OpTwinUpdate
	OpRegistry
)

// Throttler decides whether an operation may proceed. It returns nil to allow
// it, or an *iothub.Error with CodeThrottled (or CodeQuotaExceeded) that the
// front end answers the way IoT Hub does: HTTP 429, MQTT twin res/429, AMQP
// com.microsoft:device-container-throttled. A throttler may also delay the
// caller before allowing, which is how the hub shapes a burst.
type Throttler interface {
	Allow(op Op, id iothub.Identity) error
}
