package classify

import (
	"bytes"
	"testing"

	"github.com/catmsim/catmsim/internal/amqpwire"
	"github.com/catmsim/catmsim/network"
)

// benchExchange feeds one up/down exchange per iteration, in chunks of at most
// chunk bytes, and reports bytes per second and allocations per exchange.
func benchExchange(b *testing.B, c network.Classifier, setup []seg, upMsg, downMsg []byte, chunk int) {
	var counts [nClasses]int
	attribute := func(cl network.Class, n int) { counts[cl] += n }
	for _, s := range setup {
		c.Classify(s.dir, s.b, attribute)
	}
	feedChunks := func(d network.Direction, p []byte) {
		for len(p) > 0 {
			n := min(len(p), chunk)
			c.Classify(d, p[:n], attribute)
			p = p[n:]
		}
	}
	b.SetBytes(int64(len(upMsg) + len(downMsg)))
	b.ReportAllocs()
	for b.Loop() {
		feedChunks(network.Up, upMsg)
		feedChunks(network.Down, downMsg)
	}
	if counts[network.ClassTelemetry] == 0 {
		b.Fatalf("nothing classified as telemetry: %v", counts)
	}
}

func BenchmarkMQTTPublish(b *testing.B) {
	pub := mqttPublishPkt("devices/fipy-0001/messages/events/%24.ct=application%2Fjson", 1, 7, bytes.Repeat([]byte("x"), 200))
	ack := mqttAckPkt(mqttPuback, 7)
	for _, chunk := range []int{1 << 20, 16} {
		b.Run(chunkName(chunk), func(b *testing.B) {
			benchExchange(b, NewMQTT(), nil, pub, ack, chunk)
		})
	}
}

func BenchmarkAMQPTransfer(b *testing.B) {
	hdr := protoHeader(amqpwire.ProtocolAMQP)
	begin := amqpFrame(b, 0, &amqpwire.Begin{NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	beginR := amqpFrame(b, 0, &amqpwire.Begin{RemoteChannel: u16p(0), NextOutgoingID: 0, IncomingWindow: 10, OutgoingWindow: 10}, nil)
	addr := "amqps://hub.azure-devices.net/devices/fipy-0001/messages/events"
	setup := []seg{up(hdr, begin, attachPkt(b, 0, 2, amqpwire.RoleSender, "fipy-0001", addr)),
		down(hdr, beginR, attachPkt(b, 0, 2, amqpwire.RoleReceiver, "fipy-0001", addr))}
	tr := transferPkt(b, 0, 2, u32p(1), false, false, amqpMsg(b, string(bytes.Repeat([]byte("x"), 200))))
	disp := dispositionPkt(b, 0, amqpwire.RoleReceiver, 1)
	for _, chunk := range []int{1 << 20, 16} {
		b.Run(chunkName(chunk), func(b *testing.B) {
			benchExchange(b, NewAMQP(), setup, tr, disp, chunk)
		})
	}
}

func BenchmarkHTTPTelemetry(b *testing.B) {
	req := httpReq("POST", "/devices/fipy-0001/messages/events?api-version=2021-04-12", string(bytes.Repeat([]byte("x"), 200)),
		"Content-Type: application/json", "iothub-app-alert: true")
	resp := httpResp(204, "", "Content-Length: 0")
	for _, chunk := range []int{1 << 20, 16} {
		b.Run(chunkName(chunk), func(b *testing.B) {
			benchExchange(b, NewHTTP(), nil, req, resp, chunk)
		})
	}
}

func BenchmarkWebSocketMQTT(b *testing.B) {
	pub := wsUp(mqttPublishPkt("devices/fipy-0001/messages/events/", 1, 7, bytes.Repeat([]byte("x"), 200)))
	ack := wsDown(mqttAckPkt(mqttPuback, 7))
	setup := []seg{up(wsUpgradeReq("mqtt")), down(wsSwitching("mqtt"))}
	for _, chunk := range []int{1 << 20, 16} {
		b.Run(chunkName(chunk), func(b *testing.B) {
			benchExchange(b, NewWebSocket(NewMQTT()), setup, pub, ack, chunk)
		})
	}
}

func chunkName(n int) string {
	if n >= 1<<20 {
		return "whole"
	}
	return "chunks-of-16"
}
