package https

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
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

func TestMain(m *testing.M) { os.Exit(hubtest.Main(m)) }

func newClient(t *testing.T, cfg protocols.Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// TestEveryOperation sends, batch-sends, polls and settles against the
// emulator, kept alive and with a new connection per request, over loopback
// TCP and in memory, and checks the hub's store and stats and the ledger.
func TestEveryOperation(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		env := hubtest.Start(t, inMemory, nil)
		for _, perRequest := range []bool{false, true} {
			name := env.Name() + "/keepalive"
			if perRequest {
				name = env.Name() + "/per-request"
			}
			t.Run(name, func(t *testing.T) {
				devID := strings.ReplaceAll("dev-"+name, "/", "-")
				id := iothub.Identity{DeviceID: devID}
				cfg, link := env.Device(t, protocols.HTTPS, devID)
				cfg.NewConnectionPerRequest = perRequest
				c := newClient(t, cfg)
				ctx := hubtest.Ctx(t)
				if err := c.Connect(ctx); err != nil {
					t.Fatal(err)
				}
				requests := 0

				body := []byte(`{"temperature":21.5}`)
				if err := c.SendTelemetry(ctx, &iothub.Message{Body: body, MessageID: "m-1", ContentType: "application/json",
					Properties: []iothub.Property{{Name: "alert", Value: "yes"}}}); err != nil {
					t.Fatal(err)
				}
				requests++
				batch := []*iothub.Message{
					{Body: []byte{0, 1, 2, 0xff}, MessageID: "b-1"},
					{Body: []byte("second"), Properties: []iothub.Property{{Name: "n", Value: "2"}}},
					{Body: []byte("third")},
				}
				if err := c.SendBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
				requests++
				got := env.Hub.Store().For(id)
				if len(got) != 4 {
					t.Fatalf("stored %d messages, want 4", len(got))
				}
				if string(got[0].Message.Body) != string(body) || got[0].Message.MessageID != "m-1" || got[0].Message.ContentType != "application/json" || got[0].Protocol != hub.HTTPS {
					t.Fatalf("single send stored as %+v", got[0])
				}
				if v, _ := got[0].Message.Get("alert"); v != "yes" {
					t.Fatalf("property alert = %q", v)
				}
				for i, m := range batch {
					if string(got[i+1].Message.Body) != string(m.Body) {
						t.Fatalf("batch message %d stored as %q", i, got[i+1].Message.Body)
					}
				}
				if got[1].Message.MessageID != "b-1" {
					t.Fatalf("batch message id %q", got[1].Message.MessageID)
				}
				if v, _ := got[2].Message.Get("n"); v != "2" {
					t.Fatalf("batch property n = %q", v)
				}

				// Nothing waiting.
				m, err := c.PollC2D(ctx)
				if err != nil || m != nil {
					t.Fatalf("empty poll: %+v %v", m, err)
				}
				requests++

				// Abandon, then receive again and reject; a second message is completed.
				if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("cmd-1"), MessageID: "c-1", Properties: []iothub.Property{{Name: "k", Value: "v"}}}, hub.C2DOptions{Ack: "full"}); err != nil {
					t.Fatal(err)
				}
				c2dBytes := 0
				poll := func() *protocols.C2DMessage {
					t.Helper()
					m, err := c.PollC2D(ctx)
					requests++
					if err != nil || m == nil {
						t.Fatalf("poll: %+v %v", m, err)
					}
					c2dBytes += len(m.Body)
					return m
				}
				settle := func(m *protocols.C2DMessage, o protocols.Outcome) {
					t.Helper()
					if err := c.SettleC2D(ctx, m.LockToken, o); err != nil {
						t.Fatalf("%s: %v", o, err)
					}
					requests++
				}
				m = poll()
				if string(m.Body) != "cmd-1" || m.MessageID != "c-1" || m.DeliveryCount != 0 || m.LockToken == "" || m.Enqueued.IsZero() {
					t.Fatalf("received %+v", m)
				}
				if v, _ := m.Get("k"); v != "v" {
					t.Fatalf("C2D property k = %q", v)
				}
				if v, _ := m.Get(iothub.PropAck); v != "full" {
					t.Fatalf("iothub-ack = %q", v)
				}
				settle(m, protocols.Abandon)
				m = poll()
				if m.DeliveryCount != 1 || string(m.Body) != "cmd-1" {
					t.Fatalf("redelivered %+v", m)
				}
				settle(m, protocols.Reject)
				if _, err := env.Hub.SendC2D(devID, iothub.Message{Body: []byte("cmd-2")}, hub.C2DOptions{}); err != nil {
					t.Fatal(err)
				}
				settle(poll(), protocols.Complete)
				if pending := env.Hub.C2DPending(devID); pending != 0 {
					t.Fatalf("%d C2D messages still pending", pending)
				}
				st := env.Hub.Stats().C2D
				if st["abandoned"] < 1 || st["rejected"] < 1 || st["completed"] < 1 {
					t.Fatalf("C2D stats %v", st)
				}

				if err := c.Close(ctx); err != nil {
					t.Fatal(err)
				}
				s := link.Ledger().Snapshot()
				payload := len(body)
				for _, m := range batch {
					payload += len(m.Body)
				}
				hubtest.CheckLayers(t, s, network.Up, network.ClassTelemetry, payload)
				hubtest.CheckLayers(t, s, network.Down, network.ClassC2D, c2dBytes)
				wantConns := uint64(1)
				if perRequest {
					wantConns = uint64(requests)
				}
				if n := s.Conns(network.ReasonInitial); n != wantConns {
					t.Errorf("%d connections counted as initial, want %d", n, wantConns)
				}
				if n := s.Conns(network.ReasonReconnect); n != 0 {
					t.Errorf("%d connections counted as reconnects", n)
				}
				if s.Bytes(network.LayerTLS, network.Up, network.ClassConnect) == 0 {
					t.Error("no connect bytes")
				}
				for _, dir := range []network.Direction{network.Up, network.Down} {
					if n := s.Bytes(network.LayerProtocol, dir, network.ClassOther); n != 0 {
						t.Errorf("%d protocol bytes %s in class other", n, dir)
					}
				}
			})
		}
	}
}

