package amqp

import (
	"context"
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

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	token := func(id string, exp time.Time) string {
		return sas.Sign(sas.DeviceResource(hubtest.HostName, id, ""), sas.DeriveKey(hubtest.GroupKey, id), "", exp)
	}
	connectTests := []struct {
		name string
		mod  func(*protocols.Config)
		want error
	}{
		{"wrong key by CBS", func(c *protocols.Config) { c.Auth.Key = []byte("not the device key") }, protocols.ErrUnauthorized},
		{"wrong key by SASL PLAIN", func(c *protocols.Config) {
			c.Auth.Key, c.AMQPAuth = []byte("not the device key"), protocols.AMQPAuthPlain
		}, protocols.ErrUnauthorized},
		{"expired ready-made token", func(c *protocols.Config) {
			c.Auth = protocols.Credentials{Token: token(c.Identity.DeviceID, time.Now().Add(-time.Minute))}
		}, protocols.ErrUnauthorized},
		{"token of another device", func(c *protocols.Config) {
			c.Auth = protocols.Credentials{Token: token("someone-else", time.Now().Add(time.Hour))}
		}, protocols.ErrUnauthorized},
	}
	for _, tt := range connectTests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, link := device(t, env, protocols.AMQP, "dev-"+strings.ReplaceAll(tt.name, " ", "-"))
			tt.mod(&cfg)
			err := newClient(t, cfg).Connect(hubtest.Ctx(t))
			var pe *protocols.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &pe) || pe.Op != "connect" {
				t.Fatalf("got %v, want a connect error matching %v", err, tt.want)
			}
			s := link.Ledger().Snapshot()
			if n := s.Conns(network.ReasonInitial) + s.Conns(network.ReasonReconnect); n != 1 {
				t.Fatalf("%d connections for one refused Connect: something retried", n)
			}
		})
	}

	t.Run("oversize is too large and the connection stays", func(t *testing.T) {
		cfg, _ := device(t, env, protocols.AMQP, "dev-big")
		c := newClient(t, cfg)
		rec := newRecorder()
		c.OnState(func(connected bool, err error) { rec.states <- state{connected, err} })
		ctx := hubtest.Ctx(t)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		err := c.SendTelemetry(ctx, &iothub.Message{Body: make([]byte, iothub.MaxD2CSize+1)})
		var he *iothub.Error
		if !errors.Is(err, protocols.ErrTooLarge) || !errors.As(err, &he) || he.Code != iothub.CodeMessageTooLarge {
			t.Fatalf("got %v, want ErrTooLarge with code %s", err, iothub.CodeMessageTooLarge)
		}
		err = c.SendBatch(ctx, []*iothub.Message{{Body: make([]byte, 200<<10)}, {Body: make([]byte, 100<<10)}})
		if !errors.Is(err, protocols.ErrTooLarge) {
			t.Fatalf("batch: got %v, want ErrTooLarge", err)
		}
		if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("small")}); err != nil {
			t.Fatal(err)
		}
		if n := env.Hub.Store().CountFor(iothub.Identity{DeviceID: "dev-big"}); n != 1 {
			t.Fatalf("stored %d messages, want only the small one", n)
		}
		quiet(t, rec)
	})

	t.Run("twin error carries the hub's status", func(t *testing.T) {
		cfg, _ := device(t, env, protocols.AMQP, "dev-twin")
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
		// The connection survives an error answer.
		if _, err := c.GetTwin(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("not connected", func(t *testing.T) {
		cfg, _ := device(t, env, protocols.AMQP, "dev-idle")
		c := newClient(t, cfg)
		ctx := hubtest.Ctx(t)
		if err := c.SendTelemetry(ctx, &iothub.Message{}); !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("send: got %v, want ErrDisconnected", err)
		}
		if _, err := c.GetTwin(ctx); !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("twin: got %v, want ErrDisconnected", err)
		}
	})

	t.Run("deadline is a timeout", func(t *testing.T) {
		cfg, _ := device(t, env, protocols.AMQP, "dev-deadline")
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		if err := newClient(t, cfg).Connect(ctx); !errors.Is(err, protocols.ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
	})

	t.Run("module with a C2D handler is unsupported", func(t *testing.T) {
		cfg, _ := device(t, env, protocols.AMQP, "dev-mod")
		cfg.Identity.ModuleID = "m1"
		c := newClient(t, cfg)
		c.OnC2D(func(context.Context, *protocols.C2DMessage) protocols.Outcome { return protocols.Complete })
		if err := c.Connect(hubtest.Ctx(t)); !errors.Is(err, protocols.ErrUnsupported) {
			t.Fatalf("got %v, want ErrUnsupported", err)
		}
	})
}

// TestThrottled: with the hub's quota on a frozen clock, two sends pass and
// the third is rejected as throttled; over AMQP the rejection is per message,
// so the connection stays and nothing is retried.
func TestThrottled(t *testing.T) {
	t.Parallel()
	for _, proto := range []protocols.Protocol{protocols.AMQP, protocols.AMQPWebSocket} {
		t.Run(string(proto), func(t *testing.T) {
			// The quota is the hub's, so each transport gets a hub of its own.
			frozen := time.Unix(1_800_000_000, 0)
			q, err := hub.NewQuota(hub.QuotaConfig{Tier: hub.TierS1, Burst: 20 * time.Millisecond, MaxQueue: time.Nanosecond,
				Now: func() time.Time { return frozen }, Sleep: func(d time.Duration) { t.Errorf("the quota delayed a request by %s", d) }})
			if err != nil {
				t.Fatal(err)
			}
			env := hubtest.Start(t, true, func(c *hub.ServerConfig) { c.Hub.Throttler = q })
			id := iothub.Identity{DeviceID: "dev-throttled-" + string(proto)}
			cfg, _ := device(t, env, proto, id.DeviceID)
			c := newClient(t, cfg)
			rec := newRecorder()
			c.OnState(func(connected bool, err error) { rec.states <- state{connected, err} })
			ctx := hubtest.Ctx(t)
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			// 100/s with a 20 ms burst admits two sends.
			for i := range 2 {
				if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("ok")}); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			err = c.SendTelemetry(ctx, &iothub.Message{Body: []byte("one too many")})
			var he *iothub.Error
			if !errors.Is(err, protocols.ErrThrottled) || !errors.As(err, &he) || he.Code != iothub.CodeThrottled {
				t.Fatalf("got %v, want ErrThrottled", err)
			}
			if n := env.Hub.Store().CountFor(id); n != 2 {
				t.Fatalf("store holds %d messages, want 2", n)
			}
			if !env.Hub.Connected(id) {
				t.Fatal("a throttled send disconnected the device")
			}
			quiet(t, rec)
		})
	}
}

