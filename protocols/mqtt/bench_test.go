package mqtt

import (
	"context"
	"testing"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
)

// BenchmarkSendTelemetry measures one QoS 1 send and its PUBACK through the
// metered link to the in-memory emulator, and its bytes on the link.
func BenchmarkSendTelemetry(b *testing.B) {
	for _, proto := range []protocols.Protocol{protocols.MQTT, protocols.MQTTWebSocket} {
		b.Run(string(proto), func(b *testing.B) {
			env := hubtest.Start(b, true, nil)
			cfg, link := env.Device(b, proto, "dev-bench")
			c, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(context.Background())
			ctx := context.Background()
			if err := c.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			m := &iothub.Message{Body: make([]byte, 64), MessageID: "m"}
			before := link.Ledger().Snapshot()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := c.SendTelemetry(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			after := link.Ledger().Snapshot()
			b.ReportMetric(float64(after.Total(network.LayerIP, network.Up)-before.Total(network.LayerIP, network.Up))/float64(b.N), "ip-B-up/op")
		})
	}
}
