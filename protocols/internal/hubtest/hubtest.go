// Package hubtest owns the test fixture the protocol clients share: the
// embedded IoT Hub emulator on loopback or in memory, and devices whose
// configuration dials it over a fast modelled link. Only tests import it.
package hubtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/sas"
)

// HostName is the emulated hub's name.
const HostName = "test.azure-devices.net"

// GroupKey derives every device's key.
var GroupKey = []byte("0123456789abcdef0123456789abcdef")

// Env is a running emulator.
type Env struct {
	Server *hub.Server
	Hub    *hub.Hub
	// InMemory says devices dial the emulator's in-memory listeners.
	InMemory bool
}

// Start starts the emulator on loopback, or only in memory, and stops it when
// the test ends.
func Start(t testing.TB, inMemory bool, mod func(*hub.ServerConfig)) *Env {
	t.Helper()
	cfg := hub.ServerConfig{Hub: hub.Config{HostName: HostName, GroupKey: GroupKey, KeepBodies: true, PerDeviceStats: true}, MetricsPort: -1, InMemory: inMemory}
	if inMemory {
		cfg.MQTTPort, cfg.HTTPSPort = -1, -1
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := hub.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("closing the emulator: %v", err)
		}
	})
	return &Env{Server: s, Hub: s.Hub, InMemory: inMemory}
}

// Name says how devices reach the emulator, for subtest names.
func (e *Env) Name() string {
	if e.InMemory {
		return "memory"
	}
	return "tcp"
}

// FastProfile is a link that adds almost no delay, so tests run at the speed
// of the loopback while every byte is still metered.
func FastProfile() network.Profile {
	p, err := network.BuiltinProfile("good")
	if err != nil {
		panic(err)
	}
	p.AttachTime, p.RTT, p.RTTJitter, p.Loss = 0, time.Millisecond, 0, 0
	p.RRCSetup, p.RRCResume = 0, 0
	p.RRCInactivity = time.Hour
	p.UplinkBPS, p.DownlinkBPS = 1_000_000_000, 1_000_000_000
	p.DelayedACK, p.PeerDelayedACK = 0, 0
	return p
}

// NewLink makes a device's fast link.
func NewLink(t testing.TB, seed uint64) *network.Link {
	t.Helper()
	l, err := network.NewLink(FastProfile(), network.LinkOptions{Rand: rand.New(rand.NewPCG(seed, 1))})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Dialer returns a dialer over link that reaches the emulator: by TCP, or
// through the in-memory listener serving addr's port ("mqtt" for the MQTT
// port, "https" for everything else).
func (e *Env) Dialer(link *network.Link) *network.Dialer {
	d := &network.Dialer{Link: link}
	if e.InMemory {
		d.Transport = func(ctx context.Context, _, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			if port == strconv.Itoa(protocols.PortMQTT) {
				return e.Server.Dial(ctx, "mqtt")
			}
			return e.Server.Dial(ctx, "https")
		}
	}
	return d
}

// Addr is where a device of protocol p connects.
func (e *Env) Addr(p protocols.Protocol) string {
	if e.InMemory {
		if p == protocols.MQTT {
			return net.JoinHostPort(HostName, strconv.Itoa(protocols.PortMQTT))
		}
		return net.JoinHostPort(HostName, strconv.Itoa(protocols.PortHTTPS))
	}
	if p == protocols.MQTT {
		return fmt.Sprintf("127.0.0.1:%d", e.Server.MQTTPort())
	}
	return fmt.Sprintf("127.0.0.1:%d", e.Server.HTTPSPort())
}

// Device is a device's configuration for protocol p with its group-derived
// key, and its link.
func (e *Env) Device(t testing.TB, p protocols.Protocol, deviceID string) (protocols.Config, *network.Link) {
	t.Helper()
	link := NewLink(t, uint64(len(deviceID)))
	return protocols.Config{
		Protocol: p,
		HostName: HostName,
		Address:  e.Addr(p),
		Identity: iothub.Identity{DeviceID: deviceID},
		Auth:     protocols.Credentials{Key: sas.DeriveKey(GroupKey, deviceID)},
		TLS:      protocols.TLSOptions{RootCAs: e.Server.Chain().CertPool()},
		Dialer:   e.Dialer(link),
		QoS:      1,
	}, link
}

// WaitFor re-checks cond after every hub event until it holds, failing the
// test after ten seconds.
func WaitFor(t testing.TB, h *hub.Hub, what string, cond func() bool) {
	t.Helper()
	ev, stop := h.Subscribe(256)
	defer stop()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-ev:
		case <-deadline.C:
			t.Fatalf("waiting for %s: not met within 10 s", what)
		}
	}
}

// Ctx is a context that ends with the test, at most ten seconds from now.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// CheckLayers asserts that class c in direction d shows exactly payload bytes
// at the payload layer and more at each layer below: protocol framing, then
// TLS records, then TCP/IP headers.
func CheckLayers(t testing.TB, s network.Snapshot, d network.Direction, c network.Class, payload int) {
	t.Helper()
	got := [4]uint64{}
	for i, l := range network.Layers() {
		got[i] = s.Bytes(l, d, c)
	}
	if got[0] != uint64(payload) {
		t.Errorf("%s %s: payload layer %d B, want %d", c, d, got[0], payload)
	}
	if !(got[1] > got[0] && got[2] > got[1] && got[3] > got[2]) {
		t.Errorf("%s %s: layers payload %d, protocol %d, tls %d, ip %d: each must exceed the one above", c, d, got[0], got[1], got[2], got[3])
	}
}

// Leaks returns the stacks of client or paho goroutines still running,
// waiting up to five seconds for them to end; "" means none. TestMain calls
// it after every test has closed its clients.
func Leaks() string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := clientGoroutines()
		if left == "" || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Main runs a package's tests and fails them if a goroutine outlived its
// client.
func Main(m *testing.M) int {
	code := m.Run()
	if left := Leaks(); left != "" && code == 0 {
		fmt.Fprintf(os.Stderr, "goroutines outlived the clients' Close:\n%s\n", left)
		return 1
	}
	return code
}

// Eventually polls cond until it holds, failing the test after ten seconds;
// for state that announces no event, such as a ledger.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not met within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
