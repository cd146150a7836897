package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
	"github.com/catmsim/catmsim/sas"
)

func TestMain(m *testing.M) { os.Exit(hubtest.Main(m)) }

// recorder collects what the hub pushed to a device's handlers.
type recorder struct {
	c2d     chan *protocols.C2DMessage
	desired chan desired
	states  chan state
	outcome protocols.Outcome
	mu      sync.Mutex
}

type desired struct {
	patch   string
	version int64
}

type state struct {
	connected bool
	err       error
}

func newRecorder() *recorder {
	return &recorder{c2d: make(chan *protocols.C2DMessage, 16), desired: make(chan desired, 16), states: make(chan state, 16)}
}

func (r *recorder) register(c *Client) {
	c.OnC2D(func(_ context.Context, m *protocols.C2DMessage) protocols.Outcome {
		r.c2d <- m
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.outcome
	})
	c.OnMethod(func(_ context.Context, name string, payload []byte) (int, []byte) {
		return 201, []byte(`{"method":"` + name + `","got":` + string(payload) + `}`)
	})
	c.OnDesired(func(patch []byte, version int64) { r.desired <- desired{string(patch), version} })
	c.OnState(func(connected bool, err error) { r.states <- state{connected, err} })
}

func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
		var zero T
		return zero
	}
}

