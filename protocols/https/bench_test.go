package https

import (
	"context"
	"testing"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
)

// BenchmarkSendTelemetry compares a kept-alive connection with a new TLS
// connection per request (urequests): time and ip bytes per send.
func BenchmarkSendTelemetry(b *testing.B) {
	for _, perRequest := range []bool{false, true} {
		name := "keepalive"
		if perRequest {
			name = "per-request"
		}
		b.Run(name, func(b *testing.B) {
			env := hubtest.Start(b, true, nil)
			cfg, link := env.Device(b, protocols.HTTPS, "dev-bench")
			cfg.NewConnectionPerRequest = perRequest
			c, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(context.Background())
			ctx := context.Background()
			m := &iothub.Message{Body: make([]byte, 64)}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.SendTelemetry(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			s := link.Ledger().Snapshot()
			b.ReportMetric(float64(s.Total(network.LayerIP, network.Up)+s.Total(network.LayerIP, network.Down))/float64(b.N), "ip-B/op")
		})
	}
}