// TestTokenExpiresMidConnection: a ready-made token cannot be renewed; when
// it expires the hub detaches the device's links with unauthorized-access.
// A device with a receiver hears it through OnState; one that only sends
// learns it from its next send. Either way the error says unauthorized, the
// client is disconnected, and nothing reconnects.
func TestTokenExpiresMidConnection(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	for _, withReceiver := range []bool{true, false} {
		name := map[bool]string{true: "receiver", false: "sender only"}[withReceiver]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id := iothub.Identity{DeviceID: "dev-expiring-" + strings.ReplaceAll(name, " ", "-")}
			cfg, link := device(t, env, protocols.AMQP, id.DeviceID)
			// se is in whole seconds: the token lives 1 to 2 s.
			cfg.Auth = protocols.Credentials{Token: sas.Sign(sas.DeviceResource(hubtest.HostName, id.DeviceID, ""),
				sas.DeriveKey(hubtest.GroupKey, id.DeviceID), "", time.Now().Add(2*time.Second))}
			c := newClient(t, cfg)
			rec := newRecorder()
			if withReceiver {
				c.OnMethod(func(context.Context, string, []byte) (int, []byte) { return 200, nil })
			}
			c.OnState(func(connected bool, err error) { rec.states <- state{connected, err} })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("before")}); err != nil {
				t.Fatal(err)
			}
			hubtest.WaitFor(t, env.Hub, "the token to expire", func() bool { return !env.Hub.Connected(id) })
			if withReceiver {
				st := next(t, rec.states, "expiry report")
				if st.connected || !errors.Is(st.err, protocols.ErrUnauthorized) {
					t.Fatalf("state %v %v, want disconnected and unauthorized", st.connected, st.err)
				}
				if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("after")}); !errors.Is(err, protocols.ErrDisconnected) {
					t.Fatalf("send after the report: %v, want ErrDisconnected", err)
				}
			} else {
				err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("after")})
				if !errors.Is(err, protocols.ErrUnauthorized) {
					t.Fatalf("send after expiry: %v, want ErrUnauthorized", err)
				}
				st := next(t, rec.states, "expiry report")
				if st.connected || !errors.Is(st.err, protocols.ErrUnauthorized) {
					t.Fatalf("state %v %v, want disconnected and unauthorized", st.connected, st.err)
				}
			}
			if n := env.Hub.Store().CountFor(id); n != 1 {
				t.Fatalf("stored %d messages, want 1", n)
			}
			s := link.Ledger().Snapshot()
			if s.Conns(network.ReasonReconnect) != 0 || s.Conns(network.ReasonTokenRenewal) != 0 {
				t.Fatal("the client reconnected on its own")
			}
		})
	}
}

