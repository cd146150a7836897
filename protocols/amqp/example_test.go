package amqp_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/amqp"
	"github.com/catmsim/catmsim/sas"
)

// A device sends one message over AMQP to the emulator in the same process;
// the hub stores it, and the device's ledger holds its body at the payload
// layer and its frames, TLS records and packets below.
func Example() {
	ctx := context.Background()
	groupKey := []byte("0123456789abcdef0123456789abcdef")
	srv, err := hub.Start(ctx, hub.ServerConfig{
		Hub:      hub.Config{HostName: "example.azure-devices.net", GroupKey: groupKey},
		InMemory: true, MQTTPort: -1, HTTPSPort: -1, AMQPPort: -1, MetricsPort: -1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close(ctx)

	p, _ := network.BuiltinProfile("good")
	p.AttachTime, p.RTT, p.RTTJitter, p.Loss = 0, time.Millisecond, 0, 0
	link, err := network.NewLink(p, network.LinkOptions{Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		fmt.Println(err)
		return
	}
	id := iothub.Identity{DeviceID: "thermostat-1"}
	c, err := amqp.New(protocols.Config{
		Protocol: protocols.AMQP,
		HostName: "example.azure-devices.net",
		Identity: id,
		Auth:     protocols.Credentials{Key: sas.DeriveKey(groupKey, id.DeviceID)},
		TLS:      protocols.TLSOptions{RootCAs: srv.Chain().CertPool()},
		Dialer: &network.Dialer{Link: link, Transport: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return srv.Dial(ctx, "amqp")
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Connect(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := c.SendTelemetry(ctx, &iothub.Message{Body: []byte(`{"temperature":21.5}`)}); err != nil {
		fmt.Println(err)
	}
	c.Close(ctx)

	s := link.Ledger().Snapshot()
	fmt.Println("stored:", srv.Hub.Store().CountFor(id))
	fmt.Println("payload up:", s.Bytes(network.LayerPayload, network.Up, network.ClassTelemetry))
	fmt.Println("frames cost more:", s.Bytes(network.LayerProtocol, network.Up, network.ClassTelemetry) > 20)
	// Output:
	// stored: 1
	// payload up: 20
	// frames cost more: true
}
