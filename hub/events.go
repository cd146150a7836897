package hub

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// EventKind says what happened on the hub.
type EventKind string

const (
	EventConnected     EventKind = "connected"
	EventDisconnected  EventKind = "disconnected"
	EventAuthFailed    EventKind = "auth_failed"
	EventTelemetry     EventKind = "telemetry"
	EventRejected      EventKind = "rejected"
	EventC2DQueued     EventKind = "c2d_queued"
	EventC2DDelivered  EventKind = "c2d_delivered"
	EventC2DCompleted  EventKind = "c2d_completed"
	EventC2DAbandoned  EventKind = "c2d_abandoned"
	EventC2DRejected   EventKind = "c2d_rejected"
	EventC2DExpired    EventKind = "c2d_expired"
	EventC2DDeadLetter EventKind = "c2d_dead_lettered"
	EventMethodCall    EventKind = "method_invoked"
	EventMethodResult  EventKind = "method_result"
	EventTwinReported  EventKind = "twin_reported"
	EventTwinDesired   EventKind = "twin_desired"
	EventTwinGet       EventKind = "twin_get"
)

// Event is one thing that happened on the hub, for logs and for tests that wait
// on the hub rather than on time.
type Event struct {
	Time     time.Time
	Kind     EventKind
	Identity iothub.Identity
	Protocol Protocol
	Seq      uint64 // telemetry: the store sequence number
	Bytes    int    // telemetry: the message size
	Detail   string
}

type events struct {
	mu      sync.RWMutex
	subs    map[int]chan Event
	next    int
	dropped atomic.Uint64
}

// Subscribe returns a channel of the hub's events and a function that ends the
// subscription. Events are never waited for: when the channel's buffer is full
// the event is dropped for that subscriber and counted in Stats.EventsDropped.
func (h *Hub) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	h.events.mu.Lock()
	if h.events.subs == nil {
		h.events.subs = map[int]chan Event{}
	}
	id := h.events.next
	h.events.next++
	h.events.subs[id] = ch
	h.events.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.events.mu.Lock()
			delete(h.events.subs, id)
			h.events.mu.Unlock()
			close(ch)
		})
	}
}

func (h *Hub) emit(e Event) {
	e.Time = h.now()
	h.events.mu.RLock()
	defer h.events.mu.RUnlock()
	for _, ch := range h.events.subs {
		select {
		case ch <- e:
		default:
			h.events.dropped.Add(1)
		}
	}
}

// Stats are the hub's counters since it started.
type Stats struct {
	AuthFailures  atomic.Uint64
	TokenExpiries atomic.Uint64
	TokenRenewals atomic.Uint64

	mu      sync.Mutex
	proto   map[Protocol]*ProtocolStats
	rejects map[iothub.ErrorCode]uint64
	devices map[iothub.Identity]*DeviceStats

	C2DQueued, C2DCompleted, C2DAbandoned, C2DRejected, C2DExpired, C2DDeadLettered atomic.Uint64
	MethodCalls, MethodResults, MethodTimeouts, MethodNotOnline                     atomic.Uint64
	TwinGets, TwinReportedPatches, TwinDesiredUpdates                               atomic.Uint64
}

// ProtocolStats are the counters of one front end.
type ProtocolStats struct {
	Connections   uint64 // live now
	Connects      uint64 // all time
	Reconnects    uint64 // connects of an identity that had connected before
	Messages      uint64 // accepted device-to-cloud messages
	MessageBytes  uint64 // their sizes as the hub counts them
	Disconnects   uint64
	RejectedCount uint64
}

// DeviceStats are the counters of one identity.
type DeviceStats struct {
	Messages     map[Protocol]uint64
	MessageBytes map[Protocol]uint64
}

func (s *Stats) p(proto Protocol) *ProtocolStats {
	if s.proto == nil {
		s.proto = map[Protocol]*ProtocolStats{}
	}
	ps := s.proto[proto]
	if ps == nil {
		ps = &ProtocolStats{}
		s.proto[proto] = ps
	}
	return ps
}

func (s *Stats) connected(proto Protocol, reconnect bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.p(proto)
	ps.Connections++
	ps.Connects++
	if reconnect {
		ps.Reconnects++
	}
}