// TestDropIsReportedNotRetried: a second connection of the same device makes
// the hub detach the first one's links as stolen; the client reports it and
// waits for Connect, which the ledger counts as a reconnect.
func TestDropIsReportedNotRetried(t *testing.T) {
	t.Parallel()
	env := hubtest.Start(t, true, nil)
	for _, proto := range []protocols.Protocol{protocols.AMQP, protocols.AMQPWebSocket} {
		t.Run(string(proto), func(t *testing.T) {
			cfg, link := device(t, env, proto, "dev-drop-"+string(proto))
			c := newClient(t, cfg)
			rec := newRecorder()
			rec.register(c)
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
				t.Fatalf("state %v %v, want disconnected", st.connected, st.err)
			}
			if err := other.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("lost")}); !errors.Is(err, protocols.ErrDisconnected) {
				t.Fatalf("send after the drop: %v", err)
			}
			before := link.Ledger().Snapshot()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("back")}); err != nil {
				t.Fatal(err)
			}
			after := link.Ledger().Snapshot()
			// Both clients share the link: three connections, the later two
			// reconnects.
			if n := after.Conns(network.ReasonReconnect) - before.Conns(network.ReasonReconnect); n != 1 {
				t.Fatalf("%d reconnects counted by the Connect after the drop, want 1", n)
			}
			if after.Bytes(network.LayerTLS, network.Up, network.ClassReconnect) <= before.Bytes(network.LayerTLS, network.Up, network.ClassReconnect) {
				t.Fatal("the reconnect's bytes are not counted as reconnect")
			}
			quiet(t, rec)
		})
	}
}

func TestNewValidates(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	good, _ := device(t, env, protocols.AMQP, "dev-v")
	tests := []struct {
		name  string
		mod   func(*protocols.Config)
		field string
	}{
		{"no host", func(c *protocols.Config) { c.HostName = "" }, "HostName"},
		{"no dialer", func(c *protocols.Config) { c.Dialer = nil }, "Dialer"},
		{"bad device id", func(c *protocols.Config) { c.Identity.DeviceID = "a b" }, "Identity.DeviceID"},
		{"two credentials", func(c *protocols.Config) { c.Auth.Token = "SharedAccessSignature sr=x" }, "Auth"},
		{"renew at 1", func(c *protocols.Config) { c.Auth.RenewAt = 1 }, "Auth.RenewAt"},
		{"other protocol", func(c *protocols.Config) { c.Protocol = protocols.MQTT }, "Protocol"},
		{"bad address", func(c *protocols.Config) { c.Address = "nohostport" }, "Address"},
		{"unknown auth", func(c *protocols.Config) { c.AMQPAuth = "kerberos" }, "AMQPAuth"},
		{"external without a certificate", func(c *protocols.Config) { c.AMQPAuth = protocols.AMQPAuthExternal }, "AMQPAuth"},
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
	if _, err := New(good); err != nil {
		t.Fatalf("the good configuration: %v", err)
	}
}
