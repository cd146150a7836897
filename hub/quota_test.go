package hub

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

func TestTierLimits(t *testing.T) {
	tests := []struct {
		tier  Tier
		units int
		op    Op
		rate  float64
	}{
		{TierS1, 1, OpD2C, 100},
		{TierS1, 20, OpD2C, 240},
		{TierS2, 1, OpD2C, 120},
		{TierS3, 2, OpD2C, 12000},
		{TierFree, 1, OpD2C, 100},
		{TierS1, 1, OpTwinUpdate, 50},
		{TierS2, 20, OpTwinRead, 200},
		{TierS1, 3, OpMethod, 120},
		{TierB1, 1, OpC2DSend, -1},
	}
	for _, tt := range tests {
		q, err := NewQuota(QuotaConfig{Tier: tt.tier, Units: tt.units})
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Rate(tt.op); got != tt.rate {
			t.Errorf("%s ×%d %s: %v/s, want %v/s", tt.tier, tt.units, opName(tt.op), got, tt.rate)
		}
	}
	if _, err := NewQuota(QuotaConfig{Tier: TierFree, Units: 2}); err == nil {
		t.Error("a free hub with 2 units")
	}
	if _, err := ParseTier("S4"); err == nil {
		t.Error("tier S4 accepted")
	}
}

// TestQuotaShapesThenRefuses drives the D2C throttle on a fake clock: a burst's
// worth passes at once, the next requests wait longer and longer, and past the
// queue's length they are refused with 429.
func TestQuotaShapesThenRefuses(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	var waits []time.Duration
	q, err := NewQuota(QuotaConfig{Tier: TierS1, Units: 1, Burst: 100 * time.Millisecond, MaxQueue: 200 * time.Millisecond,
		Now: clock.Now, Sleep: func(d time.Duration) { waits = append(waits, d) }})
	if err != nil {
		t.Fatal(err)
	}
	id := iothub.Identity{DeviceID: "d"}
	var refused int
	for i := 0; i < 100; i++ {
		if err := q.Allow(OpD2C, id, 100); err != nil {
			if !errors.Is(err, &iothub.Error{Code: iothub.CodeThrottled}) {
				t.Fatalf("request %d: %v", i, err)
			}
			refused++
		}
	}
	// 100/s: a 100 ms burst is 10 requests; a 200 ms queue holds 20 more, each
	// waiting 10 ms longer than the one before.
	if len(waits) != 20 || refused != 70 {
		t.Fatalf("%d waited, %d refused", len(waits), refused)
	}
	for i, w := range waits {
		if want := time.Duration(i+1) * 10 * time.Millisecond; w != want {
			t.Fatalf("wait %d = %v, want %v", i, w, want)
		}
	}
	st := q.ThrottleStats()
	if st.Delayed != 20 || st.Throttled != 70 || st.DelayTotal != 2100*time.Millisecond {
		t.Fatalf("stats %+v", st)
	}
	// A second later the bucket has drained and requests pass again.
	clock.advance(time.Second)
	if err := q.Allow(OpD2C, id, 100); err != nil {
		t.Fatal(err)
	}
}

