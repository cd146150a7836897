package hub

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// Tier is an IoT Hub pricing tier, which sets its throttles and daily quota.
type Tier string

const (
	TierFree Tier = "F1"
	TierB1   Tier = "B1"
	TierB2   Tier = "B2"
	TierB3   Tier = "B3"
	TierS1   Tier = "S1"
	TierS2   Tier = "S2"
	TierS3   Tier = "S3"
)

// ParseTier reads a tier name as users write it: "free", "F1", "s1", "S2" …
func ParseTier(s string) (Tier, error) {
	switch strings.ToUpper(s) {
	case "FREE", "F1":
		return TierFree, nil
	case "B1", "B2", "B3", "S1", "S2", "S3":
		return Tier(strings.ToUpper(s)), nil
	}
	return "", fmt.Errorf("unknown IoT Hub tier %q (free, B1, B2, B3, S1, S2 or S3)", s)
}

// limits are one tier's per-second throttles for its number of units, and the
// daily message quota (D-Q 2023 revision; spec §6). Direct methods are metered
// in 4 KB units: 160 KB/s per S1 unit is 40 calls/s of up to 4 KB.
type limits struct {
	rate  map[Op]float64 // operations per second; 0 means unthrottled
	daily int64          // messages per day, counted in 4 KB units (0.5 KB on Free)
	meter int            // bytes per metered message
}

func tierLimits(t Tier, units int) (limits, error) {
	if units < 1 {
		return limits{}, fmt.Errorf("an IoT Hub has at least 1 unit (got %d)", units)
	}
	u := float64(units)
	l := limits{rate: map[Op]float64{}, meter: iothub.MessageMeterUnit}
	switch t {
	case TierFree:
		if units != 1 {
			return limits{}, fmt.Errorf("the free tier has exactly 1 unit (got %d)", units)
		}
		l.meter = 512
		l.daily = 8000
		fallthrough
	case TierB1, TierS1:
		l.rate[OpConnect] = math.Max(100, 12*u)
		l.rate[OpD2C] = math.Max(100, 12*u)
		l.rate[OpC2DSend] = 100.0 / 60 * u
		l.rate[OpC2DReceive] = 1000.0 / 60 * u
		l.rate[OpMethod] = 40 * u
		l.rate[OpTwinRead] = 100
		l.rate[OpTwinUpdate] = 50
		l.rate[OpRegistry] = 100.0 / 60 * u
		if l.daily == 0 {
			l.daily = 400_000 * int64(units)
		}
	case TierB2, TierS2:
		l.rate[OpConnect] = 120 * u
		l.rate[OpD2C] = 120 * u
		l.rate[OpC2DSend] = 100.0 / 60 * u
		l.rate[OpC2DReceive] = 1000.0 / 60 * u
		l.rate[OpMethod] = 120 * u
		l.rate[OpTwinRead] = math.Max(100, 10*u)
		l.rate[OpTwinUpdate] = math.Max(50, 5*u)
		l.rate[OpRegistry] = 100.0 / 60 * u
		l.daily = 6_000_000 * int64(units)
	case TierB3, TierS3:
		l.rate[OpConnect] = 6000 * u
		l.rate[OpD2C] = 6000 * u
		l.rate[OpC2DSend] = 5000.0 / 60 * u
		l.rate[OpC2DReceive] = 50000.0 / 60 * u
		l.rate[OpMethod] = 6000 * u
		l.rate[OpTwinRead] = 500 * u
		l.rate[OpTwinUpdate] = 250 * u
		l.rate[OpRegistry] = 5000.0 / 60 * u
		l.daily = 300_000_000 * int64(units)
	default:
		return limits{}, fmt.Errorf("unknown IoT Hub tier %q", t)
	}
	if t == TierB1 || t == TierB2 || t == TierB3 {
		// Basic tiers have no cloud-to-device messages, methods or twins.
		for _, op := range []Op{OpC2DSend, OpC2DReceive, OpMethod, OpTwinRead, OpTwinUpdate} {
			l.rate[op] = -1
		}
	}
	return l, nil
}

// QuotaConfig configures the hub's throttles.
type QuotaConfig struct {
	Tier  Tier
	Units int
	// Burst is how long a burst above a throttle is accepted at once, in
	// seconds of the throttle's rate (default 1 s).
	Burst time.Duration
	// MaxQueue is how long a request may wait in the shaping queue before it is
	// refused with 429 (default 10 s).
	MaxQueue time.Duration
	// Now and Sleep are the clock; time.Now and time.Sleep by default.
	Now   func() time.Time
	Sleep func(time.Duration)
}

