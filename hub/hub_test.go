package hub

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

var groupKey = []byte("group-key-0123456789abcdefghijkl")

func newTestHub(t *testing.T, mod func(*Config)) *Hub {
	t.Helper()
	cfg := Config{HostName: "test.azure-devices.net", GroupKey: groupKey, KeepBodies: true}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func deviceToken(h *Hub, id iothub.Identity, ttl time.Duration) string {
	key := sas.DeriveKey(groupKey, id.DeviceID)
	if it := h.lookup(id); it != nil {
		key = it.reg.Keys[0]
	}
	return sas.Sign(sas.DeviceResource(h.HostName(), id.DeviceID, id.ModuleID), key, "", time.Now().Add(ttl))
}

// connect authenticates and opens a Conn; kicked receives the hub's reason
// when it closes the connection.
func connect(t *testing.T, h *Hub, id iothub.Identity) (*Conn, chan error) {
	t.Helper()
	p, err := h.Authenticate(id, Credentials{Token: deviceToken(h, id, time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	kicked := make(chan error, 1)
	c, err := h.Connect(p, MQTT, "test", func(e error) { kicked <- e })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, kicked
}

func within(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAuthenticate(t *testing.T) {
	h := newTestHub(t, nil)
	dev := iothub.Identity{DeviceID: "dev1"}
	explicit, err := h.AddDevice(Registration{Identity: iothub.Identity{DeviceID: "explicit"}, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddDevice(Registration{Identity: iothub.Identity{DeviceID: "explicit", ModuleID: "m1"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddDevice(Registration{Identity: iothub.Identity{DeviceID: "off"}, Enabled: false}); err != nil {
		t.Fatal(err)
	}
	devPolicy, _ := h.Policy("device")
	svc, _ := h.Policy("service")
	now := time.Now()
	res := func(id iothub.Identity) string { return sas.DeviceResource(h.HostName(), id.DeviceID, id.ModuleID) }
	mod := iothub.Identity{DeviceID: "explicit", ModuleID: "m1"}
	modIt := h.lookup(mod)
	tests := []struct {
		name  string
		id    iothub.Identity
		token string
		ok    bool
		why   string
	}{
		{"group-derived key admits a new device", dev, sas.Sign(res(dev), sas.DeriveKey(groupKey, "dev1"), "", now.Add(time.Hour)), true, ""},
		{"explicit device key", explicit.Identity, sas.Sign(res(explicit.Identity), explicit.Keys[1], "", now.Add(time.Hour)), true, ""},
		{"module key", mod, sas.Sign(res(mod), modIt.reg.Keys[0], "", now.Add(time.Hour)), true, ""},
		{"device policy key", dev, sas.Sign(h.HostName()+"/devices", devPolicy.Keys[0], "device", now.Add(time.Hour)), true, ""},
		{"upper-case host in sr", dev, sas.Sign(strings.ToUpper(h.HostName())+"/devices/dev1", sas.DeriveKey(groupKey, "dev1"), "", now.Add(time.Hour)), true, ""},
		{"wrong key", dev, sas.Sign(res(dev), []byte("wrong"), "", now.Add(time.Hour)), false, "signature"},
		{"expired", dev, sas.Sign(res(dev), sas.DeriveKey(groupKey, "dev1"), "", now.Add(-time.Minute)), false, "expired"},
		{"epoch 2000 clock", dev, sas.Sign(res(dev), sas.DeriveKey(groupKey, "dev1"), "", now.Add(time.Hour-sas.Epoch2000Offset*time.Second)), false, "MicroPython"},
		{"token for another device", dev, sas.Sign(res(iothub.Identity{DeviceID: "dev2"}), sas.DeriveKey(groupKey, "dev2"), "", now.Add(time.Hour)), false, "does not cover"},
		{"policy without DeviceConnect", dev, sas.Sign(h.HostName(), svc.Keys[0], "service", now.Add(time.Hour)), false, "DeviceConnect"},
		{"disabled device", iothub.Identity{DeviceID: "off"}, sas.Sign(res(iothub.Identity{DeviceID: "off"}), h.lookup(iothub.Identity{DeviceID: "off"}).reg.Keys[0], "", now.Add(time.Hour)), false, "disabled"},
		{"unknown module", iothub.Identity{DeviceID: "explicit", ModuleID: "nope"}, sas.Sign(res(iothub.Identity{DeviceID: "explicit", ModuleID: "nope"}), []byte("k"), "", now.Add(time.Hour)), false, "not registered"},
		{"garbage", dev, "hello", false, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := h.Authenticate(tt.id, Credentials{Token: tt.token})
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if p.Identity != tt.id {
					t.Fatalf("principal %v", p.Identity)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, &iothub.Error{Code: iothub.CodeUnauthorized}) {
				t.Errorf("error %v does not mean unauthorized", err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
		})
	}
	if r, ok := h.Registration(dev); !ok || !r.Implicit || r.Auth != AuthSAS {
		t.Errorf("group device not registered implicitly: %+v", r)
	}
	if got := h.Stats().AuthFailures; got != 8 {
		t.Errorf("auth failures counted %d, want 8", got)
	}
}

func TestAuthenticateX509(t *testing.T) {
	h := newTestHub(t, nil)
	now := time.Now()
	ca, err := sas.NewAuthority("test CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h.TrustCA(ca.Cert)
	byCA, _ := sas.IssueDevice(ca, "ca-dev", now.Add(-time.Hour), now.Add(time.Hour))
	self, _ := sas.IssueDevice(nil, "self-dev", now.Add(-time.Hour), now.Add(time.Hour))
	other, _ := sas.IssueDevice(nil, "self-dev", now.Add(-time.Hour), now.Add(time.Hour))
	rogueCA, _ := sas.NewAuthority("rogue", now.Add(-time.Hour), now.Add(time.Hour))
	rogue, _ := sas.IssueDevice(rogueCA, "ca-dev", now.Add(-time.Hour), now.Add(time.Hour))
	mustAdd := func(r Registration) {
		if _, err := h.AddDevice(r); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd(Registration{Identity: iothub.Identity{DeviceID: "ca-dev"}, Auth: AuthCA, Enabled: true})
	mustAdd(Registration{Identity: iothub.Identity{DeviceID: "self-dev"}, Auth: AuthSelfSigned, Thumbprints: [2]string{sas.Thumbprint(self.Leaf)}, Enabled: true})
	chain := func(c *x509.Certificate) []*x509.Certificate { return []*x509.Certificate{c} }
	tests := []struct {
		name string
		dev  string
		cert []*x509.Certificate
		ok   bool
	}{
		{"signed by trusted CA", "ca-dev", chain(byCA.Leaf), true},
		{"registered thumbprint", "self-dev", chain(self.Leaf), true},
		{"other certificate, same CN", "self-dev", chain(other.Leaf), false},
		{"untrusted CA", "ca-dev", chain(rogue.Leaf), false},
		{"CA certificate for another device", "self-dev", chain(byCA.Leaf), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Authenticate(iothub.Identity{DeviceID: tt.dev}, Credentials{Certs: tt.cert})
			if (err == nil) != tt.ok {
				t.Fatalf("ok=%v, err=%v", tt.ok, err)
			}
		})
	}
}

func TestOneConnectionPerIdentity(t *testing.T) {
	h := newTestHub(t, nil)
	id := iothub.Identity{DeviceID: "dev1"}
	first, kicked := connect(t, h, id)
	second, _ := connect(t, h, id)
	select {
	case err := <-kicked:
		if !strings.Contains(err.Error(), "new connection") {
			t.Errorf("reason %v", err)
		}
	case <-within(t).Done():
		t.Fatal("the first connection was not closed")
	}
	if !first.Closed() || second.Closed() || !h.Connected(id) {
		t.Fatalf("first closed %v, second closed %v", first.Closed(), second.Closed())
	}
	second.Close()
	if h.Connected(id) {
		t.Fatal("still connected after close")
	}
	st := h.Stats().Protocols[MQTT]
	if st.Connects != 2 || st.Reconnects != 1 || st.Connections != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTokenExpiryClosesConnection(t *testing.T) {
	h := newTestHub(t, nil)
	id := iothub.Identity{DeviceID: "dev1"}
	// se is whole seconds and valid through its second, so a token "one second
	// from now" ends the connection within 3 s.
	p, err := h.Authenticate(id, Credentials{Token: deviceToken(h, id, time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	kicked := make(chan error, 1)
	c, err := h.Connect(p, AMQP, "test", func(e error) { kicked <- e })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-kicked:
		if !errors.Is(err, &iothub.Error{Code: iothub.CodeUnauthorized}) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("reason %v", err)
		}
	case <-within(t).Done():
		t.Fatal("connection outlived its token")
	}
	if !c.Closed() || h.Stats().TokenExpiries != 1 {
		t.Fatal("not closed, or expiry not counted")
	}
}

func TestRenewTokenKeepsConnection(t *testing.T) {
	h := newTestHub(t, nil)
	id := iothub.Identity{DeviceID: "dev1"}
	p, _ := h.Authenticate(id, Credentials{Token: deviceToken(h, id, time.Second)})
	kicked := make(chan error, 1)
	c, _ := h.Connect(p, AMQP, "test", func(e error) { kicked <- e })
	defer c.Close()
	p2, err := h.Authenticate(id, Credentials{Token: deviceToken(h, id, time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RenewToken(p2); err != nil {
		t.Fatal(err)
	}
	// The first token's expiry passes; the connection must stay. Wait on a
	// second connection's short token instead of on time: it expires at the
	// same second as the first token would have.
	other, otherKicked := iothub.Identity{DeviceID: "dev2"}, make(chan error, 1)
	p3, _ := h.Authenticate(other, Credentials{Token: sas.Sign(sas.DeviceResource(h.HostName(), "dev2", ""), sas.DeriveKey(groupKey, "dev2"), "", p.Expiry)})
	c3, _ := h.Connect(p3, AMQP, "test", func(e error) { otherKicked <- e })
	defer c3.Close()
	select {
	case <-otherKicked:
	case <-within(t).Done():
		t.Fatal("reference connection never expired")
	}
	select {
	case err := <-kicked:
		t.Fatalf("renewed connection closed: %v", err)
	default:
	}
	if c.Closed() {
		t.Fatal("renewed connection closed")
	}
	wrong, _ := h.Authenticate(other, Credentials{Token: deviceToken(h, other, time.Hour)})
	if err := c.RenewToken(wrong); err == nil {
		t.Fatal("a token for another device renewed the connection")
	}
}

func TestTelemetryIsStoredAndStamped(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.PerDeviceStats = true })
	id := iothub.Identity{DeviceID: "dev1"}
	c, _ := connect(t, h, id)
	for i := 0; i < 3; i++ {
		m := &iothub.Message{Body: []byte(`{"n":` + string(rune('0'+i)) + `}`), MessageID: "m" + string(rune('0'+i)), Properties: []iothub.Property{{Name: "k", Value: "v"}}}
		if err := c.Telemetry(m); err != nil {
			t.Fatal(err)
		}
	}
	msgs := h.Store().For(id)
	if len(msgs) != 3 {
		t.Fatalf("%d messages stored", len(msgs))
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || m.Message.MessageID != "m"+string(rune('0'+i)) || string(m.Message.Body) != `{"n":`+string(rune('0'+i))+`}` {
			t.Errorf("message %d: %+v", i, m)
		}
		if m.System[iothub.PropConnectionDeviceID] != "dev1" || !strings.Contains(m.System[iothub.PropConnectionAuth], `"type":"symkey"`) || m.System[iothub.PropEnqueuedTime] == "" {
			t.Errorf("stamps %v", m.System)
		}
	}
	big := &iothub.Message{Body: make([]byte, iothub.MaxD2CSize-1), Properties: []iothub.Property{{Name: "ab", Value: "c"}}}
	if err := c.Telemetry(big); !errors.Is(err, &iothub.Error{Code: iothub.CodeMessageTooLarge}) {
		t.Fatalf("oversize message: %v", err)
	}
	st := h.Stats()
	if st.Protocols[MQTT].Messages != 3 || st.Rejects[iothub.CodeMessageTooLarge] != 1 || st.Devices[id].Messages[MQTT] != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStoreKeepsCountsBeyondLimit(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.StoreLimit = 2; c.KeepBodies = false })
	c, _ := connect(t, h, iothub.Identity{DeviceID: "dev1"})
	for i := 0; i < 5; i++ {
		if err := c.Telemetry(&iothub.Message{Body: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := h.Store().Messages()
	if h.Store().Len() != 5 || len(msgs) != 2 || msgs[0].Seq != 4 || msgs[1].Message.Body != nil || h.Store().Bytes() != 15 {
		t.Fatalf("len %d, kept %+v", h.Store().Len(), msgs)
	}
}

// c2dRecorder collects what the hub pushes to a connection.
type c2dRecorder struct {
	mu  sync.Mutex
	got []*C2DMessage
	ch  chan *C2DMessage
}

func newRecorder() *c2dRecorder { return &c2dRecorder{ch: make(chan *C2DMessage, 100)} }

func (r *c2dRecorder) deliver(m *C2DMessage) {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
	r.ch <- m
}

func (r *c2dRecorder) next(t *testing.T) *C2DMessage {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-within(t).Done():
		t.Fatal("no C2D message delivered")
		return nil
	}
}

func (r *c2dRecorder) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-r.ch:
		t.Fatalf("unexpected delivery %+v", m)
	default:
	}
}

func TestC2DDeliveryWindowAndOutcomes(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.MaxDeliveryCount = 2 })
	id := iothub.Identity{DeviceID: "dev1"}
	c, _ := connect(t, h, id)
	for _, body := range []string{"a", "b", "c"} {
		if _, err := h.SendC2D("dev1", iothub.Message{Body: []byte(body)}, C2DOptions{Ack: "full"}); err != nil {
			t.Fatal(err)
		}
	}
	r := newRecorder()
	c.SubscribeC2D(2, r.deliver)
	a, b := r.next(t), r.next(t)
	r.none(t) // window of 2
	if string(a.Body) != "a" || string(b.Body) != "b" || len(a.LockToken) != 36 || a.To != "/devices/dev1/messages/deviceBound" {
		t.Fatalf("got %q %q %+v", a.Body, b.Body, a)
	}
	if err := c.SettleC2D(a.LockToken, Complete); err != nil {
		t.Fatal(err)
	}
	cm := r.next(t)
	if string(cm.Body) != "c" {
		t.Fatalf("third delivery %q", cm.Body)
	}
	if err := c.SettleC2D(a.LockToken, Complete); !errors.Is(err, &iothub.Error{Code: iothub.CodeLockLost}) {
		t.Fatalf("settling twice: %v", err)
	}
	// Abandon b: redelivered with a higher delivery count; abandoned again it
	// reaches the max delivery count of 2 and is dead-lettered.
	if err := c.SettleC2D(b.LockToken, Abandon); err != nil {
		t.Fatal(err)
	}
	b2 := r.next(t)
	if string(b2.Body) != "b" || b2.DeliveryCount != 1 {
		t.Fatalf("redelivery %q count %d", b2.Body, b2.DeliveryCount)
	}
	if err := c.SettleC2D(b2.LockToken, Abandon); err != nil {
		t.Fatal(err)
	}
	if err := c.SettleC2D(cm.LockToken, Reject); err != nil {
		t.Fatal(err)
	}
	r.none(t)
	if n := h.C2DPending("dev1"); n != 0 {
		t.Fatalf("%d pending", n)
	}
	fb := h.TakeFeedback(0)
	got := map[string]string{}
	for _, f := range fb {
		got[f.OriginalMessageID] = f.StatusCode
	}
	if len(fb) != 3 || got[a.MessageID] != "Success" || got[b.MessageID] != "DeliveryCountExceeded" || got[cm.MessageID] != "Rejected" {
		t.Fatalf("feedback %+v", fb)
	}
}

func TestC2DRedeliveredAfterReconnect(t *testing.T) {
	h := newTestHub(t, nil)
	id := iothub.Identity{DeviceID: "dev1"}
	c, _ := connect(t, h, id)
	r := newRecorder()
	c.SubscribeC2D(5, r.deliver)
	if _, err := h.SendC2D("dev1", iothub.Message{Body: []byte("x"), MessageID: "x1"}, C2DOptions{}); err != nil {
		t.Fatal(err)
	}
	first := r.next(t)
	c.Close() // never acknowledged
	c2, _ := connect(t, h, id)
	r2 := newRecorder()
	c2.SubscribeC2D(5, r2.deliver)
	again := r2.next(t)
	if again.MessageID != "x1" || again.DeliveryCount != 0 || again.LockToken != first.LockToken {
		t.Fatalf("redelivery %+v", again)
	}
	if err := c.SettleC2D(first.LockToken, Complete); err == nil {
		t.Fatal("a closed connection settled a message now locked to another")
	}
	if err := c2.SettleC2D(again.LockToken, Complete); err != nil {
		t.Fatal(err)
	}
}

func TestC2DLimits(t *testing.T) {
	now := time.Now()
	clock := &fakeClock{t: now}
	h := newTestHub(t, func(c *Config) { c.Now = clock.Now })
	if _, err := h.AddDevice(Registration{Identity: iothub.Identity{DeviceID: "d"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SendC2D("nobody", iothub.Message{}, C2DOptions{}); !errors.Is(err, &iothub.Error{Code: iothub.CodeDeviceNotFound}) {
		t.Fatalf("unknown device: %v", err)
	}
	if _, err := h.SendC2D("d", iothub.Message{Body: make([]byte, iothub.MaxC2DSize+1)}, C2DOptions{}); !errors.Is(err, &iothub.Error{Code: iothub.CodeMessageTooLarge}) {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := h.SendC2D("d", iothub.Message{}, C2DOptions{Ack: "sometimes"}); !errors.Is(err, &iothub.Error{Code: iothub.CodeArgumentInvalid}) {
		t.Fatalf("bad ack: %v", err)
	}
	for i := 0; i < iothub.C2DQueueDepth; i++ {
		if _, err := h.SendC2D("d", iothub.Message{}, C2DOptions{Ack: "negative", TTL: time.Minute}); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := h.SendC2D("d", iothub.Message{}, C2DOptions{}); !errors.Is(err, &iothub.Error{Code: iothub.CodeQueueFull}) {
		t.Fatalf("51st message: %v", err)
	}
	clock.advance(time.Minute)
	if n := h.C2DPending("d"); n != 0 {
		t.Fatalf("%d messages outlived their TTL", n)
	}
	if fb := h.TakeFeedback(0); len(fb) != iothub.C2DQueueDepth || fb[0].StatusCode != "Expired" {
		t.Fatalf("expiry feedback: %d records", len(fb))
	}
}

func TestC2DOverHTTPSLocks(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := newTestHub(t, func(c *Config) { c.Now = clock.Now })
	if _, err := h.AddDevice(Registration{Identity: iothub.Identity{DeviceID: "d"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if m, err := h.ReceiveC2D("d", 0); m != nil || err != nil {
		t.Fatalf("empty queue: %v %v", m, err)
	}
	if _, err := h.SendC2D("d", iothub.Message{Body: []byte("1")}, C2DOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := h.ReceiveC2D("d", 10*time.Second)
	if err != nil || m == nil {
		t.Fatal(m, err)
	}
	if again, _ := h.ReceiveC2D("d", 0); again != nil {
		t.Fatal("a locked message was received twice")
	}
	clock.advance(11 * time.Second)
	relocked, _ := h.ReceiveC2D("d", 0)
	if relocked == nil || relocked.LockToken != m.LockToken {
		t.Fatal("message not back after its lock ran out")
	}
	if err := h.SettleC2D("d", relocked.LockToken, Complete); err != nil {
		t.Fatal(err)
	}
	if err := h.SettleC2D("d", relocked.LockToken, Complete); !errors.Is(err, &iothub.Error{Code: iothub.CodeLockLost}) {
		t.Fatal(err)
	}
}

func TestDirectMethods(t *testing.T) {
	h := newTestHub(t, nil)
	id := iothub.Identity{DeviceID: "dev1"}
	ctx := within(t)
	if _, err := h.InvokeMethod(ctx, iothub.Identity{DeviceID: "nobody"}, "m", nil, time.Second, 0); !errors.Is(err, &iothub.Error{Code: iothub.CodeDeviceNotFound}) {
		t.Fatalf("unknown device: %v", err)
	}
	c, _ := connect(t, h, id)
	if _, err := h.InvokeMethod(ctx, id, "m", nil, time.Second, 0); !errors.Is(err, &iothub.Error{Code: iothub.CodeDeviceNotOnline}) {
		t.Fatalf("not subscribed: %v", err)
	}
	reqs := make(chan MethodRequest, 4)
	c.SubscribeMethods(func(r MethodRequest) { reqs <- r })
	go func() {
		r := <-reqs
		if r.Name != "reboot" || string(r.Payload) != `{"delay":1}` {
			t.Errorf("request %+v", r)
		}
		if err := c.MethodResponse(r.RID, 201, []byte(`{"ok":true}`)); err != nil {
			t.Error(err)
		}
	}()
	res, err := h.InvokeMethod(ctx, id, "reboot", []byte(`{"delay":1}`), 5*time.Second, 0)
	if err != nil || res.Status != 201 || string(res.Payload) != `{"ok":true}` {
		t.Fatalf("result %+v %v", res, err)
	}
	// A device that never answers: 504 after the response timeout.
	if _, err := h.InvokeMethod(ctx, id, "slow", nil, 50*time.Millisecond, 0); !errors.Is(err, &iothub.Error{Code: iothub.CodeGatewayTimeout}) {
		t.Fatalf("timeout: %v", err)
	}
	<-reqs // the unanswered call
	// A device that disconnects while a call waits.
	done := make(chan error, 1)
	go func() {
		_, err := h.InvokeMethod(ctx, id, "bye", nil, 5*time.Second, 0)
		done <- err
	}()
	<-reqs
	c.Close()
	if err := <-done; !errors.Is(err, &iothub.Error{Code: iothub.CodeDeviceNotOnline}) {
		t.Fatalf("disconnect during call: %v", err)
	}
	// connectTimeout: the call waits for the device to connect and subscribe.
	go func() {
		_, err := h.InvokeMethod(ctx, id, "later", nil, 5*time.Second, 5*time.Second)
		done <- err
	}()
	c2, _ := connect(t, h, id)
	c2.SubscribeMethods(func(r MethodRequest) { _ = c2.MethodResponse(r.RID, 200, nil) })
	if err := <-done; err != nil {
		t.Fatalf("call waiting for the device: %v", err)
	}
	st := h.Stats().Methods
	if st["results"] != 2 || st["timeouts"] != 1 {
		t.Fatalf("method stats %v", st)
	}
}

func TestTwin(t *testing.T) {
	h := newTestHub(t, nil)
	id := iothub.Identity{DeviceID: "dev1"}
	c, _ := connect(t, h, id)
	doc, _ := c.GetTwin()
	if string(doc) != `{"desired":{"$version":1},"reported":{"$version":1}}` {
		t.Fatalf("new twin %s", doc)
	}
	v, err := c.PatchReported([]byte(`{"fw":"1.0","net":{"rssi":-90,"band":20},"$version":99}`))
	if err != nil || v != 2 {
		t.Fatalf("patch: %v %v", v, err)
	}
	v, err = c.PatchReported([]byte(`{"net":{"band":null,"cell":7},"fw":null}`))
	if err != nil || v != 3 {
		t.Fatalf("second patch: %v %v", v, err)
	}
	doc, _ = c.GetTwin()
	if string(doc) != `{"desired":{"$version":1},"reported":{"$version":3,"net":{"cell":7,"rssi":-90}}}` {
		t.Fatalf("merged twin %s", doc)
	}
	for _, bad := range []string{`[1]`, `nope`, `{"a":1} {}`, `{"x":"` + strings.Repeat("y", iothub.MaxTwinSection) + `"}`} {
		if _, err := c.PatchReported([]byte(bad)); !errors.Is(err, &iothub.Error{Code: iothub.CodeArgumentInvalid}) {
			t.Errorf("patch %.20q: %v", bad, err)
		}
	}
	notes := make(chan string, 2)
	c.SubscribeDesired(func(p []byte, v int64) { notes <- string(p) })
	tw, err := h.UpdateTwin(id, []byte(`{"tags":{"site":"a"},"properties":{"desired":{"interval":60}}}`), "")
	if err != nil || tw.DesiredVersion != 2 || tw.Tags["site"] != "a" {
		t.Fatalf("update: %+v %v", tw, err)
	}
	select {
	case n := <-notes:
		if n != `{"$version":2,"interval":60}` {
			t.Fatalf("notification %s", n)
		}
	case <-within(t).Done():
		t.Fatal("no desired notification")
	}
	if _, err := h.UpdateTwin(id, []byte(`{"tags":{"x":1}}`), `"stale"`); !errors.Is(err, &iothub.Error{Code: iothub.CodePreconditionFailed}) {
		t.Fatalf("stale etag: %v", err)
	}
	if _, err := h.UpdateTwin(id, []byte(`{"tags":{"x":1}}`), `"`+tw.ETag+`"`); err != nil {
		t.Fatalf("current etag: %v", err)
	}
	if _, err := h.UpdateTwin(id, []byte(`{"properties":{"reported":{"x":1}}}`), ""); err == nil {
		t.Fatal("service changed reported properties")
	}
	b, _ := json.Marshal(tw)
	var view map[string]any
	if err := json.Unmarshal(b, &view); err != nil || view["deviceId"] != "dev1" || view["connectionState"] != "Connected" {
		t.Fatalf("service JSON %s", b)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
