package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
	"github.com/catmsim/catmsim/sas"
)

// renewalTTL is the token lifetime of the renewal tests. se has one-second
// resolution, so a two-second token lives 1 to 2 s; renewed at half its
// life, the renewal comes at least half a second before expiry, slack enough
// for a busy machine's timers.
const renewalTTL = 2 * time.Second

// keepSending sends telemetry every 100 ms until done says to stop, failing
// the test on a send error or a state change; it returns the number sent.
func keepSending(t *testing.T, c *Client, rec *recorder, done func(elapsed time.Duration) bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for !done(time.Since(start)) {
		select {
		case st := <-rec.states:
			t.Fatalf("state change after %s: %v %v", time.Since(start), st.connected, st.err)
		case <-ctx.Done():
			t.Fatalf("not done after %s and %d sends", time.Since(start), sent)
		case <-tick.C:
		}
		if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("tick")}); err != nil {
			t.Fatalf("send %d after %s: %v", sent, time.Since(start), err)
		}
		sent++
	}
	return sent
}

// TestCBSRenewal keeps a device on one connection across three token
// lifetimes: the client puts a new token on $cbs before each expires, sends
// never fail, the hub counts the renewals and no reconnect, and the ledger
// counts the put-tokens' bytes as token renewal.
func TestCBSRenewal(t *testing.T) {
	t.Parallel()
	for _, proto := range []protocols.Protocol{protocols.AMQP, protocols.AMQPWebSocket} {
		t.Run(string(proto), func(t *testing.T) {
			t.Parallel()
			env := hubtest.Start(t, true, nil)
			id := iothub.Identity{DeviceID: "dev-renew-" + string(proto)}
			cfg, link := device(t, env, proto, id.DeviceID)
			cfg.Auth.TokenTTL, cfg.Auth.RenewAt = renewalTTL, 0.5
			c := newClient(t, cfg)
			rec := newRecorder()
			rec.register(c)
			if err := c.Connect(hubtest.Ctx(t)); err != nil {
				t.Fatal(err)
			}
			sent := keepSending(t, c, rec, func(elapsed time.Duration) bool {
				return elapsed >= 3*renewalTTL && env.Hub.Stats().TokenRenewals >= 3
			})
			st := env.Hub.Stats()
			if n := env.Hub.Store().CountFor(id); n != sent {
				t.Fatalf("hub stored %d messages, device sent %d", n, sent)
			}
			if ps := st.Protocols[hub.Protocol(proto)]; ps.Connects != 1 || ps.Reconnects != 0 {
				t.Fatalf("hub saw %d connects and %d reconnects, want one connection", ps.Connects, ps.Reconnects)
			}
			if st.TokenExpiries != 0 {
				t.Fatalf("%d tokens expired under the device", st.TokenExpiries)
			}
			// The links live on: a direct method still reaches the device.
			if res, err := env.Hub.InvokeMethod(hubtest.Ctx(t), id, "ping", []byte(`1`), 5*time.Second, 0); err != nil || res.Status != 201 {
				t.Fatalf("method after renewals: %v %v", res, err)
			}
			s := link.Ledger().Snapshot()
			if s.Conns(network.ReasonInitial) != 1 || s.Conns(network.ReasonReconnect) != 0 || s.Conns(network.ReasonTokenRenewal) != 0 {
				t.Fatalf("ledger counts %d initial, %d reconnect and %d renewal connections, want one initial", s.Conns(network.ReasonInitial),
					s.Conns(network.ReasonReconnect), s.Conns(network.ReasonTokenRenewal))
			}
			for _, l := range []network.Layer{network.LayerProtocol, network.LayerTLS, network.LayerIP} {
				for _, d := range []network.Direction{network.Up, network.Down} {
					if s.Bytes(l, d, network.ClassTokenRenewal) == 0 {
						t.Errorf("no %s bytes %s counted as token renewal", l, d)
					}
				}
			}
			// A put-token up carries a token of some 150 bytes.
			perRenewal := s.Bytes(network.LayerProtocol, network.Up, network.ClassTokenRenewal) / st.TokenRenewals
			if perRenewal < 150 {
				t.Errorf("%d protocol bytes up per renewal; a put-token carries more", perRenewal)
			}
		})
	}
}