func newClient(t *testing.T, cfg protocols.Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// TestEveryOperation runs each operation the MQTT transports support against
// the emulator, over loopback TCP and over the in-memory listener, and checks
// the effect in the hub's store, twin and stats and in the device's ledger.
func TestEveryOperation(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		env := hubtest.Start(t, inMemory, nil)
		for _, proto := range []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket} {
			t.Run(env.Name()+"/"+string(proto), func(t *testing.T) {
				devID := "dev-" + env.Name() + "-" + string(proto)
				id := iothub.Identity{DeviceID: devID}
				cfg, link := env.Device(t, proto, devID)
				cfg.ModelID = "dtmi:com:example:Thermostat;1"
				c := newClient(t, cfg)
				rec := newRecorder()
				rec.register(c)
				ctx := hubtest.Ctx(t)
				if err := c.Connect(ctx); err != nil {
					t.Fatal(err)
				}

				// Telemetry with system and application properties, QoS 1.
				body := []byte(`{"temperature":21.5}`)
				m := &iothub.Message{Body: body, MessageID: "m-1", ContentType: "application/json", ContentEncoding: "utf-8",
					Properties: []iothub.Property{{Name: "alert", Value: "a/b c"}}}
				if err := c.SendTelemetry(ctx, m); err != nil {
					t.Fatal(err)
				}
				got := env.Hub.Store().For(id)
				if len(got) != 1 || string(got[0].Message.Body) != string(body) || got[0].Message.MessageID != "m-1" ||
					got[0].Message.ContentType != "application/json" || got[0].Protocol != hub.Protocol(proto) {
					t.Fatalf("stored %+v", got)
				}
				if v, _ := got[0].Message.Get("alert"); v != "a/b c" {
					t.Fatalf("property alert = %q", v)
				}

				// C2D: completed by the PUBACK. The hub's counters are shared by
				// the subtests.
				completed := env.Hub.Stats().C2D["completed"]
				if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("open valve"), MessageID: "c-1", Properties: []iothub.Property{{Name: "k", Value: "v/w"}}}, hub.C2DOptions{}); err != nil {
					t.Fatal(err)
				}
				cm := next(t, rec.c2d, "C2D message")
				if string(cm.Body) != "open valve" || cm.MessageID != "c-1" {
					t.Fatalf("C2D %+v", cm)
				}
				if v, _ := cm.Get("k"); v != "v/w" {
					t.Fatalf("C2D property k = %q", v)
				}
				hubtest.WaitFor(t, env.Hub, "C2D completed", func() bool { return env.Hub.Stats().C2D["completed"] == completed+1 })

				// C2D the device wants to reject: MQTT cannot, so the message is
				// completed and the device hears ErrUnsupported.
				rec.mu.Lock()
				rec.outcome = protocols.Reject
				rec.mu.Unlock()
				if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("bad")}, hub.C2DOptions{}); err != nil {
					t.Fatal(err)
				}
				next(t, rec.c2d, "second C2D message")
				st := next(t, rec.states, "unsupported outcome report")
				if !st.connected || !errors.Is(st.err, protocols.ErrUnsupported) {
					t.Fatalf("state %v %v, want connected with ErrUnsupported", st.connected, st.err)
				}
				hubtest.WaitFor(t, env.Hub, "second C2D completed", func() bool { return env.Hub.Stats().C2D["completed"] == completed+2 })

				// A direct method.
				res, err := env.Hub.InvokeMethod(ctx, id, "reboot", []byte(`{"delay":5}`), 5*time.Second, 0)
				if err != nil {
					t.Fatal(err)
				}
				wantResp := `{"method":"reboot","got":{"delay":5}}`
				if res.Status != 201 || string(res.Payload) != wantResp {
					t.Fatalf("method result %d %s", res.Status, res.Payload)
				}

				// Twin: get, reported patch, desired update.
				doc, err := c.GetTwin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var view struct{ Desired, Reported map[string]any }
				if err := json.Unmarshal(doc, &view); err != nil || view.Desired == nil || view.Reported == nil {
					t.Fatalf("twin %s: %v", doc, err)
				}
				patch := []byte(`{"firmware":"2.1.0"}`)
				v, err := c.PatchReported(ctx, patch)
				if err != nil {
					t.Fatal(err)
				}
				tw, err := env.Hub.GetTwin(id)
				if err != nil {
					t.Fatal(err)
				}
				twj, _ := json.Marshal(tw)
				if v != 2 || !strings.Contains(string(twj), `"firmware":"2.1.0"`) {
					t.Fatalf("reported version %d, twin %s", v, twj)
				}
				if _, err := env.Hub.UpdateDesired(id, map[string]any{"interval": 30}); err != nil {
					t.Fatal(err)
				}
				d := next(t, rec.desired, "desired patch")
				if d.version != 2 || !strings.Contains(d.patch, `"interval":30`) {
					t.Fatalf("desired %+v", d)
				}

				if err := c.Close(ctx); err != nil {
					t.Fatal(err)
				}
				s := link.Ledger().Snapshot()
				hubtest.CheckLayers(t, s, network.Up, network.ClassTelemetry, len(body))
				hubtest.CheckLayers(t, s, network.Down, network.ClassC2D, len("open valve")+len("bad"))
				hubtest.CheckLayers(t, s, network.Down, network.ClassMethod, len(`{"delay":5}`))
				hubtest.CheckLayers(t, s, network.Up, network.ClassMethod, len(wantResp))
				hubtest.CheckLayers(t, s, network.Up, network.ClassTwin, len(patch))
				hubtest.CheckLayers(t, s, network.Down, network.ClassTwin, len(doc)+len(d.patch))
				if s.Bytes(network.LayerTLS, network.Up, network.ClassConnect) == 0 || s.Bytes(network.LayerProtocol, network.Up, network.ClassConnect) == 0 {
					t.Error("no connect bytes")
				}
				if n := s.Conns(network.ReasonInitial); n != 1 {
					t.Errorf("%d initial connections, want 1", n)
				}
				for _, cl := range []network.Class{network.ClassOther, network.ClassReconnect, network.ClassTokenRenewal} {
					for _, dir := range []network.Direction{network.Up, network.Down} {
						if n := s.Bytes(network.LayerProtocol, dir, cl); n != 0 {
							t.Errorf("%d protocol bytes %s in class %s", n, dir, cl)
						}
					}
				}
			})
		}
	}
}

func TestQoS0AndKeepAlive(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	cfg, link := env.Device(t, protocols.MQTT, "dev-qos0")
	cfg.QoS = 0
	// Two seconds, not one: the emulator's MQTT server computes 1.5 × the
	// keep-alive in whole seconds, so at one second it allows no slack.
	cfg.KeepAlive = 2 * time.Second
	c := newClient(t, cfg)
	ctx := hubtest.Ctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("fire and forget")}); err != nil {
		t.Fatal(err)
	}
	if err := env.Hub.Store().WaitLen(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// With nothing else to say, the client pings every two seconds.
	hubtest.Eventually(t, "keep-alive traffic", func() bool {
		s := link.Ledger().Snapshot()
		return s.Bytes(network.LayerProtocol, network.Up, network.ClassKeepAlive) >= 2*2 && // two PINGREQs
			s.Bytes(network.LayerProtocol, network.Down, network.ClassKeepAlive) >= 2*2 // and their PINGRESPs
	})
}

