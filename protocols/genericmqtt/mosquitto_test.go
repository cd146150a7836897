package genericmqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/internal/mosquittotest"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
	"github.com/catmsim/catmsim/sas"
)

func TestMain(m *testing.M) { os.Exit(hubtest.Main(m)) }

// mosquitto is the test broker with this package's helpers.
type mosquitto struct{ *mosquittotest.Broker }

// device is a generic-broker configuration for deviceID with a certificate
// from the broker's CA.
func (b *mosquitto) device(t *testing.T, deviceID string) (protocols.Config, *network.Link) {
	t.Helper()
	cert, err := sas.IssueDevice(b.CA, deviceID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	link := hubtest.NewLink(t, 7)
	return protocols.Config{
		Protocol:  protocols.GenericMQTT,
		Address:   b.Addr,
		Identity:  iothub.Identity{DeviceID: deviceID},
		Auth:      protocols.Credentials{Certificate: &cert},
		TLS:       protocols.TLSOptions{RootCAs: b.Pool},
		Dialer:    &network.Dialer{Link: link},
		QoS:       1,
		TopicUp:   "measures/{device}",
		TopicDown: "ack/{device}",
	}, link
}

// observer is a plain paho client standing in for the cloud application.
func (b *mosquitto) observer(t *testing.T) (paho.Client, chan paho.Message) {
	t.Helper()
	cert, err := sas.IssueDevice(b.CA, "backend", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan paho.Message, 16)
	opts := paho.NewClientOptions().AddBroker("ssl://" + b.Addr).SetClientID("backend").
		SetTLSConfig(&tls.Config{RootCAs: b.Pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- m })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer connect: %v\n%s", tok.Error(), b.Log.String())
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c, msgs
}

func TestMosquittoWithClientCertificates(t *testing.T) {
	b := &mosquitto{mosquittotest.Start(t)}
	observer, seen := b.observer(t)
	if tok := observer.Subscribe("measures/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer subscribe: %v", tok.Error())
	}

	cfg, link := b.device(t, "dev1")
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	got := make(chan *protocols.C2DMessage, 4)
	states := make(chan error, 4)
	c.OnC2D(func(_ context.Context, m *protocols.C2DMessage) protocols.Outcome {
		got <- m
		if string(m.Body) == "reject me" {
			return protocols.Reject
		}
		return protocols.Complete
	})
	c.OnState(func(_ bool, err error) { states <- err })
	ctx := hubtest.Ctx(t)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v\n%s", err, b.Log.String())
	}

	// Up: measures/dev1 reaches the second subscriber.
	body := []byte(`{"temperature":21.5}`)
	if err := c.SendTelemetry(ctx, &iothub.Message{Body: body}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-seen:
		if m.Topic() != "measures/dev1" || string(m.Payload()) != string(body) {
			t.Fatalf("observer got %q %q", m.Topic(), m.Payload())
		}
	case <-ctx.Done():
		t.Fatal("the observer saw nothing")
	}

	// Down: ack/dev1 reaches the C2D handler; a reject is reported as
	// unsupported.
	down := 0
	for _, msg := range []string{"ack 1", "reject me"} {
		if tok := observer.Publish("ack/dev1", 1, false, msg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("observer publish: %v", tok.Error())
		}
		select {
		case m := <-got:
			if string(m.Body) != msg {
				t.Fatalf("C2D handler got %q, want %q", m.Body, msg)
			}
			down += len(msg)
		case <-ctx.Done():
			t.Fatalf("the device did not receive %q", msg)
		}
	}
	select {
	case err := <-states:
		if !errors.Is(err, protocols.ErrUnsupported) {
			t.Fatalf("state report %v, want ErrUnsupported", err)
		}
	case <-ctx.Done():
		t.Fatal("the reject was not reported")
	}

	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s := link.Ledger().Snapshot()
	hubtest.CheckLayers(t, s, network.Up, network.ClassTelemetry, len(body))
	hubtest.CheckLayers(t, s, network.Down, network.ClassC2D, down)
	for _, d := range []network.Direction{network.Up, network.Down} {
		if n := s.Bytes(network.LayerProtocol, d, network.ClassOther); n != 0 {
			t.Errorf("%d protocol bytes %s in class other", n, d)
		}
	}

	t.Run("without a certificate the broker refuses", func(t *testing.T) {
		cfg, link := b.device(t, "dev2")
		cfg.Auth = protocols.Credentials{Username: "dev2", Password: "guess"}
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		err = c.Connect(hubtest.Ctx(t))
		if !errors.Is(err, protocols.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
		if err := c.SendTelemetry(hubtest.Ctx(t), &iothub.Message{Body: []byte("x")}); !errors.Is(err, protocols.ErrDisconnected) {
			t.Fatalf("send without a connection: %v", err)
		}
		if s := link.Ledger().Snapshot(); s.Bytes(network.LayerPayload, network.Up, network.ClassTelemetry) != 0 {
			t.Fatal("payload counted for a refused device")
		}
	})
	t.Run("a certificate from another CA is refused", func(t *testing.T) {
		other, err := sas.NewAuthority("someone else", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := sas.IssueDevice(other, "dev3", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := b.device(t, "dev3")
		cfg.Auth.Certificate = &cert
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if err := c.Connect(hubtest.Ctx(t)); !errors.Is(err, protocols.ErrUnauthorized) {
			t.Fatalf("got %v, want ErrUnauthorized", err)
		}
	})
	select {
	case m := <-seen:
		t.Fatalf("a refused device published %q", m.Payload())
	default:
	}
}

func TestNewValidates(t *testing.T) {
	link := hubtest.NewLink(t, 1)
	cert := tls.Certificate{}
	good := protocols.Config{Address: "127.0.0.1:8883", Identity: iothub.Identity{DeviceID: "d"}, Auth: protocols.Credentials{Certificate: &cert},
		Dialer: &network.Dialer{Link: link}, TopicUp: "measures/{device}", TopicDown: "ack/{device}"}
	if c, err := New(good); err != nil || c.TopicUp() != "measures/d" || c.TopicDown() != "ack/d" {
		t.Fatalf("good config: %v", err)
	}
	for _, tt := range []struct {
		name  string
		mod   func(*protocols.Config)
		field string
	}{
		{"no topic", func(c *protocols.Config) { c.TopicUp = "" }, "TopicUp"},
		{"wildcard from the device id", func(c *protocols.Config) { c.Identity.DeviceID = "a#b" }, "TopicUp"},
		{"wildcard down", func(c *protocols.Config) { c.TopicDown = "ack/+" }, "TopicDown"},
		{"no address", func(c *protocols.Config) { c.Address = "" }, "Address"},
		{"no credentials", func(c *protocols.Config) { c.Auth = protocols.Credentials{} }, "Auth"},
		{"sas key", func(c *protocols.Config) { c.Auth.Key = []byte("k") }, "Auth"},
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
