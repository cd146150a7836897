package classify_test

import (
	"fmt"

	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/network/classify"
)

func ExampleNewMQTT() {
	topic := "devices/fipy-0001/messages/events/"
	publish := append([]byte{0x30, byte(2 + len(topic) + 4), 0, byte(len(topic))}, topic...)
	publish = append(publish, "21.5"...)
	pingreq := []byte{0xC0, 0x00}

	var bytesBy [network.ClassOther + 1]int
	count := func(c network.Class, n int) { bytesBy[c] += n }

	c := classify.NewMQTT(classify.Rule{Pattern: "measures/+", Class: network.ClassTelemetry, Dir: classify.UpOnly})
	stream := append(publish, pingreq...)
	// The meter may cut the stream anywhere; here, inside the topic.
	c.Classify(network.Up, stream[:10], count)
	c.Classify(network.Up, stream[10:], count)
	c.Flush(network.Up, count)

	for _, cl := range network.Classes() {
		if bytesBy[cl] > 0 {
			fmt.Printf("%s %d\n", cl, bytesBy[cl])
		}
	}
	// Output:
	// telemetry 42
	// keepalive 2
}

func ExampleNewWebSocket() {
	// An MQTT PINGREQ in a masked binary frame, after the upgrade.
	upgrade := "GET /$iothub/websocket HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	switching := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	frame := []byte{0x82, 0x82, 1, 2, 3, 4, 0xC0 ^ 1, 0x00 ^ 2}

	c := classify.NewWebSocket(classify.NewMQTT())
	show := func(c network.Class, n int) { fmt.Println(c, n) }
	c.Classify(network.Up, []byte(upgrade), show)
	c.Classify(network.Down, []byte(switching), show)
	c.Classify(network.Up, frame, show)
	// Output:
	// connect 87
	// connect 77
	// keepalive 8
}