func TestX509(t *testing.T) {
	env := hubtest.Start(t, false, nil)
	ca, err := sas.NewAuthority("catmsim test CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	env.Hub.TrustCA(ca.Cert)
	id := iothub.Identity{DeviceID: "dev-x509"}
	if _, err := env.Hub.AddDevice(hub.Registration{Identity: id, Auth: hub.AuthCA, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	cert, err := sas.IssueDevice(ca, id.DeviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := env.Device(t, protocols.MQTT, id.DeviceID)
	cfg.Auth = protocols.Credentials{Certificate: &cert}
	c := newClient(t, cfg)
	ctx := hubtest.Ctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("signed")}); err != nil {
		t.Fatal(err)
	}
	got := env.Hub.Store().For(id)
	if len(got) != 1 || !strings.Contains(got[0].System[iothub.PropConnectionAuth], "x509") {
		t.Fatalf("stored %+v", got)
	}
}

func TestTypedErrors(t *testing.T) {
	t.Run("wrong key is unauthorized", func(t *testing.T) {
		env := hubtest.Start(t, true, nil)
		cfg, _ := env.Device(t, protocols.MQTT, "dev-bad")
		cfg.Auth.Key = []byte("not the device key")
		err := newClient(t, cfg).Connect(hubtest.Ctx(t))
		if !errors.Is(err, protocols.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
	})
	t.Run("expired ready-made token is unauthorized", func(t *testing.T) {
		env := hubtest.Start(t, true, nil)
		cfg, _ := env.Device(t, protocols.MQTT, "dev-expired")
		cfg.Auth = protocols.Credentials{Token: sas.Sign(sas.DeviceResource(hubtest.HostName, "dev-expired", ""), sas.DeriveKey(hubtest.GroupKey, "dev-expired"), "", time.Now().Add(-time.Minute))}
		err := newClient(t, cfg).Connect(hubtest.Ctx(t))
		if !errors.Is(err, protocols.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
	})
	t.Run("oversize is too large and the connection survives", func(t *testing.T) {
		env := hubtest.Start(t, true, nil)
		cfg, _ := env.Device(t, protocols.MQTT, "dev-big")
		c := newClient(t, cfg)
		ctx := hubtest.Ctx(t)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		err := c.SendTelemetry(ctx, &iothub.Message{Body: make([]byte, iothub.MaxD2CSize+1)})
		if !errors.Is(err, protocols.ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
		if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("small")}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("throttled telemetry disconnects", func(t *testing.T) {
		frozen := time.Unix(1_800_000_000, 0)
		q, err := hub.NewQuota(hub.QuotaConfig{Tier: hub.TierS1, Burst: 20 * time.Millisecond, MaxQueue: time.Nanosecond,
			Now: func() time.Time { return frozen }, Sleep: func(d time.Duration) { t.Errorf("the quota delayed a request by %s", d) }})
		if err != nil {
			t.Fatal(err)
		}
		env := hubtest.Start(t, true, func(c *hub.ServerConfig) { c.Hub.Throttler = q })
		cfg, _ := env.Device(t, protocols.MQTT, "dev-throttled")
		c := newClient(t, cfg)
		rec := newRecorder()
		c.OnState(func(connected bool, err error) { rec.states <- state{connected, err} })
		ctx := hubtest.Ctx(t)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		// 100/s with a 20 ms burst admits two sends; the third is refused,
		// which over MQTT means the hub closes the connection.
		for i := range 2 {
			if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("ok")}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		err = c.SendTelemetry(ctx, &iothub.Message{Body: []byte("one too many")})
		if !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("got %v, want ErrDisconnected", err)
		}
		st := next(t, rec.states, "drop report")
		if st.connected || !errors.Is(st.err, protocols.ErrDisconnected) {
			t.Fatalf("state %v %v", st.connected, st.err)
		}
		if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("after")}); !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("send after the drop: %v", err)
		}
		if n := env.Hub.Store().Len(); n != 2 {
			t.Fatalf("store holds %d messages, want 2", n)
		}
	})
	t.Run("twin error carries the hub's status", func(t *testing.T) {
		env := hubtest.Start(t, true, nil)
		cfg, _ := env.Device(t, protocols.MQTT, "dev-twin")
		c := newClient(t, cfg)
		ctx := hubtest.Ctx(t)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := c.PatchReported(ctx, []byte("not json"))
		var pe *protocols.Error
		var he *iothub.Error
		if !errors.As(err, &pe) || !errors.As(err, &he) || he.Code != iothub.CodeArgumentInvalid || pe.Op != "twin patch" {
			t.Fatalf("got %v, want a twin patch error with code %s", err, iothub.CodeArgumentInvalid)
		}
	})
	t.Run("not connected", func(t *testing.T) {
		env := hubtest.Start(t, true, nil)
		cfg, _ := env.Device(t, protocols.MQTT, "dev-idle")
		c := newClient(t, cfg)
		if err := c.SendTelemetry(hubtest.Ctx(t), &iothub.Message{}); !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("got %v, want ErrDisconnected", err)
		}
	})
}

// TestDropIsReportedNotRetried: a second connection of the same device makes
// the hub close the first; the client reports it and waits for Connect.
func TestDropIsReportedNotRetried(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	cfg, link := env.Device(t, protocols.MQTT, "dev-drop")
	c := newClient(t, cfg)
	rec := newRecorder()
	c.OnState(func(connected bool, err error) { rec.states <- state{connected, err} })
	ctx := hubtest.Ctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	other := newClient(t, cfg)
	if err := other.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	st := next(t, rec.states, "drop report")
	if st.connected || !errors.Is(st.err, protocols.ErrDisconnected) {
		t.Fatalf("state %v %v", st.connected, st.err)
	}
	if err := other.Close(ctx); err != nil {
		t.Fatal(err)
	}
	before := link.Ledger().Snapshot()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("back")}); err != nil {
		t.Fatal(err)
	}
	after := link.Ledger().Snapshot()
	// Both clients share the link: three connections, the later two reconnects.
	if n := after.Conns(network.ReasonReconnect) - before.Conns(network.ReasonReconnect); n != 1 {
		t.Fatalf("%d reconnects counted by the Connect after the drop, want 1", n)
	}
	if after.Bytes(network.LayerTLS, network.Up, network.ClassReconnect) <= before.Bytes(network.LayerTLS, network.Up, network.ClassReconnect) {
		t.Fatal("the reconnect's bytes are not counted as reconnect")
	}
}