// TestNewConnectionCostsMore compares the connect bytes of the two modes for
// the same ten sends.
func TestNewConnectionCostsMore(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	tlsConnect := map[bool]uint64{}
	for _, perRequest := range []bool{false, true} {
		cfg, link := env.Device(t, protocols.HTTPS, "dev-cost")
		cfg.NewConnectionPerRequest = perRequest
		c := newClient(t, cfg)
		for range 10 {
			if err := c.SendTelemetry(hubtest.Ctx(t), &iothub.Message{Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.Close(context.Background())
		s := link.Ledger().Snapshot()
		tlsConnect[perRequest] = s.Bytes(network.LayerTLS, network.Up, network.ClassConnect) + s.Bytes(network.LayerTLS, network.Down, network.ClassConnect)
	}
	if tlsConnect[true] < 5*tlsConnect[false] {
		t.Fatalf("connect bytes: %d kept alive, %d with a connection per request", tlsConnect[false], tlsConnect[true])
	}
}

func TestX509(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	id := iothub.Identity{DeviceID: "dev-x509"}
	cert, err := sas.IssueDevice(nil, id.DeviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Hub.AddDevice(hub.Registration{Identity: id, Auth: hub.AuthSelfSigned, Thumbprints: [2]string{sas.Thumbprint(cert.Leaf)}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := env.Device(t, protocols.HTTPS, id.DeviceID)
	cfg.Auth = protocols.Credentials{Certificate: &cert}
	c := newClient(t, cfg)
	if err := c.SendTelemetry(hubtest.Ctx(t), &iothub.Message{Body: []byte("signed")}); err != nil {
		t.Fatal(err)
	}
	if got := env.Hub.Store().For(id); len(got) != 1 || !strings.Contains(got[0].System[iothub.PropConnectionAuth], "x509") {
		t.Fatalf("stored %+v", got)
	}
}

func TestTypedErrors(t *testing.T) {
	frozen := time.Unix(1_800_000_000, 0)
	q, err := hub.NewQuota(hub.QuotaConfig{Tier: hub.TierS1, Burst: 20 * time.Millisecond, MaxQueue: time.Nanosecond,
		Now: func() time.Time { return frozen }, Sleep: func(d time.Duration) { t.Errorf("the quota delayed a request by %s", d) }})
	if err != nil {
		t.Fatal(err)
	}
	throttled := hubtest.Start(t, true, func(c *hub.ServerConfig) { c.Hub.Throttler = q })
	env := hubtest.Start(t, true, nil)
	expiredToken := sas.Sign(sas.DeviceResource(hubtest.HostName, "dev-e", ""), sas.DeriveKey(hubtest.GroupKey, "dev-e"), "", time.Now().Add(-time.Minute))
	tests := []struct {
		name string
		env  *hubtest.Env
		mod  func(*protocols.Config)
		act  func(ctx context.Context, c *Client) error
		want error
		code iothub.ErrorCode
	}{
		{"wrong key", env, func(c *protocols.Config) { c.Auth.Key = []byte("wrong") },
			func(ctx context.Context, c *Client) error {
				return c.SendTelemetry(ctx, &iothub.Message{Body: []byte("x")})
			},
			protocols.ErrUnauthorized, iothub.CodeUnauthorized},
		{"expired token", env, func(c *protocols.Config) { c.Auth = protocols.Credentials{Token: expiredToken} },
			func(ctx context.Context, c *Client) error { _, err := c.PollC2D(ctx); return err },
			protocols.ErrUnauthorized, iothub.CodeUnauthorized},
		{"oversize", env, nil,
			func(ctx context.Context, c *Client) error {
				return c.SendTelemetry(ctx, &iothub.Message{Body: make([]byte, iothub.MaxD2CSize+1)})
			},
			protocols.ErrTooLarge, iothub.CodeMessageTooLarge},
		{"oversize batch", env, nil,
			func(ctx context.Context, c *Client) error {
				return c.SendBatch(ctx, []*iothub.Message{{Body: make([]byte, iothub.MaxD2CSize/2)}, {Body: make([]byte, iothub.MaxD2CSize/2+1)}})
			},
			protocols.ErrTooLarge, iothub.CodeMessageTooLarge},
		{"throttled", throttled, nil,
			func(ctx context.Context, c *Client) error {
				// 100/s with a 20 ms burst admits two sends.
				for range 2 {
					if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte("ok")}); err != nil {
						return err
					}
				}
				return c.SendTelemetry(ctx, &iothub.Message{Body: []byte("one too many")})
			},
			protocols.ErrThrottled, iothub.CodeThrottled},
		{"settle an unknown lock", env, nil,
			func(ctx context.Context, c *Client) error {
				return c.SettleC2D(ctx, "00000000-0000-0000-0000-000000000000", protocols.Complete)
			},
			nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devID := "dev-e"
			cfg, _ := tt.env.Device(t, protocols.HTTPS, devID)
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			err := tt.act(hubtest.Ctx(t), newClient(t, cfg))
			var pe *protocols.Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *protocols.Error", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v (kind %s), want %v", err, pe.Kind, tt.want)
			}
			if tt.code != "" {
				var he *iothub.Error
				if !errors.As(err, &he) || he.Code != tt.code {
					t.Fatalf("got %v, want hub code %s", err, tt.code)
				}
			}
		})
	}
	if n := q.ThrottleStats().Throttled; n != 1 {
		t.Fatalf("the quota refused %d requests, want 1", n)
	}
}

func TestNewValidates(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	good, _ := env.Device(t, protocols.HTTPS, "dev-v")
	for _, tt := range []struct {
		name  string
		mod   func(*protocols.Config)
		field string
	}{
		{"no credentials", func(c *protocols.Config) { c.Auth = protocols.Credentials{} }, "Auth"},
		{"mqtt", func(c *protocols.Config) { c.Protocol = protocols.MQTT }, "Protocol"},
		{"no host", func(c *protocols.Config) { c.HostName = "" }, "HostName"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("got %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

// TestTLSOptions: the TLS choices devices vary reach the wire. Resumption
// saves the certificate chain on every connection after the first; TLS 1.2
// and 1.3 both work against the hub.
func TestTLSOptions(t *testing.T) {
	env := hubtest.Start(t, true, nil)
	connectDown := map[bool]uint64{}
	for _, resume := range []bool{false, true} {
		cfg, link := env.Device(t, protocols.HTTPS, "dev-tls")
		cfg.NewConnectionPerRequest = true
		cfg.TLS.Resumption = resume
		c := newClient(t, cfg)
		for range 5 {
			if err := c.SendTelemetry(hubtest.Ctx(t), &iothub.Message{Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		s := link.Ledger().Snapshot()
		connectDown[resume] = s.Bytes(network.LayerTLS, network.Down, network.ClassConnect)
	}
	// Four of five handshakes resumed: well under half the bytes.
	if connectDown[true]*2 > connectDown[false] {
		t.Fatalf("handshake bytes down: %d without resumption, %d with", connectDown[false], connectDown[true])
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cfg, _ := env.Device(t, protocols.HTTPS, "dev-tls")
			cfg.TLS.MinVersion, cfg.TLS.MaxVersion = v, v
			if err := newClient(t, cfg).SendTelemetry(hubtest.Ctx(t), &iothub.Message{Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
