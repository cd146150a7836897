package network

import (
	"context"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/internal/memnet"
)

// instantProfile models a link so fast that the benchmarks measure the
// wrapper's own cost, not modelled time.
func instantProfile() Profile {
	p := fastProfile()
	p.RTT = 0
	p.DownlinkBPS, p.UplinkBPS = 1e15, 1e15
	return p
}

func benchLink(b *testing.B) *Link {
	l, err := NewLink(instantProfile(), LinkOptions{Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// pump writes b.N chunks of size bytes through w while a reader drains r, and
// reports allocations per megabyte moved.
func pump(b *testing.B, w io.Writer, r io.Reader, size int) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, r)
	}()
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	mb := float64(b.N) * float64(size) / 1e6
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/mb, "allocs/MB")
	if c, ok := w.(io.Closer); ok {
		c.Close()
	}
	<-done
}

func tlsPair(b *testing.B, client, server net.Conn) (net.Conn, net.Conn) {
	cert, pool := testCert(b)
	sc := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}})
	go sc.Handshake()
	cc := tls.Client(client, &tls.Config{RootCAs: pool, ServerName: "hub.test"})
	if err := cc.Handshake(); err != nil {
		b.Fatal(err)
	}
	return cc, sc
}

// BenchmarkDirect moves bytes over a bare memnet connection.
func BenchmarkDirect(b *testing.B) {
	for _, size := range []int{256, 16 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			x, y := memnet.Pipe()
			pump(b, x, y, size)
		})
	}
	b.Run("tls/16KiB", func(b *testing.B) {
		x, y := memnet.Pipe()
		cx, cy := tlsPair(b, x, y)
		pump(b, cx, cy, 16<<10)
	})
}

// BenchmarkLink moves the same bytes over a modelled, metered connection:
// the link model, the tls/ip accounting and the protocol meter with a
// classifier.
func BenchmarkLink(b *testing.B) {
	for _, size := range []int{256, 16 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			x, y := memnet.Pipe()
			l := benchLink(b)
			c := newConn(l, x, ReasonInitial, l.clock.Now())
			pump(b, c.Meter(c, otherClassifier{}), y, size)
		})
	}
	b.Run("tls/16KiB", func(b *testing.B) {
		x, y := memnet.Pipe()
		l := benchLink(b)
		c := newConn(l, x, ReasonInitial, l.clock.Now())
		cx, cy := tlsPair(b, c, y)
		pump(b, c.Meter(cx, otherClassifier{}), cy, 16<<10)
	})
	// With latency every write goes through the delivery queue and its timer.
	b.Run("delayed/16KiB", func(b *testing.B) {
		x, y := memnet.Pipe()
		p := instantProfile()
		p.RTT = 2 * time.Millisecond
		l, err := NewLink(p, LinkOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c := newConn(l, x, ReasonInitial, l.clock.Now())
		pump(b, c.Meter(c, otherClassifier{}), y, 16<<10)
	})
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// BenchmarkDial measures one connection's set-up and tear-down through the
// link over memnet: modelled handshake (instant here), accounting, meter.
func BenchmarkDial(b *testing.B) {
	ln := memnet.Listen("hub")
	defer ln.Close()
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, s)
				s.Close()
			}()
		}
	}()
	l := benchLink(b)
	d := &Dialer{Link: l, Transport: MemTransport(map[string]*memnet.Listener{":8883": ln})}
	b.ReportAllocs()
	for range b.N {
		m, err := d.DialPlain(context.Background(), "tcp", "hub:8883", otherClassifier{})
		if err != nil {
			b.Fatal(err)
		}
		m.Write([]byte("CONNECT"))
		m.Close()
	}
}

type memUse struct{ heap, stack uint64 }

func readMem() memUse {
	runtime.GC()
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return memUse{s.HeapAlloc, s.StackInuse}
}

func (m memUse) minus(o memUse) int64 {
	return int64(m.heap+m.stack) - int64(o.heap+o.stack)
}

// BenchmarkIdleLinks measures what 10,000 idle devices cost on top of their
// connections: 10,000 memnet connection pairs with a reader blocked on each
// end, bare, against the same with a Link (radio, ledger, random source), the
// modelled Conn and the protocol meter with a classifier on the device's end,
// after one exchange each. It reports the difference per link.
func BenchmarkIdleLinks(b *testing.B) {
	const links = 10000
	idleFleet(b, links, false) // warm up: later fleets reuse its goroutine descriptors
	for range b.N {
		bare := idleFleet(b, links, false)
		linked := idleFleet(b, links, true)
		b.ReportMetric(float64(bare)/links, "bytes/bare-pair")
		b.ReportMetric(float64(linked-bare)/links, "bytes/link")
	}
}

// idleFleet builds n idle connection pairs, returns the memory they hold, and
// tears them down.
func idleFleet(b *testing.B, n int, linked bool) int64 {
	before := readMem()
	var wg sync.WaitGroup
	var closers []io.Closer
	ready := make(chan struct{}, n)
	msg := frame(ClassTelemetry, 60)
	for i := range n {
		dev, srv := memnet.Pipe()
		var conn net.Conn = dev
		if linked {
			l, err := NewLink(instantProfile(), LinkOptions{Rand: rand.New(rand.NewPCG(7, uint64(i)))})
			if err != nil {
				b.Fatal(err)
			}
			c := newConn(l, dev, ReasonInitial, l.clock.Now())
			conn = c.Meter(c, &frameClassifier{})
		}
		closers = append(closers, conn, srv)
		wg.Add(2)
		go func() { // the hub: echo, then wait
			defer wg.Done()
			buf := make([]byte, 512)
			k, err := srv.Read(buf)
			if err != nil {
				return
			}
			srv.Write(buf[:k])
			srv.Read(buf)
		}()
		go func() { // the device's reader: one exchange, then blocked
			defer wg.Done()
			buf := make([]byte, 512)
			conn.Write(msg)
			if _, err := io.ReadFull(conn, buf[:len(msg)]); err != nil {
				return
			}
			ready <- struct{}{}
			conn.Read(buf)
		}()
	}
	for range n {
		<-ready
	}
	used := readMem().minus(before)
	for _, c := range closers {
		c.Close()
	}
	wg.Wait()
	return used
}