// TestPersistentSessionKeepsC2D: with CleanSession=0 the hub keeps the
// subscription, and a message queued while the device was away arrives on
// reconnect.
func TestPersistentSessionKeepsC2D(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	cfg, _ := env.Device(t, protocols.MQTT, "dev-persist")
	c := newClient(t, cfg)
	rec := newRecorder()
	c.OnC2D(func(_ context.Context, m *protocols.C2DMessage) protocols.Outcome {
		rec.c2d <- m
		return protocols.Complete
	})
	ctx := hubtest.Ctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Hub.SendC2D("dev-persist", iothub.Message{Body: []byte("while away")}, hub.C2DOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if m := next(t, rec.c2d, "queued C2D"); string(m.Body) != "while away" {
		t.Fatalf("got %q", m.Body)
	}
}

// TestSASRenewal keeps a device connected across three token lifetimes: the
// client reconnects with a new token before each expires, sends never fail,
// the hub sees one reconnect of the same identity per renewal, and the
// ledger counts the renewals' bytes as token renewal. The session is clean,
// so C2D still arrives afterwards only because the client resubscribed.
func TestSASRenewal(t *testing.T) {
	for _, proto := range []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket} {
		t.Run(string(proto), func(t *testing.T) {
			t.Parallel()
			env := hubtest.Start(t, true, nil)
			devID := "dev-renew-" + string(proto)
			id := iothub.Identity{DeviceID: devID}
			cfg, link := env.Device(t, proto, devID)
			// Two-second tokens renewed at half their life: se has one-second
			// resolution, so a token lives 1 to 2 s and the renewal comes at
			// least half a second before expiry, slack enough for a busy
			// machine's timers.
			const ttl = 2 * time.Second
			cfg.Auth.TokenTTL = ttl
			cfg.Auth.RenewAt = 0.5
			cfg.CleanSession = true
			c := newClient(t, cfg)
			rec := newRecorder()
			rec.register(c)
			events, stop := env.Hub.Subscribe(1024)
			defer stop()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			connects, sent := 1, 0
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for connects < 4 || time.Since(start) < 3*ttl {
				select {
				case ev := <-events:
					if ev.Kind == hub.EventConnected && ev.Identity == id && time.Since(start) > 0 {
						connects++
					}
					continue
				case st := <-rec.states:
					t.Fatalf("state change during renewals: %v %v", st.connected, st.err)
				case <-tick.C:
				case <-ctx.Done():
					t.Fatalf("after %s: %d connects, %d sends", time.Since(start), connects, sent)
				}
				if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("tick")}); err != nil {
					t.Fatalf("send %d after %s: %v", sent, time.Since(start), err)
				}
				sent++
			}
			// The first connect was counted before the loop started.
			connects--
			renewals := connects - 1
			if renewals < 3 {
				t.Fatalf("%d renewals in %s", renewals, time.Since(start))
			}
			if n := env.Hub.Store().CountFor(id); n != sent {
				t.Fatalf("hub stored %d messages, device sent %d", n, sent)
			}
			ps := env.Hub.Stats().Protocols[hub.Protocol(proto)]
			if ps.Reconnects < uint64(renewals) {
				t.Fatalf("hub saw %d reconnects for %d renewals", ps.Reconnects, renewals)
			}
			// No token expired under the device: it heard of no state change
			// and every send succeeded. (The hub may still count an expiry of a
			// connection the client had already disconnected, when a loaded
			// machine delays its handling of the DISCONNECT.)
			// Clean session: the client subscribed again after each renewal.
			if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("after renewals")}, hub.C2DOptions{}); err != nil {
				t.Fatal(err)
			}
			if m := next(t, rec.c2d, "C2D after renewals"); string(m.Body) != "after renewals" {
				t.Fatalf("got %q", m.Body)
			}
			s := link.Ledger().Snapshot()
			if n := s.Conns(network.ReasonTokenRenewal); n < uint64(renewals) {
				t.Fatalf("ledger counts %d token-renewal connections, want %d", n, renewals)
			}
			for _, l := range []network.Layer{network.LayerProtocol, network.LayerTLS, network.LayerIP} {
				if s.Bytes(l, network.Up, network.ClassTokenRenewal) == 0 || s.Bytes(l, network.Down, network.ClassTokenRenewal) == 0 {
					t.Fatalf("no %s bytes counted as token renewal", l)
				}
			}
			if s.Conns(network.ReasonReconnect) != 0 {
				t.Fatalf("renewals counted as %d reconnects", s.Conns(network.ReasonReconnect))
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	good, _ := env.Device(t, protocols.MQTT, "dev-v")
	tests := []struct {
		name  string
		mod   func(*protocols.Config)
		field string
	}{
		{"no host", func(c *protocols.Config) { c.HostName = "" }, "HostName"},
		{"no dialer", func(c *protocols.Config) { c.Dialer = nil }, "Dialer"},
		{"bad device id", func(c *protocols.Config) { c.Identity.DeviceID = "a b" }, "Identity.DeviceID"},
		{"qos 2", func(c *protocols.Config) { c.QoS = 2 }, "QoS"},
		{"two credentials", func(c *protocols.Config) { c.Auth.Token = "SharedAccessSignature sr=x" }, "Auth"},
		{"renew at 1", func(c *protocols.Config) { c.Auth.RenewAt = 1 }, "Auth.RenewAt"},
		{"other protocol", func(c *protocols.Config) { c.Protocol = protocols.HTTPS }, "Protocol"},
		{"bad address", func(c *protocols.Config) { c.Address = "nohostport" }, "Address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("got %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestFailedRenewalIsReported: the device's keys are rotated under it, so the
// reconnect that renews its token is refused; the device hears it as
// unauthorized and later sends fail as disconnected, with nothing retried.
func TestFailedRenewalIsReported(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	id := iothub.Identity{DeviceID: "dev-rotated"}
	cfg, link := env.Device(t, protocols.MQTT, id.DeviceID)
	cfg.Auth.TokenTTL, cfg.Auth.RenewAt = 2*time.Second, 0.5
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
	if s := link.Ledger().Snapshot(); s.Conns(network.ReasonTokenRenewal) != 1 {
		n := s.Conns(network.ReasonTokenRenewal)
		t.Fatalf("%d renewal connections, want exactly 1 (no retries)", n)
	}
}
