package hub

import (
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

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
	// Allow is called before each operation; size is the message size for
	// sends (the daily quota counts messages in 4 KB units) and 0 otherwise.
	Allow(op Op, id iothub.Identity, size int) error
}

// ThrottleStats are what a throttler has done, for the hub's stats.
type ThrottleStats struct {
	Delayed    uint64        // operations that waited in the shaping queue
	DelayTotal time.Duration // their summed wait
	Throttled  uint64        // refused with ThrottlingException (429)
	OverQuota  uint64        // refused for the daily quota (403)
}