func TestQuotaDailyMeter(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC)}
	q, err := NewQuota(QuotaConfig{Tier: TierFree, Now: clock.Now, Sleep: func(time.Duration) {}, MaxQueue: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id := iothub.Identity{DeviceID: "d"}
	// On the free tier a message is metered in 0.5 KB units: 8000 of them a
	// day. A 4,000-byte message counts 8.
	for i := 0; i < 1000; i++ {
		if err := q.Allow(OpD2C, id, 4000); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := q.Allow(OpD2C, id, 1); !errors.Is(err, &iothub.Error{Code: iothub.CodeQuotaExceeded}) {
		t.Fatalf("past the daily quota: %v", err)
	}
	clock.advance(time.Hour) // the next UTC day
	if err := q.Allow(OpD2C, id, 1); err != nil {
		t.Fatalf("new day: %v", err)
	}
}

// TestThrottlingOnEveryProtocol drives an S1 emulator past its D2C throttle
// over HTTPS and MQTT at once: the first sends pass, the next ones wait (their
// latency grows), and the rest are refused the way the hub refuses them —
// HTTP 429 ThrottlingException, and a closed connection for MQTT, which has no
// negative acknowledgement. All of it shows in the hub's stats.
//
// The quota's clock stands still while requests arrive, so that arrivals spread
// over the time TLS handshakes take still count as one burst; the shaping waits
// are real, so queued requests do see their latency grow.
func TestThrottlingOnEveryProtocol(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	q, err := NewQuota(QuotaConfig{Tier: TierS1, Burst: 50 * time.Millisecond, MaxQueue: 150 * time.Millisecond, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *ServerConfig) { c.Hub.Throttler = q })
	rest := newREST(t, s, true)
	type result struct {
		status  int
		latency time.Duration
	}
	const n = 40
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dev := fmt.Sprintf("h%02d", i)
			start := time.Now()
			st, _, _ := rest.do("POST", "/devices/"+dev+"/messages/events", devTok(dev, time.Hour), nil, []byte("x"))
			results <- result{st, time.Since(start)}
		}(i)
	}
	wg.Wait()
	close(results)
	var ok, throttled int
	var slowest time.Duration
	for r := range results {
		switch r.status {
		case 204:
			ok++
			if r.latency > slowest {
				slowest = r.latency
			}
		case 429:
			throttled++
		default:
			t.Fatalf("status %d", r.status)
		}
	}
	// 100/s: 5 pass at once, 15 queue for 10 to 150 ms, 20 are refused.
	if ok != 20 || throttled != 20 || slowest < 140*time.Millisecond {
		t.Fatalf("HTTPS: %d accepted (slowest %v), %d throttled", ok, slowest, throttled)
	}
	clock.advance(time.Second) // the bucket drains
	// MQTT: the same burst from many devices; refused ones are disconnected.
	// The devices connect first, at the connection throttle's pace, so that
	// only their sends form the burst.
	devs := make([]*mqttDevice, n)
	for i := range devs {
		clock.advance(10 * time.Millisecond)
		d, err := dialDevice(t, s, iothub.Identity{DeviceID: fmt.Sprintf("m%02d", i)}, deviceOpts{})
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = d
	}
	clock.advance(time.Second)
	var refusedMQTT int
	var mu sync.Mutex
	for _, d := range devs {
		wg.Add(1)
		go func(d *mqttDevice) {
			defer wg.Done()
			tok := d.client.Publish(iothub.TelemetryTopic(d.id, &iothub.Message{}, true), 1, false, "x")
			select {
			case <-tok.Done():
				if tok.Error() == nil {
					return
				}
			case <-d.lost:
			case <-time.After(10 * time.Second):
				t.Error("publish neither acknowledged nor refused")
				return
			}
			mu.Lock()
			refusedMQTT++
			mu.Unlock()
		}(d)
	}
	wg.Wait()
	st := s.Hub.Stats()
	if st.Throttle.Delayed == 0 || st.Throttle.Throttled == 0 || st.Rejects[iothub.CodeThrottled] != st.Throttle.Throttled {
		t.Fatalf("throttle stats %+v, rejects %v", st.Throttle, st.Rejects)
	}
	if st.Protocols[MQTT].Messages != 20 || refusedMQTT != 20 {
		t.Fatalf("MQTT: %d stored, %d refused", st.Protocols[MQTT].Messages, refusedMQTT)
	}
	if st.Throttle.Delayed != 30 || st.Throttle.Throttled != 40 {
		t.Fatalf("throttle stats %+v", st.Throttle)
	}
	t.Logf("HTTPS %d accepted (slowest %v) / %d throttled; MQTT %d accepted / %d disconnected; stats %+v",
		ok, slowest, throttled, st.Protocols[MQTT].Messages, refusedMQTT, st.Throttle)
}
