package eventhubs

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
	"github.com/catmsim/catmsim/sas"
)

func TestMain(m *testing.M) { os.Exit(hubtest.Main(m)) }

const namespace = "catmsim.servicebus.windows.net"

// device is a publisher configured from the emulator's Event Hubs connection
// string for the "send" policy.
func device(t *testing.T, env *hubtest.Env, deviceID string) (protocols.Config, *network.Link) {
	t.Helper()
	s, err := env.Hub.EventHubsConnectionString("send", "telemetry")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := sas.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	key, err := cs.Key()
	if err != nil {
		t.Fatal(err)
	}
	cfg, link := env.Device(t, protocols.EventHubsHTTPS, deviceID)
	cfg.HostName = cs.Namespace()
	cfg.EventHub = cs.EntityPath
	cfg.Auth = protocols.Credentials{Key: key, KeyName: cs.SharedAccessKeyName}
	return cfg, link
}

func start(t *testing.T, inMemory bool) *hubtest.Env {
	return hubtest.Start(t, inMemory, func(c *hub.ServerConfig) {
		c.Hub.EventHubsNamespace = namespace
		c.ExtraNames = []string{namespace}
	})
}

func newClient(t *testing.T, cfg protocols.Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestSendAndBatch(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		env := start(t, inMemory)
		t.Run(env.Name(), func(t *testing.T) {
			id := iothub.Identity{DeviceID: "dev-eh-" + env.Name()}
			cfg, link := device(t, env, id.DeviceID)
			if cfg.HostName != namespace || cfg.EventHub != "telemetry" {
				t.Fatalf("connection string gave %q %q", cfg.HostName, cfg.EventHub)
			}
			c := newClient(t, cfg)
			ctx := hubtest.Ctx(t)
			single := []byte(`{"temperature":21.5}`)
			if err := c.SendTelemetry(ctx, &iothub.Message{Body: single, ContentType: "application/json"}); err != nil {
				t.Fatal(err)
			}
			batch := []*iothub.Message{
				{Body: []byte("one"), MessageID: "b-1", Properties: []iothub.Property{{Name: "Alert", Value: "Strong Wind"}}},
				{Body: []byte("two")},
			}
			if err := c.SendBatch(ctx, batch); err != nil {
				t.Fatal(err)
			}
			got := env.Hub.Store().For(id)
			if len(got) != 3 {
				t.Fatalf("stored %d events, want 3", len(got))
			}
			if string(got[0].Message.Body) != string(single) || got[0].Protocol != hub.EventHubsHTTPS || got[0].Message.ContentType != "application/json" {
				t.Fatalf("single event stored as %+v", got[0])
			}
			if string(got[1].Message.Body) != "one" || got[1].Message.MessageID != "b-1" || string(got[2].Message.Body) != "two" {
				t.Fatalf("batch stored as %+v", got[1:])
			}
			if v, _ := got[1].Message.Get("Alert"); v != "Strong Wind" {
				t.Fatalf("user property Alert = %q", v)
			}
			_ = c.Close(ctx)
			s := link.Ledger().Snapshot()
			hubtest.CheckLayers(t, s, network.Up, network.ClassTelemetry, len(single)+len("one")+len("two"))
			if n := s.Bytes(network.LayerProtocol, network.Up, network.ClassOther); n != 0 {
				t.Errorf("%d protocol bytes in class other", n)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	env := start(t, true)
	tests := []struct {
		name string
		mod  func(*protocols.Config)
		act  func(context.Context, *Client) error
		want error
	}{
		{"wrong key", func(c *protocols.Config) { c.Auth.Key = []byte("wrong") },
			func(ctx context.Context, c *Client) error {
				return c.SendTelemetry(ctx, &iothub.Message{Body: []byte("x")})
			}, protocols.ErrUnauthorized},
		{"unknown policy", func(c *protocols.Config) { c.Auth.KeyName = "listen" },
			func(ctx context.Context, c *Client) error {
				return c.SendTelemetry(ctx, &iothub.Message{Body: []byte("x")})
			}, protocols.ErrUnauthorized},
		{"over 1 MB", nil,
			func(ctx context.Context, c *Client) error {
				return c.SendTelemetry(ctx, &iothub.Message{Body: make([]byte, 1<<20+1)})
			}, protocols.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := device(t, env, "dev-err")
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			if err := tt.act(hubtest.Ctx(t), newClient(t, cfg)); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("binary batch refused before sending", func(t *testing.T) {
		cfg, link := device(t, env, "dev-bin")
		err := newClient(t, cfg).SendBatch(hubtest.Ctx(t), []*iothub.Message{{Body: []byte{0xff, 0xfe}}})
		if err == nil || !strings.Contains(err.Error(), "UTF-8") {
			t.Fatalf("got %v", err)
		}
		if s := link.Ledger().Snapshot(); s.Total(network.LayerIP, network.Up) != 0 {
			t.Fatal("a refused batch went on the wire")
		}
	})
	if n := env.Hub.Store().Len(); n != 0 {
		t.Fatalf("%d events stored", n)
	}
}

func TestNewValidates(t *testing.T) {
	env := start(t, true)
	good, _ := device(t, env, "dev-v")
	for _, tt := range []struct {
		name  string
		mod   func(*protocols.Config)
		field string
	}{
		{"no event hub", func(c *protocols.Config) { c.EventHub = "" }, "EventHub"},
		{"no policy name", func(c *protocols.Config) { c.Auth.KeyName = "" }, "Auth"},
		{"certificate", func(c *protocols.Config) { c.Auth.Certificate = &tls.Certificate{} }, "Auth.Certificate"},
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