// TestFailedRenewalIsReported: the device's keys are rotated under it, so
// the hub refuses its renewed token; the device hears it as an unauthorized
// token renewal, the connection is closed, later sends fail as disconnected,
// and nothing is retried.
func TestFailedRenewalIsReported(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	id := iothub.Identity{DeviceID: "dev-rotated"}
	cfg, link := device(t, env, protocols.AMQP, id.DeviceID)
	cfg.Auth.TokenTTL, cfg.Auth.RenewAt = renewalTTL, 0.5
	c := newClient(t, cfg)
	rec := newRecorder()
	c.OnState(func(connected bool, err error) { rec.states <- state{connected, err} })
	ctx := hubtest.Ctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	newKey := []byte("a rotated key, not derived from the group key")
	if err := env.Hub.UpdateRegistration(hub.Registration{Identity: id, Keys: [2][]byte{newKey, newKey}, Enabled: true}, "*"); err != nil {
		t.Fatal(err)
	}
	st := next(t, rec.states, "failed renewal report")
	var pe *protocols.Error
	if st.connected || !errors.Is(st.err, protocols.ErrUnauthorized) || !errors.As(st.err, &pe) || pe.Op != "token renewal" {
		t.Fatalf("state %v %v, want a token renewal failure, unauthorized", st.connected, st.err)
	}
	if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("x")}); !errors.Is(err, protocols.ErrDisconnected) {
		t.Fatalf("send after the failed renewal: %v", err)
	}
	hubtest.WaitFor(t, env.Hub, "the connection to close", func() bool { return !env.Hub.Connected(id) })
	s := link.Ledger().Snapshot()
	if s.Conns(network.ReasonInitial) != 1 || s.Conns(network.ReasonReconnect) != 0 || s.Conns(network.ReasonTokenRenewal) != 0 {
		t.Fatal("the client opened another connection")
	}
	if s.Bytes(network.LayerProtocol, network.Up, network.ClassTokenRenewal) == 0 {
		t.Fatal("the refused put-token's bytes are not counted as token renewal")
	}
}

// TestSASLPlain authenticates with the token as the SASL PLAIN password. The
// hub binds such a connection to its token, so the client renews by
// reconnecting: sends never fail, and the ledger counts the reconnects as
// token renewals, not as reconnects.
func TestSASLPlain(t *testing.T) {
	t.Parallel()
	for _, proto := range []protocols.Protocol{protocols.AMQP, protocols.AMQPWebSocket} {
		t.Run(string(proto), func(t *testing.T) {
			t.Parallel()
			env := hubtest.Start(t, true, nil)
			id := iothub.Identity{DeviceID: "dev-plain-" + string(proto)}
			cfg, link := device(t, env, proto, id.DeviceID)
			cfg.AMQPAuth = protocols.AMQPAuthPlain
			cfg.Auth.TokenTTL, cfg.Auth.RenewAt = renewalTTL, 0.5
			c := newClient(t, cfg)
			rec := newRecorder()
			rec.register(c)
			if err := c.Connect(hubtest.Ctx(t)); err != nil {
				t.Fatal(err)
			}
			renewals := func() uint64 { s := link.Ledger().Snapshot(); return s.Conns(network.ReasonTokenRenewal) }
			sent := keepSending(t, c, rec, func(elapsed time.Duration) bool { return elapsed >= 2*renewalTTL && renewals() >= 2 })
			if n := env.Hub.Store().CountFor(id); n != sent {
				t.Fatalf("hub stored %d messages, device sent %d", n, sent)
			}
			// Every renewal attached the handlers' links again.
			if res, err := env.Hub.InvokeMethod(hubtest.Ctx(t), id, "ping", []byte(`1`), 5*time.Second, 0); err != nil || res.Status != 201 {
				t.Fatalf("method after renewals: %v %v", res, err)
			}
			s := link.Ledger().Snapshot()
			if s.Conns(network.ReasonReconnect) != 0 {
				t.Fatalf("renewals counted as %d reconnects", s.Conns(network.ReasonReconnect))
			}
			if s.Bytes(network.LayerTLS, network.Up, network.ClassTokenRenewal) == 0 {
				t.Fatal("no renewal bytes")
			}
			if st := env.Hub.Stats(); st.AuthFailures != 0 {
				t.Fatalf("%d authentication failures", st.AuthFailures)
			}
		})
	}
}

// TestX509 authenticates with a CA-signed client certificate, with no SASL
// layer (the C SDK) and with SASL EXTERNAL; a certificate from a CA the hub
// does not trust is refused as unauthorized.
func TestX509(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, false, nil)
	ca, err := sas.NewAuthority("catmsim test CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	env.Hub.TrustCA(ca.Cert)
	stranger, err := sas.NewAuthority("untrusted CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		auth  protocols.AMQPAuth
		proto protocols.Protocol
		ca    *sas.Authority
		want  error
	}{
		{"no SASL", "", protocols.AMQP, ca, nil},
		{"SASL EXTERNAL", protocols.AMQPAuthExternal, protocols.AMQP, ca, nil},
		{"over WebSockets", protocols.AMQPAuthNoSASL, protocols.AMQPWebSocket, ca, nil},
		{"untrusted CA", "", protocols.AMQP, stranger, protocols.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := iothub.Identity{DeviceID: "dev-x509-" + strings.ReplaceAll(tt.name, " ", "-")}
			if _, err := env.Hub.AddDevice(hub.Registration{Identity: id, Auth: hub.AuthCA, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			cert, err := sas.IssueDevice(tt.ca, id.DeviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := device(t, env, tt.proto, id.DeviceID)
			cfg.Auth = protocols.Credentials{Certificate: &cert}
			cfg.AMQPAuth = tt.auth
			c := newClient(t, cfg)
			rec := newRecorder()
			rec.register(c)
			ctx := hubtest.Ctx(t)
			err = c.Connect(ctx)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("signed")}); err != nil {
				t.Fatal(err)
			}
			got := env.Hub.Store().For(id)
			if len(got) != 1 || !strings.Contains(got[0].System[iothub.PropConnectionAuth], "x509") {
				t.Fatalf("stored %+v", got)
			}
			if _, err := c.PatchReported(ctx, []byte(`{"cert":true}`)); err != nil {
				t.Fatal(err)
			}
			quiet(t, rec)
		})
	}
}

