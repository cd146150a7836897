package reports

import (
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/memnet"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// Connections counted by a device's dialer reach the report, and connect
// bytes per connection are the connect classes' IP bytes over them.
func TestBuildReadsConnectionsFromTheLedger(t *testing.T) {
	hub := memnet.Listen("hub")
	defer hub.Close()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := hub.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	p, err := network.BuiltinProfile("good")
	if err != nil {
		t.Fatal(err)
	}
	p.AttachTime, p.RTT, p.RTTJitter, p.Loss, p.DelayedACK, p.PeerDelayedACK = 0, time.Millisecond, 0, 0, 0, 0
	link, err := network.NewLink(p, network.LinkOptions{Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		t.Fatal(err)
	}
	d := &network.Dialer{Link: link, Transport: network.MemTransport(map[string]*memnet.Listener{":8883": hub})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 { // the first connection and a reconnect
		c, err := d.DialPlain(ctx, "tcp", "hub:8883", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}

	run := metrics.NewRun(nil)
	run.Device(metrics.DeviceInfo{ID: "dev", Group: "g", Profile: "p", Protocol: "mqtt"}, link.Ledger(), nil)
	r, err := Build(Input{Run: run, Meta: Meta{Scenario: "conns", Duration: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	row := r.Devices[0]
	if row.Connections != (ConnTable{1, 1, 0}) {
		t.Fatalf("connections %v, want one initial and one reconnect", row.Connections)
	}
	snap := link.Ledger().Snapshot()
	connectIP := snap.Bytes(network.LayerIP, network.Up, network.ClassConnect) + snap.Bytes(network.LayerIP, network.Down, network.ClassConnect) +
		snap.Bytes(network.LayerIP, network.Up, network.ClassReconnect) + snap.Bytes(network.LayerIP, network.Down, network.ClassReconnect)
	if connectIP == 0 {
		t.Fatal("the dials cost no connect bytes")
	}
	if got := r.Summary.Groups[0].Projected.ConnectIPPerConn; got != float64(connectIP)/2 {
		t.Fatalf("connect bytes per connection %v, want %v", got, float64(connectIP)/2)
	}
	if row.Bytes.Layer(network.LayerIP) != snap.Total(network.LayerIP, network.Up)+snap.Total(network.LayerIP, network.Down) {
		t.Fatal("the row's IP bytes are not the ledger's")
	}
	hub.Close()
	<-accepted
}

func TestBuildRefuses(t *testing.T) {
	run := metrics.NewRun(nil)
	for _, tt := range []struct {
		name string
		in   Input
		err  string
	}{
		{"no run", Input{Meta: Meta{Duration: time.Minute}}, "no run to report on"},
		{"no duration", Input{Run: run}, "a positive one"},
		{"shard out of range", Input{Run: run, Meta: Meta{Duration: time.Minute, Shard: 3, Shards: 3}}, "shard 3 of 3 does not exist"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.in); err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

// The timeline keeps one point per bucket: the last sample in it, carried
// forward through buckets without one.
func TestBucketTimeline(t *testing.T) {
	s := func(sec int, d2c uint64) metrics.Sample {
		return metrics.Sample{Elapsed: time.Duration(sec) * time.Second, D2CSent: d2c}
	}
	got := bucketTimeline([]metrics.Sample{s(0, 1), s(3, 2), s(6, 3), s(21, 4)}, 5*time.Second)
	want := []uint64{2, 3, 3, 3, 4}
	if len(got.Points) != len(want) {
		t.Fatalf("%d points, want %d", len(got.Points), len(want))
	}
	for i, w := range want {
		if got.Points[i].D2CSent != w {
			t.Errorf("point %d: %d, want %d", i, got.Points[i].D2CSent, w)
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		want time.Duration
	}{{2 * time.Minute, 5 * time.Second}, {6 * time.Hour, 5 * time.Minute}, {30 * 24 * time.Hour, 12 * time.Hour}, {365 * 24 * time.Hour, 96 * time.Hour}} {
		if got := bucketWidth(tt.d); got != tt.want {
			t.Errorf("bucketWidth(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