func (s *Stats) disconnected(proto Protocol) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.p(proto)
	ps.Connections--
	ps.Disconnects++
}

func (s *Stats) telemetry(proto Protocol, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.p(proto)
	ps.Messages++
	ps.MessageBytes += uint64(size)
}

func (s *Stats) deviceTelemetry(id iothub.Identity, proto Protocol, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.devices == nil {
		s.devices = map[iothub.Identity]*DeviceStats{}
	}
	d := s.devices[id]
	if d == nil {
		d = &DeviceStats{Messages: map[Protocol]uint64{}, MessageBytes: map[Protocol]uint64{}}
		s.devices[id] = d
	}
	d.Messages[proto]++
	d.MessageBytes[proto] += uint64(size)
}

func (s *Stats) rejected(err error) {
	code := iothub.CodeServerError
	var e *iothub.Error
	if errors.As(err, &e) {
		code = e.Code
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejects == nil {
		s.rejects = map[iothub.ErrorCode]uint64{}
	}
	s.rejects[code]++
}

// StatsSnapshot is a copy of the counters at one moment.
type StatsSnapshot struct {
	Protocols       map[Protocol]ProtocolStats
	Rejects         map[iothub.ErrorCode]uint64
	Devices         map[iothub.Identity]DeviceStats
	AuthFailures    uint64
	TokenExpiries   uint64
	TokenRenewals   uint64
	C2D             map[string]uint64 // queued, completed, abandoned, rejected, expired, dead_lettered
	Methods         map[string]uint64 // calls, results, timeouts, not_online
	Twin            map[string]uint64 // gets, reported_patches, desired_updates
	EventsDropped   uint64
	Throttle        ThrottleStats
	StoredMessages  int
	StoredBytes     uint64
	ConnectedNow    int
	RegisteredCount int
}

// Stats returns the hub's counters. Per-device counts are included only when
// the hub was configured to keep them (see Config.PerDeviceStats).
func (h *Hub) Stats() StatsSnapshot {
	s := &h.stats
	out := StatsSnapshot{
		Protocols:     map[Protocol]ProtocolStats{},
		Rejects:       map[iothub.ErrorCode]uint64{},
		AuthFailures:  s.AuthFailures.Load(),
		TokenExpiries: s.TokenExpiries.Load(),
		TokenRenewals: s.TokenRenewals.Load(),
		C2D: map[string]uint64{"queued": s.C2DQueued.Load(), "completed": s.C2DCompleted.Load(), "abandoned": s.C2DAbandoned.Load(),
			"rejected": s.C2DRejected.Load(), "expired": s.C2DExpired.Load(), "dead_lettered": s.C2DDeadLettered.Load()},
		Methods:        map[string]uint64{"calls": s.MethodCalls.Load(), "results": s.MethodResults.Load(), "timeouts": s.MethodTimeouts.Load(), "not_online": s.MethodNotOnline.Load()},
		Twin:           map[string]uint64{"gets": s.TwinGets.Load(), "reported_patches": s.TwinReportedPatches.Load(), "desired_updates": s.TwinDesiredUpdates.Load()},
		EventsDropped:  h.events.dropped.Load(),
		StoredMessages: h.store.Len(),
		StoredBytes:    h.store.Bytes(),
	}
	if ts, ok := h.cfg.Throttler.(interface{ ThrottleStats() ThrottleStats }); ok {
		out.Throttle = ts.ThrottleStats()
	}
	s.mu.Lock()
	for p, ps := range s.proto {
		out.Protocols[p] = *ps
		out.ConnectedNow += int(ps.Connections)
	}
	for c, n := range s.rejects {
		out.Rejects[c] = n
	}
	if s.devices != nil {
		out.Devices = map[iothub.Identity]DeviceStats{}
		for id, d := range s.devices {
			cp := DeviceStats{Messages: map[Protocol]uint64{}, MessageBytes: map[Protocol]uint64{}}
			for k, v := range d.Messages {
				cp.Messages[k] = v
			}
			for k, v := range d.MessageBytes {
				cp.MessageBytes[k] = v
			}
			out.Devices[id] = cp
		}
	}
	s.mu.Unlock()
	h.mu.RLock()
	out.RegisteredCount = len(h.idents)
	h.mu.RUnlock()
	return out
}
