package hub

import (
	"errors"
	"sync"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// Protocol is the front end a connection or request came through.
type Protocol string

const (
	MQTT           Protocol = "mqtt"
	MQTTWebSocket  Protocol = "mqtt-ws"
	AMQP           Protocol = "amqp"
	AMQPWebSocket  Protocol = "amqp-ws"
	HTTPS          Protocol = "https"
	EventHubsHTTPS Protocol = "eventhubs-https"
)

// Protocols lists every front end, for stats and metrics.
var Protocols = []Protocol{MQTT, MQTTWebSocket, AMQP, AMQPWebSocket, HTTPS, EventHubsHTTPS}

// Conn is the hub's side of one live device connection. A front end opens it
// after authentication, registers what the device subscribed to, hands it what
// the device sends, and closes it when the connection ends. Handlers the front
// end registers are called from hub goroutines and must not block: they queue
// the packet for the connection's writer.
type Conn struct {
	h         *Hub
	it        *identity
	principal *Principal
	proto     Protocol
	remote    string
	closeFn   func(error)
	opened    time.Time

	mu          sync.Mutex
	closed      bool
	expiry      *time.Timer
	c2d         func(*C2DMessage)
	c2dWindow   int
	c2dInflight int
	methods     func(MethodRequest)
	desired     func(patch []byte, version int64)
}

// ErrConnClosed is returned by Conn operations after the connection ended.
var ErrConnClosed = errors.New("the device connection is closed")

// Connect registers a live connection for an authenticated principal. IoT Hub
// keeps one connection per identity: an older one is closed (the hub logs
// 400027 ConnectionForcefullyClosedOnNewConnection). closeFn is how the hub
// ends the connection — a newer connection, an expired token, a disabled
// device — and must not block. A SAS principal's connection is closed when its
// token expires, unless RenewToken extends it.
func (h *Hub) Connect(p *Principal, proto Protocol, remote string, closeFn func(error)) (*Conn, error) {
	if p == nil || p.Identity.DeviceID == "" {
		return nil, errors.New("connect: no device principal")
	}
	it := h.lookup(p.Identity)
	if it == nil {
		return nil, iothub.Errorf(iothub.CodeDeviceNotFound, "%s is not registered", describe(p.Identity))
	}
	if h.cfg.Throttler != nil {
		if err := h.cfg.Throttler.Allow(OpConnect, p.Identity, 0); err != nil {
			h.reject(p.Identity, proto, err)
			return nil, err
		}
	}
	now := h.now()
	c := &Conn{h: h, it: it, principal: p, proto: proto, remote: remote, closeFn: closeFn, opened: now}
	it.mu.Lock()
	old := it.conn
	it.conn = c
	reconnect := it.everConnected
	it.everConnected = true
	it.lastActivity = now
	it.connStateUpdated = now
	it.mu.Unlock()
	if old != nil {
		old.kick(iothub.Errorf(iothub.CodeDeviceNotOnline, "a new connection for %s replaced this one", describe(p.Identity)))
	}
	c.armExpiry(p.Expiry)
	h.stats.connected(proto, reconnect)
	h.emit(Event{Kind: EventConnected, Identity: p.Identity, Protocol: proto, Detail: remote})
	h.log.Info("device connected", "identity", p.Identity.String(), "protocol", string(proto), "remote", remote, "auth", p.Method)
	return c, nil
}

// Identity is who the connection acts as.
func (c *Conn) Identity() iothub.Identity { return c.principal.Identity }

// Principal is the authenticated principal of the connection.
func (c *Conn) Principal() *Principal { return c.principal }

// Protocol is the connection's front end.
func (c *Conn) Protocol() Protocol { return c.proto }

// armExpiry closes the connection when a SAS token expires: D-SAS, "when the
// token expires, the IoT hub severs the device connection". se is in whole
// seconds and a token verifies through the second it names (sas.CheckExpiry),
// so the connection ends when that second does.
func (c *Conn) armExpiry(exp time.Time) {
	if exp.IsZero() {
		return
	}
	d := exp.Truncate(time.Second).Add(time.Second).Sub(c.h.now())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = time.AfterFunc(d, func() {
		c.h.stats.TokenExpiries.Add(1)
		c.kick(iothub.Errorf(iothub.CodeUnauthorized, "the SAS token of %s expired at %s", describe(c.principal.Identity), exp.UTC().Format(time.RFC3339)))
	})
}

// RenewToken replaces the connection's principal after an in-band token
// renewal (AMQP CBS put-token) and re-arms the expiry.
func (c *Conn) RenewToken(p *Principal) error {
	if p.Identity != c.principal.Identity {
		return iothub.Errorf(iothub.CodeUnauthorized, "a token for %s cannot renew the connection of %s", describe(p.Identity), describe(c.principal.Identity))
	}
	c.mu.Lock()
	c.principal = p
	c.mu.Unlock()
	c.armExpiry(p.Expiry)
	c.h.stats.TokenRenewals.Add(1)
	return nil
}

// kick ends the connection from the hub's side: the hub's state first, so
// that whoever the front end tells sees the connection closed, then the
// network connection.
func (c *Conn) kick(reason error) {
	c.h.log.Info("closing device connection", "identity", c.principal.Identity.String(), "protocol", string(c.proto), "reason", reason.Error())
	c.Close()
	c.closeFn(reason)
}

// Touch records activity on the connection.
func (c *Conn) Touch() {
	now := c.h.now()
	c.it.mu.Lock()
	c.it.lastActivity = now
	c.it.mu.Unlock()
}

// Close unregisters the connection: its locked C2D messages return to the queue
// (their delivery count unchanged), pending method calls to it fail, and the
// identity shows as disconnected. Close is idempotent.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.c2d, c.methods, c.desired = nil, nil, nil
	c.mu.Unlock()

	it := c.it
	it.mu.Lock()
	current := it.conn == c
	if current {
		it.conn = nil
		it.connStateUpdated = c.h.now()
	}
	it.c2d.unlockConn(c)
	it.mu.Unlock()
	if current {
		c.h.dispatchC2D(it)
	}
	c.h.failPendingFor(c)
	c.h.stats.disconnected(c.proto)
	c.h.emit(Event{Kind: EventDisconnected, Identity: c.principal.Identity, Protocol: c.proto})
}

