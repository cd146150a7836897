package hub

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
)

// MethodRequest is a direct-method call as the hub hands it to a device's
// connection.
type MethodRequest struct {
	RID     string // the hub's request id ($rid on MQTT)
	Name    string
	Payload []byte // JSON, or empty
}

// MethodResult is a device's answer to a direct method.
type MethodResult struct {
	Status  int
	Payload json.RawMessage
}

type pendingMethod struct {
	conn     *Conn
	once     sync.Once
	done     chan struct{}
	result   MethodResult
	answered bool
}

// finish settles the call once: with the device's answer, or (answered=false)
// because the connection went away. Later answers are ignored.
func (p *pendingMethod) finish(r MethodResult, answered bool) {
	p.once.Do(func() {
		p.result, p.answered = r, answered
		close(p.done)
	})
}

// SubscribeMethods starts handing direct-method calls to handle, which must not
// block.
func (c *Conn) SubscribeMethods(handle func(MethodRequest)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.methods = handle
	c.mu.Unlock()
	// Calls waiting for the device to come online (connectTimeout) go ahead now.
	c.it.mu.Lock()
	waiters := c.it.methodWaiters
	c.it.methodWaiters = nil
	c.it.mu.Unlock()
	for _, w := range waiters {
		close(w)
	}
}

// InvokeMethod calls a direct method on a device or module and waits for its
// answer, as the service API does: if the identity is offline it waits up to
// connectTimeout for it to connect (404 DeviceNotOnline otherwise), then up to
// responseTimeout for the answer (504 GatewayTimeout otherwise).
func (h *Hub) InvokeMethod(ctx context.Context, id iothub.Identity, name string, payload []byte, responseTimeout, connectTimeout time.Duration) (MethodResult, error) {
	it := h.lookup(id)
	if it == nil {
		return MethodResult{}, iothub.Errorf(iothub.CodeDeviceNotFound, "%s is not registered", describe(id))
	}
	if name == "" {
		return MethodResult{}, iothub.Errorf(iothub.CodeArgumentInvalid, "the method name is empty")
	}
	if len(payload) > iothub.MaxMethodPayload {
		return MethodResult{}, iothub.Errorf(iothub.CodeRequestEntityTooLarge, "method payload of %d bytes exceeds IoT Hub's %d-byte limit", len(payload), iothub.MaxMethodPayload)
	}
	if responseTimeout <= 0 {
		responseTimeout = iothub.DefaultMethodResponseTimeout
	}
	if h.cfg.Throttler != nil {
		if err := h.cfg.Throttler.Allow(OpMethod, id, 0); err != nil {
			return MethodResult{}, err
		}
	}
	h.stats.MethodCalls.Add(1)
	c := h.waitMethodReady(ctx, it, connectTimeout)
	if c == nil {
		h.stats.MethodNotOnline.Add(1)
		return MethodResult{}, iothub.Errorf(iothub.CodeDeviceNotOnline, "%s is not connected and subscribed to direct methods", describe(id))
	}
	c.mu.Lock()
	handle := c.methods
	c.mu.Unlock()
	if handle == nil {
		h.stats.MethodNotOnline.Add(1)
		return MethodResult{}, iothub.Errorf(iothub.CodeDeviceNotOnline, "%s disconnected before the call", describe(id))
	}
	rid := strconv.FormatUint(h.methodSeq.Add(1), 10)
	p := &pendingMethod{conn: c, done: make(chan struct{})}
	h.pending.Store(rid, p)
	defer h.pending.Delete(rid)
	h.emit(Event{Kind: EventMethodCall, Identity: id, Protocol: c.proto, Detail: name})
	handle(MethodRequest{RID: rid, Name: name, Payload: payload})

	t := time.NewTimer(responseTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		if !p.answered {
			return MethodResult{}, iothub.Errorf(iothub.CodeDeviceNotOnline, "%s disconnected before answering method %q", describe(id), name)
		}
		r := p.result
		h.stats.MethodResults.Add(1)
		h.emit(Event{Kind: EventMethodResult, Identity: id, Protocol: c.proto, Detail: name + " " + strconv.Itoa(r.Status)})
		return r, nil
	case <-t.C:
		h.stats.MethodTimeouts.Add(1)
		return MethodResult{}, iothub.Errorf(iothub.CodeGatewayTimeout, "timed out waiting for the response from %s to method %q after %s", describe(id), name, responseTimeout)
	case <-ctx.Done():
		return MethodResult{}, ctx.Err()
	}
}

// MethodResponse delivers a device's answer to the call with request id rid.
// An answer for an unknown rid, or one from another connection, is ignored by
// the hub; it is reported so that a front end can log it.
func (c *Conn) MethodResponse(rid string, status int, payload []byte) error {
	v, ok := c.h.pending.Load(rid)
	if !ok {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "no method call is waiting for request id %q", rid)
	}
	p := v.(*pendingMethod)
	if p.conn != c {
		return iothub.Errorf(iothub.CodeArgumentInvalid, "request id %q belongs to another connection", rid)
	}
	if len(payload) > iothub.MaxMethodPayload {
		return iothub.Errorf(iothub.CodeRequestEntityTooLarge, "method response of %d bytes exceeds IoT Hub's %d-byte limit", len(payload), iothub.MaxMethodPayload)
	}
	r := MethodResult{Status: status}
	if len(payload) > 0 {
		if json.Valid(payload) {
			r.Payload = append(json.RawMessage(nil), payload...)
		} else {
			// The service API returns the payload as JSON; a device that
			// answers with bare text is returned as a JSON string.
			b, _ := json.Marshal(string(payload))
			r.Payload = b
		}
	}
	p.finish(r, true)
	c.Touch()
	return nil
}

// failPendingFor ends the calls waiting on a closed connection.
func (h *Hub) failPendingFor(c *Conn) {
	h.pending.Range(func(k, v any) bool {
		p := v.(*pendingMethod)
		if p.conn == c {
			p.finish(MethodResult{}, false)
		}
		return true
	})
}

// waitMethodReady returns the identity's connection once it is subscribed to
// direct methods, waiting up to timeout for that; nil if it never is.
func (h *Hub) waitMethodReady(ctx context.Context, it *identity, timeout time.Duration) *Conn {
	ready := func() *Conn {
		c := it.conn
		if c == nil {
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.methods == nil || c.closed {
			return nil
		}
		return c
	}
	it.mu.Lock()
	if c := ready(); c != nil || timeout <= 0 {
		it.mu.Unlock()
		return c
	}
	ch := make(chan struct{})
	it.methodWaiters = append(it.methodWaiters, ch)
	it.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	for i, w := range it.methodWaiters {
		if w == ch {
			it.methodWaiters = append(it.methodWaiters[:i], it.methodWaiters[i+1:]...)
			break
		}
	}
	return ready()
}
