package hub

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/catmsim/catmsim/sas"
)

// amqpBenchChildEnv makes TestAMQPBenchChild serve an emulator for
// BenchmarkAMQPFleet, as benchChildEnv does for the MQTT fleet.
const amqpBenchChildEnv = "CATMSIM_HUB_AMQP_BENCH_CHILD"

const benchHost = "bench.azure-devices.net"

// TestAMQPBenchChild is the emulator side of BenchmarkAMQPFleet, run in a
// child process; it does nothing in a normal test run.
func TestAMQPBenchChild(t *testing.T) {
	if os.Getenv(amqpBenchChildEnv) != "1" {
		t.Skip("runs only as BenchmarkAMQPFleet's child process")
	}
	s, err := Start(context.Background(), ServerConfig{Hub: Config{HostName: benchHost, GroupKey: groupKey}, MQTTPort: -1, HTTPSPort: -1, MetricsPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	info, _ := json.Marshal(map[string]string{"port": strconv.Itoa(s.AMQPPort()), "ca": string(s.Chain().RootPEM)})
	fmt.Println(string(info))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := s.Hub.Stats()
		b, _ := json.Marshal(childStats{HeapInuse: ms.HeapInuse, Sys: ms.Sys, RSS: rss(), Goroutines: runtime.NumGoroutine(),
			Stored: s.Hub.Store().Len(), Connections: st.Protocols[AMQP].Connections})
		fmt.Println(string(b))
	}
}

// BenchmarkAMQPFleet connects 1,000 devices over AMQP/TLS (SASL PLAIN with a
// SAS token) to one emulator in a child process; each attaches a telemetry
// link, sends one message and stays connected. It checks that the store
// holds all 1,000 and reports the emulator's memory and goroutines per
// connection. Run it with:
//
//	go test ./hub -run '^$' -bench AMQPFleet -benchtime 1x
func BenchmarkAMQPFleet(b *testing.B) {
	const devices = 1000
	for i := 0; i < b.N; i++ {
		runAMQPFleetBench(b, devices)
	}
}

func runAMQPFleetBench(b *testing.B, devices int) {
	fleetBench(b, devices, "^TestAMQPBenchChild$", amqpBenchChildEnv, func(addr string, pool *x509.CertPool, id string) (io.Closer, error) {
		return amqpBenchDevice(addr, pool, id)
	})
}

// amqpBenchDevice connects one device with SASL PLAIN, sends one message on
// its telemetry link and returns once the hub accepted it, leaving the
// connection open. The client's idle-time-out is the hub's, so the hub's
// heartbeats stay rare.
func amqpBenchDevice(addr string, pool *x509.CertPool, id string) (*amqp.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok := sas.Sign(sas.DeviceResource(benchHost, id, ""), sas.DeriveKey(groupKey, id), "", time.Now().Add(time.Hour))
	c, err := amqp.Dial(ctx, "amqps://"+addr, &amqp.ConnOptions{
		SASLType:    amqp.SASLTypePlain(id+"@sas.bench", tok),
		TLSConfig:   &tls.Config{RootCAs: pool, ServerName: benchHost},
		IdleTimeout: 240 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: connecting: %w", id, err)
	}
	sess, err := c.NewSession(ctx, nil)
	if err == nil {
		var snd *amqp.Sender
		if snd, err = sess.NewSender(ctx, "/devices/"+id+"/messages/events", nil); err == nil {
			err = snd.Send(ctx, amqp.NewMessage([]byte(`{"temperature":21.5}`)), nil)
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	return c, nil
}