// TestModule runs a module identity's telemetry, method and twin.
func TestModule(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	dev := iothub.Identity{DeviceID: "edge1"}
	mod := iothub.Identity{DeviceID: "edge1", ModuleID: "sensor"}
	key := []byte("the module's own key, 32 bytes..")
	if _, err := env.Hub.AddDevice(hub.Registration{Identity: dev, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Hub.AddDevice(hub.Registration{Identity: mod, Keys: [2][]byte{key, key}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	for _, auth := range []protocols.AMQPAuth{protocols.AMQPAuthCBS, protocols.AMQPAuthPlain} {
		t.Run(string(auth), func(t *testing.T) {
			cfg, _ := device(t, env, protocols.AMQP, mod.DeviceID)
			cfg.Identity, cfg.Auth.Key, cfg.AMQPAuth = mod, key, auth
			c := newClient(t, cfg)
			rec := newRecorder()
			c.OnMethod(func(_ context.Context, name string, _ []byte) (int, []byte) { return 200, []byte(`"` + name + `"`) })
			c.OnDesired(func(patch []byte, version int64) { rec.desired <- desired{string(patch), version} })
			ctx := hubtest.Ctx(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			before := env.Hub.Store().CountFor(mod)
			if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("from the module")}); err != nil {
				t.Fatal(err)
			}
			got := env.Hub.Store().For(mod)
			if len(got) != before+1 || got[before].System[iothub.PropConnectionModuleID] != "sensor" {
				t.Fatalf("stored %+v", got)
			}
			res, err := env.Hub.InvokeMethod(ctx, mod, "blink", nil, 5*time.Second, 0)
			if err != nil || res.Status != 200 || string(res.Payload) != `"blink"` {
				t.Fatalf("module method: %+v %v", res, err)
			}
			if _, err := env.Hub.UpdateDesired(mod, map[string]any{"auth": string(auth)}); err != nil {
				t.Fatal(err)
			}
			if d := next(t, rec.desired, "module desired patch"); !strings.Contains(d.patch, string(auth)) {
				t.Fatalf("desired %+v", d)
			}
		})
	}
}

// TestTLSOptions: the TLS choices devices vary reach the wire. Resumption
// saves the certificate chain on every connection after the first; TLS 1.2
// and 1.3 both work against the hub.
func TestTLSOptions(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	connectDown := map[bool]uint64{}
	for _, resume := range []bool{false, true} {
		cfg, link := device(t, env, protocols.AMQP, "dev-tls")
		cfg.TLS.Resumption = resume
		c := newClient(t, cfg)
		ctx := hubtest.Ctx(t)
		for range 4 {
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
		s := link.Ledger().Snapshot()
		connectDown[resume] = s.Bytes(network.LayerTLS, network.Down, network.ClassConnect) + s.Bytes(network.LayerTLS, network.Down, network.ClassReconnect)
	}
	// Three of four handshakes resumed: well under 60 % of the bytes.
	if connectDown[true]*10 > connectDown[false]*6 {
		t.Fatalf("handshake bytes down: %d without resumption, %d with", connectDown[false], connectDown[true])
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cfg, _ := device(t, env, protocols.AMQP, "dev-tls")
			cfg.TLS.MinVersion, cfg.TLS.MaxVersion = v, v
			c := newClient(t, cfg)
			if err := c.Connect(hubtest.Ctx(t)); err != nil {
				t.Fatal(err)
			}
			if err := c.SendTelemetry(hubtest.Ctx(t), &iothub.Message{Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIdleTimeout: the advertised idle-time-out sets the hub's heartbeat,
// whose empty frames the ledger counts as keep-alive.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	cfg, link := device(t, env, protocols.AMQP, "dev-idle-timeout")
	cfg.IdleTimeout = 400 * time.Millisecond
	c := newClient(t, cfg)
	if err := c.Connect(hubtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	hubtest.Eventually(t, "the hub's heartbeats", func() bool {
		s := link.Ledger().Snapshot()
		return s.Bytes(network.LayerProtocol, network.Down, network.ClassKeepAlive) >= 3*8 // three empty frames
	})
}
