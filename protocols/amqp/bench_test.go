package amqp

import (
	"context"
	"testing"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
)

// BenchmarkSendTelemetry measures one send and its disposition through the
// metered link to the in-memory emulator, singly and in batches of ten, and
// the bytes each message costs on the link.
func BenchmarkSendTelemetry(b *testing.B) {
	for _, proto := range []protocols.Protocol{protocols.AMQP, protocols.AMQPWebSocket} {
		for _, batch := range []int{1, 10} {
			name := string(proto) + "/single"
			if batch > 1 {
				name = string(proto) + "/batch10"
			}
			b.Run(name, func(b *testing.B) {
				env := hubtest.Start(b, true, func(c *hub.ServerConfig) { c.Hub.KeepBodies = false })
				cfg, link := device(b, env, proto, "dev-bench")
				c, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close(context.Background())
				ctx := context.Background()
				if err := c.Connect(ctx); err != nil {
					b.Fatal(err)
				}
				ms := make([]*iothub.Message, batch)
				for i := range ms {
					ms[i] = &iothub.Message{Body: make([]byte, 64), MessageID: "m"}
				}
				before := link.Ledger().Snapshot()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if batch == 1 {
						err = c.SendTelemetry(ctx, ms[0])
					} else {
						err = c.SendBatch(ctx, ms)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				after := link.Ledger().Snapshot()
				b.ReportMetric(float64(after.Total(network.LayerIP, network.Up)-before.Total(network.LayerIP, network.Up))/float64(b.N*batch), "ip-B-up/msg")
			})
		}
	}
}
