package fleet

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/sas"
	"github.com/catmsim/catmsim/scenarios"
)

// target is where the fleet's devices connect and what the cloud-side drivers
// act on: the embedded emulator, a real IoT Hub, or a generic MQTT broker.
type target struct {
	kind     string
	hostName string
	// addrs is where each protocol's socket goes ("" = HostName on its
	// standard port).
	addrs     map[protocols.Protocol]string
	transport network.DialFunc // nil: kernel sockets
	roots     *x509.CertPool   // nil: the system's
	ehHost    string           // Event Hubs namespace
	ehKey     []byte           // Event Hubs "send" policy key

	// device credentials
	groupKey []byte
	ca       *sas.Authority // for x509 devices

	srv       *hub.Server                                   // embedded only
	provision func(ctx context.Context, ids []string) error // iothub with provision: true
	cloud     cloud                                         // nil: no cloud side (generic brokers)

	topicUp, topicDown string // generic broker
	close              func(context.Context) error
}

// cloud is what the cloud-side drivers and events need from a target.
type cloud interface {
	sendC2D(ctx context.Context, deviceID string, m iothub.Message, ack string, ttl time.Duration) error
	invokeMethod(ctx context.Context, deviceID, name string, payload []byte, timeout time.Duration) (int, error)
	updateDesired(ctx context.Context, deviceID string, patch map[string]any) error
	// disconnectAll drops every device connection, as a hub failover does.
	disconnectAll() error
}

// TargetOptions tune how a target is set up; tests use them.
type TargetOptions struct {
	// RootCAs replaces the system roots for a real hub (a test points the
	// iothub target at the emulator's service API).
	RootCAs *x509.CertPool
	// Address overrides the socket address of a real hub ("host:port").
	Address string
	// Env reads environment variables (os.Getenv by default).
	Env func(string) string
	// Dir is where a run writes files it makes (a generic broker's device CA).
	Dir string
	// HubConfig adjusts the embedded emulator's configuration.
	HubConfig func(*hub.ServerConfig)
	// Hub, when set, is handed the embedded emulator once it has started, so
	// that a test can read what the hub stored.
	Hub func(*hub.Server)
}

func newTarget(ctx context.Context, p *scenarios.Plan, o TargetOptions) (*target, error) {
	if o.Env == nil {
		o.Env = os.Getenv
	}
	switch p.Target.Kind {
	case "", "embedded":
		return embeddedTarget(ctx, p, o)
	case "iothub":
		return iothubTarget(p, o)
	case "mqtt":
		return brokerTarget(p, o)
	}
	return nil, fmt.Errorf("unknown target kind %q", p.Target.Kind)
}

// deriveKey makes a per-run secret from the scenario seed, so that the same
// seed gives the same device keys.
func deriveKey(seed uint64, label string) []byte {
	m := hmac.New(sha256.New, []byte("catmsim run key"))
	m.Write([]byte(strconv.FormatUint(seed, 10) + ":" + label))
	return m.Sum(nil)
}

func embeddedTarget(ctx context.Context, p *scenarios.Plan, o TargetOptions) (*target, error) {
	t := &target{kind: "embedded", hostName: p.Target.HostName, groupKey: deriveKey(p.Seed, "group"), addrs: map[protocols.Protocol]string{}}
	if t.hostName == "" {
		t.hostName = "catmsim.azure-devices.net"
	}
	cfg := hub.ServerConfig{
		Hub:         hub.Config{HostName: t.hostName, GroupKey: t.groupKey},
		MetricsPort: -1,
	}
	if p.Target.Tier != "" {
		tier, err := hub.ParseTier(p.Target.Tier)
		if err != nil {
			return nil, err
		}
		q, err := hub.NewQuota(hub.QuotaConfig{Tier: tier, Units: max(p.Target.Units, 1)})
		if err != nil {
			return nil, err
		}
		cfg.Hub.Throttler = q
	}
	memory := p.Target.Transport != "tcp"
	if memory {
		cfg.InMemory = true
		cfg.MQTTPort, cfg.HTTPSPort, cfg.AMQPPort = -1, -1, -1
	}
	if o.HubConfig != nil {
		o.HubConfig(&cfg)
	}
	srv, err := hub.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded hub: %w", err)
	}
	h := srv.Hub
	if o.Hub != nil {
		o.Hub(srv)
	}
	t.srv, t.cloud, t.roots = srv, embeddedCloud{srv.Hub}, srv.Chain().CertPool()
	t.ehHost = "catmsim.servicebus.windows.net"
	if cs, err := h.EventHubsConnectionString("send", "x"); err == nil {
		if c, err := sas.Parse(cs); err == nil {
			t.ehHost = c.Namespace()
			t.ehKey, _ = c.Key()
		}
	}
	if memory {
		// Clients address the hub by name on its standard ports; the port
		// says which in-memory listener the connection goes to.
		listeners := map[int]string{protocols.PortMQTT: "mqtt", protocols.PortAMQP: "amqp", protocols.PortHTTPS: "https"}
		t.transport = func(ctx context.Context, _, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			n, _ := strconv.Atoi(port)
			name, ok := listeners[n]
			if !ok {
				return nil, fmt.Errorf("the embedded hub has no listener on port %s", port)
			}
			return srv.Dial(ctx, name)
		}
	} else {
		lo := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
		for _, pr := range []protocols.Protocol{protocols.MQTT} {
			t.addrs[pr] = lo(srv.MQTTPort())
		}
		for _, pr := range []protocols.Protocol{protocols.AMQP} {
			t.addrs[pr] = lo(srv.AMQPPort())
		}
		for _, pr := range []protocols.Protocol{protocols.MQTTWebSocket, protocols.AMQPWebSocket, protocols.HTTPS, protocols.EventHubsHTTPS} {
			t.addrs[pr] = lo(srv.HTTPSPort())
		}
	}
	if needsX509(p) {
		ca, err := sas.NewAuthority("catmsim fleet device CA", time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour))
		if err != nil {
			return nil, err
		}
		t.ca = ca
		h.TrustCA(ca.Cert)
	}
	t.close = func(ctx context.Context) error { return srv.Close(ctx) }
	return t, nil
}

