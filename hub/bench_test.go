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
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/sas"
)

// The fleet benchmark measures the emulator alone: it runs it in a child process
// (this test binary, re-executed with benchChildEnv set) and reads the child's
// own memory figures from its metrics endpoint, so the clients' memory does not
// count against the emulator.
const benchChildEnv = "CATMSIM_HUB_BENCH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		os.Exit(benchChild())
	}
	os.Exit(m.Run())
}

// benchChild serves an emulator, printing its MQTT port and root CA on standard
// output, and answers each "stats" line on standard input with its memory after
// a garbage collection, until standard input closes.
func benchChild() int {
	s, err := Start(context.Background(), ServerConfig{Hub: Config{HostName: "bench.azure-devices.net", GroupKey: groupKey}, HTTPSPort: -1, MetricsPort: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	info, _ := json.Marshal(map[string]string{"port": strconv.Itoa(s.MQTTPort()), "ca": string(s.Chain().RootPEM)})
	fmt.Println(string(info))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := s.Hub.Stats()
		b, _ := json.Marshal(childStats{HeapInuse: ms.HeapInuse, Sys: ms.Sys, RSS: rss(), Goroutines: runtime.NumGoroutine(),
			Stored: s.Hub.Store().Len(), Connections: st.Protocols[MQTT].Connections})
		fmt.Println(string(b))
	}
	_ = s.Close(context.Background())
	return 0
}

type childStats struct {
	HeapInuse, Sys, RSS uint64
	Goroutines          int
	Stored              int
	Connections         uint64
}

// rss is the process's resident set size from /proc, or 0 where there is none.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkMQTTFleet connects 1,000 devices over MQTT/TLS to one emulator; each
// sends one message and stays connected. It checks that the store holds all
// 1,000 and reports the emulator's memory per connection and the connection
// rate. Run it with:
//
//	go test ./hub -run '^$' -bench MQTTFleet -benchtime 1x
func BenchmarkMQTTFleet(b *testing.B) {
	const devices = 1000
	for i := 0; i < b.N; i++ {
		runFleetBench(b, devices)
	}
}

func runFleetBench(b *testing.B, devices int) {
	fleetBench(b, devices, "^$", benchChildEnv, func(addr string, pool *x509.CertPool, id string) (io.Closer, error) {
		return rawDevice(addr, pool, id)
	})
}

// fleetBench starts the emulator in a child process (this test binary run
// with -test.run=childRun and childEnv=1), connects devices to it with dial,
// up to 32 at a time, checks that the store holds one message per device and
// that every connection is live, and reports the emulator's memory and
// goroutines per connection and the connection rate.
func fleetBench(b *testing.B, devices int, childRun, childEnv string, dial func(addr string, pool *x509.CertPool, id string) (io.Closer, error)) {
	cmd := exec.Command(os.Args[0], "-test.run="+childRun)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("emulator child: %v", err)
	}
	var info map[string]string
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(info["ca"]))
	stats := func() childStats {
		if _, err := io.WriteString(stdin, "stats\n"); err != nil {
			b.Fatal(err)
		}
		line, err := out.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		var st childStats
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			b.Fatal(err)
		}
		return st
	}
	before := stats()

	b.ResetTimer()
	start := time.Now()
	conns := make([]io.Closer, devices)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	errs := make(chan error, devices)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial("127.0.0.1:"+info["port"], pool, fmt.Sprintf("bench-%04d", i))
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	after := stats()
	if after.Stored != devices {
		b.Fatalf("the store holds %d messages, want %d", after.Stored, devices)
	}
	if after.Connections != uint64(devices) {
		b.Fatalf("%d live device connections, want %d", after.Connections, devices)
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(devices) }
	b.ReportMetric(per(after.HeapInuse, before.HeapInuse), "heap-B/conn")
	b.ReportMetric(per(after.RSS, before.RSS), "rss-B/conn")
	b.ReportMetric(float64(after.Goroutines-before.Goroutines)/float64(devices), "goroutines/conn")
	b.ReportMetric(float64(devices)/elapsed.Seconds(), "conns/s")
}

// rawDevice connects one device with a hand-made CONNECT and PUBLISH at QoS 1,
// and returns once the PUBACK arrived, leaving the connection open.
func rawDevice(addr string, pool *x509.CertPool, id string) (*tls.Conn, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "bench.azure-devices.net"})
	if err != nil {
		return nil, err
	}
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	tok := sas.Sign(sas.DeviceResource("bench.azure-devices.net", id, ""), sas.DeriveKey(groupKey, id), "", time.Now().Add(time.Hour))
	var body []byte
	body = append(body, str("MQTT")...)
	body = append(body, 4, 0xC0, 0, 240)
	body = append(body, str(id)...)
	body = append(body, str("bench.azure-devices.net/"+id+"/?api-version=2021-04-12")...)
	body = append(body, str(tok)...)
	pub := append(str("devices/"+id+"/messages/events/"), 0, 1)
	pub = append(pub, `{"temperature":21.5}`...)
	var out []byte
	out = append(out, 0x10)
	out = append(out, encodeLen(len(body))...)
	out = append(out, body...)
	out = append(out, 0x32)
	out = append(out, encodeLen(len(pub))...)
	out = append(out, pub...)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(out); err != nil {
		c.Close()
		return nil, err
	}
	in := make([]byte, 8)
	if _, err := io.ReadFull(c, in); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: reading CONNACK and PUBACK: %w", id, err)
	}
	if in[0] != 0x20 || in[3] != 0 || in[4] != 0x40 {
		c.Close()
		return nil, fmt.Errorf("%s: CONNACK/PUBACK % x", id, in)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