// Closed reports whether the connection has ended.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Telemetry accepts a device-to-cloud message sent on this connection.
func (c *Conn) Telemetry(m *iothub.Message) error {
	if c.Closed() {
		return ErrConnClosed
	}
	c.Touch()
	return c.h.Accept(c.principal, c.proto, m)
}

// Connected reports whether an identity has a live connection.
func (h *Hub) Connected(id iothub.Identity) bool {
	it := h.lookup(id)
	if it == nil {
		return false
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.conn != nil
}

// ConnectionInfo is what the registry shows about an identity's connection.
type ConnectionInfo struct {
	Connected    bool
	Protocol     Protocol
	LastActivity time.Time
	StateUpdated time.Time
}

// Connection reports an identity's connection state.
func (h *Hub) Connection(id iothub.Identity) (ConnectionInfo, bool) {
	it := h.lookup(id)
	if it == nil {
		return ConnectionInfo{}, false
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	ci := ConnectionInfo{Connected: it.conn != nil, LastActivity: it.lastActivity, StateUpdated: it.connStateUpdated}
	if it.conn != nil {
		ci.Protocol = it.conn.proto
	}
	return ci, true
}

// DisconnectAll closes every live device connection with reason, as a hub
// failover does; devices reconnect on their own.
func (h *Hub) DisconnectAll(reason error) {
	h.mu.RLock()
	var conns []*Conn
	for _, it := range h.idents {
		it.mu.Lock()
		if it.conn != nil {
			conns = append(conns, it.conn)
		}
		it.mu.Unlock()
	}
	h.mu.RUnlock()
	for _, c := range conns {
		c.kick(reason)
	}
}