func needsX509(p *scenarios.Plan) bool {
	for _, pr := range p.Profiles {
		if pr.Auth == "x509" {
			return true
		}
	}
	return false
}

// register makes sure the embedded hub knows a device before it connects: X.509
// devices against the run's CA, key devices with their derived keys. A real
// hub's devices were provisioned before the run.
func (t *target) register(id string, auth string) error {
	if t.srv == nil || auth == "none" {
		return nil
	}
	// Every device is in the registry before the run, as on a provisioned
	// hub, so the cloud side can address devices that have not connected yet.
	reg := hub.Registration{Identity: iothub.Identity{DeviceID: id}, Auth: hub.AuthCA, Enabled: true}
	if auth != "x509" {
		k := sas.DeriveKey(t.groupKey, id)
		reg.Auth, reg.Keys = hub.AuthSAS, [2][]byte{k, k}
	}
	_, err := t.srv.Hub.AddDevice(reg)
	if err != nil && !errors.Is(err, &iothub.Error{Code: iothub.CodeDeviceAlreadyExists}) {
		return err
	}
	return nil
}

// credentials are a device's: its derived key, or a certificate from the run's
// CA.
func (t *target) credentials(id, auth string) (protocols.Credentials, error) {
	switch auth {
	case "x509":
		if t.ca == nil {
			return protocols.Credentials{}, errors.New("x509 devices need a CA and the target has none")
		}
		cert, err := sas.IssueDevice(t.ca, id, time.Now().Add(-time.Hour), time.Now().Add(30*24*time.Hour))
		if err != nil {
			return protocols.Credentials{}, err
		}
		return protocols.Credentials{Certificate: &cert}, nil
	case "none":
		return protocols.Credentials{}, nil
	}
	return protocols.Credentials{Key: sas.DeriveKey(t.groupKey, id)}, nil
}

// stored is how many messages the embedded hub accepted from a device, for
// the delivery check; ok is false when the target cannot tell.
func (t *target) stored(id string) (int, bool) {
	if t.srv == nil {
		return 0, false
	}
	return t.srv.Hub.Store().CountFor(iothub.Identity{DeviceID: id}), true
}

type embeddedCloud struct{ h *hub.Hub }

func (c embeddedCloud) sendC2D(_ context.Context, id string, m iothub.Message, ack string, ttl time.Duration) error {
	_, err := c.h.SendC2D(id, m, hub.C2DOptions{Ack: ack, TTL: ttl})
	return err
}

func (c embeddedCloud) invokeMethod(ctx context.Context, id, name string, payload []byte, timeout time.Duration) (int, error) {
	r, err := c.h.InvokeMethod(ctx, iothub.Identity{DeviceID: id}, name, payload, timeout, 0)
	return r.Status, err
}

func (c embeddedCloud) updateDesired(_ context.Context, id string, patch map[string]any) error {
	_, err := c.h.UpdateDesired(iothub.Identity{DeviceID: id}, patch)
	return err
}

func (c embeddedCloud) disconnectAll() error {
	c.h.DisconnectAll(iothub.Errorf(iothub.CodeServiceUnavailable, "the hub restarted"))
	return nil
}

// brokerTarget is a generic MQTT broker: devices publish to topic templates
// and authenticate with certificates from the scenario's CA, or from one the
// run makes and writes beside the report.
func brokerTarget(p *scenarios.Plan, o TargetOptions) (*target, error) {
	u, err := url.Parse(p.Target.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("target.broker %q is not a broker URL such as mqtts://broker.example.com:8883", p.Target.Broker)
	}
	t := &target{kind: "mqtt", hostName: u.Hostname(), addrs: map[protocols.Protocol]string{}, topicUp: p.Target.TopicUp, topicDown: p.Target.TopicDown}
	port := u.Port()
	if port == "" {
		port = "8883"
	}
	t.addrs[protocols.GenericMQTT] = net.JoinHostPort(u.Hostname(), port)
	if p.Target.CAFile != "" {
		b, err := os.ReadFile(p.Target.CAFile)
		if err != nil {
			return nil, fmt.Errorf("target.ca_file: %w", err)
		}
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("target.ca_file %s holds no PEM certificate", p.Target.CAFile)
		}
	}
	if needsX509(p) {
		if p.Target.ClientCACert != "" {
			ca, err := loadAuthority(p.Target.ClientCACert, p.Target.ClientCAKey)
			if err != nil {
				return nil, err
			}
			t.ca = ca
		} else {
			ca, err := sas.NewAuthority("catmsim device CA", time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
			if err != nil {
				return nil, err
			}
			t.ca = ca
			if o.Dir != "" {
				if err := os.MkdirAll(o.Dir, 0o755); err == nil {
					_ = os.WriteFile(filepath.Join(o.Dir, "device-ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644)
				}
			}
		}
	}
	t.close = func(context.Context) error { return nil }
	return t, nil
}

func loadAuthority(certFile, keyFile string) (*sas.Authority, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("target.client_ca_cert/client_ca_key: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	k, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("target.client_ca_key must be an ECDSA private key (devices' certificates are issued with ECDSA P-256)")
	}
	return &sas.Authority{Cert: cert, Key: k}, nil
}