// Quota throttles the way IoT Hub does (D-Q "Traffic shaping"): a burst above a
// throttle is accepted at once, then requests queue and proceed at the
// throttle's rate — the caller waits, so latency grows — and a request that
// would wait longer than the queue allows is refused with ThrottlingException
// (429). Messages also count against the tier's daily quota, in the tier's
// meter units; past it, sends fail with IotHubQuotaExceeded (403).
type Quota struct {
	cfg    QuotaConfig
	limits limits

	mu      sync.Mutex
	buckets map[Op]*gcra
	day     int64 // UTC day number of the counter below
	used    int64 // meter units used today

	Delayed   atomic.Uint64 // requests that waited in the shaping queue
	DelayNS   atomic.Uint64 // their total wait
	Throttled atomic.Uint64 // requests refused with 429
	OverQuota atomic.Uint64 // requests refused for the daily quota
}

// gcra is a token bucket kept as a theoretical arrival time: the instant at
// which the bucket would be full again.
type gcra struct {
	interval time.Duration // time per operation at the throttle's rate
	tat      time.Time
}

// NewQuota makes the throttles of a tier and unit count.
func NewQuota(cfg QuotaConfig) (*Quota, error) {
	if cfg.Units == 0 {
		cfg.Units = 1
	}
	l, err := tierLimits(cfg.Tier, cfg.Units)
	if err != nil {
		return nil, err
	}
	if cfg.Burst <= 0 {
		cfg.Burst = time.Second
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = time.Sleep
	}
	q := &Quota{cfg: cfg, limits: l, buckets: map[Op]*gcra{}}
	for op, r := range l.rate {
		if r > 0 {
			q.buckets[op] = &gcra{interval: time.Duration(float64(time.Second) / r)}
		}
	}
	return q, nil
}

// Rate is the throttle's rate for an operation, per second (0: unthrottled).
func (q *Quota) Rate(op Op) float64 { return q.limits.rate[op] }

// Allow admits, delays or refuses one operation. size is the message size for
// sends, which count against the daily quota in meter units (a 5 KB message is
// two 4 KB units).
func (q *Quota) Allow(op Op, _ iothub.Identity, size int) error {
	n := q.MeterUnits(size)
	if q.limits.rate[op] < 0 {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "the %s tier has no %s", q.cfg.Tier, opName(op))
	}
	now := q.cfg.Now()
	q.mu.Lock()
	if op == OpD2C || op == OpC2DSend {
		day := now.UTC().Unix() / 86400
		if day != q.day {
			q.day, q.used = day, 0
		}
		if q.used+int64(n) > q.limits.daily {
			q.mu.Unlock()
			q.OverQuota.Add(1)
			return iothub.Errorf(iothub.CodeQuotaExceeded, "the %s hub's daily quota of %d messages is used up", q.cfg.Tier, q.limits.daily)
		}
	}
	b := q.buckets[op]
	var wait time.Duration
	if b != nil {
		burst := q.cfg.Burst
		tat := b.tat
		if tat.Before(now) {
			tat = now
		}
		// Allowed now while the bucket holds a burst's worth; beyond that the
		// request waits for its slot, up to the queue's length.
		next := tat.Add(b.interval)
		wait = next.Sub(now) - burst
		if wait > q.cfg.MaxQueue {
			q.mu.Unlock()
			q.Throttled.Add(1)
			return iothub.Errorf(iothub.CodeThrottled, "%s above the %s throttle of %.4g/s; retry later", opName(op), q.cfg.Tier, q.limits.rate[op])
		}
		b.tat = next
	}
	if op == OpD2C || op == OpC2DSend {
		q.used += int64(n)
	}
	q.mu.Unlock()
	if wait > 0 {
		q.Delayed.Add(1)
		q.DelayNS.Add(uint64(wait))
		q.cfg.Sleep(wait)
	}
	return nil
}

// ThrottleStats reports what the quota has delayed and refused.
func (q *Quota) ThrottleStats() ThrottleStats {
	return ThrottleStats{Delayed: q.Delayed.Load(), DelayTotal: time.Duration(q.DelayNS.Load()), Throttled: q.Throttled.Load(), OverQuota: q.OverQuota.Load()}
}

// MeterUnits is how many daily-quota messages a message of size bytes counts as.
func (q *Quota) MeterUnits(size int) int {
	if size <= 0 {
		return 1
	}
	return (size + q.limits.meter - 1) / q.limits.meter
}

func opName(op Op) string {
	switch op {
	case OpConnect:
		return "new device connections"
	case OpD2C:
		return "device-to-cloud sends"
	case OpC2DSend:
		return "cloud-to-device sends"
	case OpC2DReceive:
		return "cloud-to-device receives"
	case OpMethod:
		return "direct methods"
	case OpTwinRead:
		return "twin reads"
	case OpTwinUpdate:
		return "twin updates"
	case OpRegistry:
		return "identity registry operations"
	}
	return "operations"
}
