package hub

import (
	"context"
	"sync"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// StoredMessage is one accepted device-to-cloud message, with what the hub
// stamped on it.
type StoredMessage struct {
	Seq      uint64 // arrival order across the hub, from 1
	Identity iothub.Identity
	Protocol Protocol
	Enqueued time.Time
	Size     int // as IoT Hub counts it against its limits
	Message  iothub.Message
	// System holds the hub-stamped properties: connection device and module id,
	// auth method and generation, enqueued time.
	System map[string]string
}

// Store records every device-to-cloud message the hub accepts, in arrival order,
// so tests and reports can prove that nothing was lost or duplicated. It keeps
// up to a limit of messages in full; beyond it, the oldest are dropped from
// memory but every count stays exact.
type Store struct {
	mu         sync.Mutex
	limit      int
	keepBodies bool
	msgs       []StoredMessage
	first      uint64 // Seq of msgs[0]
	total      uint64
	bytes      uint64
	perDevice  map[iothub.Identity]uint64
	changed    chan struct{} // closed and replaced on every append
}

func newStore(limit int, keepBodies bool) *Store {
	return &Store{limit: limit, keepBodies: keepBodies, first: 1, perDevice: map[iothub.Identity]uint64{}, changed: make(chan struct{})}
}

func (s *Store) add(m StoredMessage) StoredMessage {
	if !s.keepBodies {
		m.Message.Body = nil
	}
	s.mu.Lock()
	s.total++
	m.Seq = s.total
	s.bytes += uint64(m.Size)
	s.perDevice[m.Identity]++
	s.msgs = append(s.msgs, m)
	if len(s.msgs) > s.limit {
		drop := len(s.msgs) - s.limit
		s.msgs = append(s.msgs[:0:0], s.msgs[drop:]...)
		s.first += uint64(drop)
	}
	ch := s.changed
	s.changed = make(chan struct{})
	s.mu.Unlock()
	close(ch)
	return m
}

// Len is how many messages the hub has accepted in all.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.total)
}

// Bytes is the summed size of every accepted message.
func (s *Store) Bytes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// CountFor is how many messages an identity has sent that the hub accepted.
func (s *Store) CountFor(id iothub.Identity) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.perDevice[id])
}

// Messages returns a copy of the messages kept in memory, oldest first.
func (s *Store) Messages() []StoredMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StoredMessage(nil), s.msgs...)
}

// For returns the kept messages of one identity, oldest first.
func (s *Store) For(id iothub.Identity) []StoredMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StoredMessage
	for _, m := range s.msgs {
		if m.Identity == id {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor blocks until cond holds for the kept messages or ctx ends, checking
// after every accepted message. It is how tests wait for what devices send.
func (s *Store) WaitFor(ctx context.Context, cond func(msgs []StoredMessage) bool) error {
	return s.wait(ctx, func() bool { return cond(s.msgs) })
}

// WaitLen blocks until the hub has accepted at least n messages in all.
func (s *Store) WaitLen(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return s.total >= uint64(n) })
}

// wait re-checks cond, under the store's lock, after every append.
func (s *Store) wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Accept checks and records a device-to-cloud message from principal, stamping
// the hub's properties on it. Front ends call it for every message (Conn.Telemetry
// for connection-oriented protocols).
func (h *Hub) Accept(p *Principal, proto Protocol, m *iothub.Message) error {
	id := p.Identity
	size := m.Size()
	limit := iothub.MaxD2CSize
	if proto == EventHubsHTTPS {
		limit = maxEventHubsBody // Event Hubs Standard allows 1 MB events
	}
	if size > limit {
		err := iothub.Errorf(iothub.CodeMessageTooLarge, "message of %d bytes (body, system property values, application property names and values) exceeds the %d-byte limit", size, limit)
		h.reject(id, proto, err)
		return err
	}
	if h.cfg.Throttler != nil {
		if err := h.cfg.Throttler.Allow(OpD2C, id, size); err != nil {
			h.reject(id, proto, err)
			return err
		}
	}
	now := h.now()
	sys := map[string]string{
		iothub.PropConnectionDeviceID: id.DeviceID,
		iothub.PropConnectionAuth:     p.AuthMethodJSON(),
		iothub.PropEnqueuedTime:       iothub.FormatTime(now),
	}
	if id.ModuleID != "" {
		sys[iothub.PropConnectionModuleID] = id.ModuleID
	}
	if it := h.lookup(id); it != nil {
		it.mu.Lock()
		sys[iothub.PropConnectionAuthGen] = it.reg.GenerationID
		it.lastActivity = now
		it.mu.Unlock()
	}
	cp := *m
	cp.Properties = append([]iothub.Property(nil), m.Properties...)
	sm := h.store.add(StoredMessage{Identity: id, Protocol: proto, Enqueued: now, Size: size, Message: cp, System: sys})
	h.stats.telemetry(proto, size)
	if h.cfg.PerDeviceStats {
		h.stats.deviceTelemetry(id, proto, size)
	}
	h.emit(Event{Kind: EventTelemetry, Identity: id, Protocol: proto, Seq: sm.Seq, Bytes: size})
	return nil
}

// reject counts and reports an operation the hub refused.
func (h *Hub) reject(id iothub.Identity, proto Protocol, err error) {
	h.stats.rejected(err)
	h.emit(Event{Kind: EventRejected, Identity: id, Protocol: proto, Detail: err.Error()})
	h.log.Info("rejected", "identity", id.String(), "protocol", string(proto), "reason", err.Error())
}
