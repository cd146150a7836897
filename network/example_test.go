package network_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/catmsim/catmsim/internal/memnet"
	"github.com/catmsim/catmsim/network"
)

// A custom profile starts from a built-in and overrides fields; Validate names
// every field out of range.
func ExampleProfile_Validate() {
	p, _ := network.BuiltinProfile("poor")
	p.RTT = -5 * time.Millisecond
	p.Loss = 1.5
	fmt.Println(p.Validate())
	// Output:
	// link profile "poor" is invalid: rtt: must be >= 0 (got -5ms)
	// loss: must be in [0, 1) (got 1.5)
}

// A device dials an emulator listening in memory and exchanges one message;
// its ledger holds the bytes of every layer.
func ExampleDialer() {
	hub := memnet.Listen("hub-mqtt")
	defer hub.Close()
	go func() { // an echo server standing in for the emulator
		c, err := hub.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()

	p, _ := network.BuiltinProfile("good")
	p.AttachTime, p.RTT, p.RTTJitter, p.Loss = 0, time.Millisecond, 0, 0
	p.DelayedACK, p.PeerDelayedACK = 0, 0 // acknowledge every segment at once
	link, err := network.NewLink(p, network.LinkOptions{Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		fmt.Println(err)
		return
	}
	d := &network.Dialer{Link: link, Transport: network.MemTransport(map[string]*memnet.Listener{":1883": hub})}
	conn, err := d.DialPlain(context.Background(), "tcp", "hub:1883", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Write([]byte("hello"))
	io.ReadFull(conn, make([]byte, 5))
	conn.Close()

	s := link.Ledger().Snapshot()
	for _, layer := range []network.Layer{network.LayerProtocol, network.LayerTLS, network.LayerIP} {
		fmt.Printf("%-8s up %3d B, down %3d B\n", layer, s.Total(layer, network.Up), s.Total(layer, network.Down))
	}
	fmt.Println("connections:", s.Conns(network.ReasonInitial))
	// Output:
	// protocol up   5 B, down   5 B
	// tls      up   5 B, down   5 B
	// ip       up 249 B, down 217 B
	// connections: 1
}
