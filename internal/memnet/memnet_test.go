package memnet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPipeIsBuffered(t *testing.T) {
	// Both ends write before either reads: net.Pipe would deadlock here.
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	for _, c := range []net.Conn{a, b} {
		if _, err := c.Write([]byte("hello from " + c.LocalAddr().String())); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		r    net.Conn
		want string
	}{
		{"a reads b", a, "hello from pipe-b"},
		{"b reads a", b, "hello from pipe-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 64)
			n, err := tc.r.Read(buf)
			if err != nil || string(buf[:n]) != tc.want {
				t.Fatalf("read %q, %v; want %q", buf[:n], err, tc.want)
			}
		})
	}
}

func TestAddr(t *testing.T) {
	l := Listen("hub-mqtt")
	defer l.Close()
	if got := l.Addr().Network(); got != "mem" {
		t.Errorf("Addr().Network() = %q, want mem", got)
	}
	c, err := l.DialContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c.RemoteAddr().String() != "hub-mqtt" || s.LocalAddr().String() != "hub-mqtt" {
		t.Errorf("client remote %v, server local %v; want hub-mqtt", c.RemoteAddr(), s.LocalAddr())
	}
	if c.LocalAddr().String() != s.RemoteAddr().String() {
		t.Errorf("client local %v != server remote %v", c.LocalAddr(), s.RemoteAddr())
	}
}

func TestWriteBlocksWhenQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := Pipe()
		defer a.Close()
		defer b.Close()
		big := make([]byte, maxPending+1000)
		done := make(chan int)
		go func() {
			n, err := a.Write(big)
			if err != nil {
				t.Errorf("write: %v", err)
			}
			done <- n
		}()
		synctest.Wait()
		select {
		case n := <-done:
			t.Fatalf("write of %d bytes returned %d before the peer read anything", len(big), n)
		default:
		}
		got, err := io.ReadAll(io.LimitReader(b, int64(len(big))))
		if err != nil || len(got) != len(big) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		if n := <-done; n != len(big) {
			t.Fatalf("write returned %d, want %d", n, len(big))
		}
	})
}

func TestDeadlines(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, a, b net.Conn) error
	}{
		{"read deadline in the past", func(t *testing.T, a, b net.Conn) error {
			a.SetReadDeadline(time.Now().Add(-time.Second))
			_, err := a.Read(make([]byte, 1))
			return err
		}},
		{"read deadline passes while waiting", func(t *testing.T, a, b net.Conn) error {
			a.SetReadDeadline(time.Now().Add(time.Second))
			_, err := a.Read(make([]byte, 1))
			return err
		}},
		{"write deadline passes while the queue is full", func(t *testing.T, a, b net.Conn) error {
			a.SetWriteDeadline(time.Now().Add(time.Second))
			n, err := a.Write(make([]byte, maxPending+1))
			if n != maxPending {
				t.Errorf("wrote %d bytes before the deadline, want %d", n, maxPending)
			}
			return err
		}},
		{"deadline moved later while waiting", func(t *testing.T, a, b net.Conn) error {
			start := time.Now()
			a.SetReadDeadline(start.Add(time.Second))
			go func() {
				time.Sleep(500 * time.Millisecond)
				a.SetReadDeadline(start.Add(3 * time.Second))
			}()
			_, err := a.Read(make([]byte, 1))
			if got := time.Since(start); got != 3*time.Second {
				t.Errorf("read returned after %v, want 3s", got)
			}
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := Pipe()
				defer a.Close()
				defer b.Close()
				err := tc.run(t, a, b)
				var ne net.Error
				if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("got %v, want a timeout error", err)
				}
			})
		})
	}
}

func TestDeadlineClearedAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := Pipe()
		defer a.Close()
		defer b.Close()
		a.SetReadDeadline(time.Now().Add(-time.Second))
		a.SetReadDeadline(time.Time{})
		go func() {
			time.Sleep(10 * time.Second)
			b.Write([]byte("x"))
		}()
		buf := make([]byte, 1)
		if n, err := a.Read(buf); err != nil || n != 1 {
			t.Fatalf("read after clearing an expired deadline: %d, %v", n, err)
		}
	})
}

func TestCloseSemantics(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, a, b net.Conn)
	}{
		{"peer reads queued bytes then EOF", func(t *testing.T, a, b net.Conn) {
			a.Write([]byte("last words"))
			a.Close()
			got, err := io.ReadAll(b)
			if err != nil || string(got) != "last words" {
				t.Fatalf("ReadAll = %q, %v", got, err)
			}
		}},
		{"write after the peer closed fails", func(t *testing.T, a, b net.Conn) {
			b.Close()
			if _, err := a.Write([]byte("x")); err == nil {
				t.Fatal("write to a closed peer succeeded")
			}
		}},
		{"read after local close is net.ErrClosed", func(t *testing.T, a, b net.Conn) {
			a.Close()
			if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("got %v, want net.ErrClosed", err)
			}
		}},
		{"close unblocks a blocked read", func(t *testing.T, a, b net.Conn) {
			errc := make(chan error)
			go func() {
				_, err := a.Read(make([]byte, 1))
				errc <- err
			}()
			synctest.Wait()
			a.Close()
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("got %v, want net.ErrClosed", err)
			}
		}},
		{"close unblocks a blocked write", func(t *testing.T, a, b net.Conn) {
			errc := make(chan error)
			go func() {
				_, err := a.Write(make([]byte, maxPending+1))
				errc <- err
			}()
			synctest.Wait()
			b.Close()
			if err := <-errc; err == nil {
				t.Fatal("blocked write returned no error after the peer closed")
			}
		}},
		{"CloseWrite gives the peer EOF and keeps reading", func(t *testing.T, a, b net.Conn) {
			a.Write([]byte("request"))
			a.(interface{ CloseWrite() error }).CloseWrite()
			got, err := io.ReadAll(b)
			if err != nil || string(got) != "request" {
				t.Fatalf("peer ReadAll = %q, %v", got, err)
			}
			b.Write([]byte("response"))
			b.Close()
			got, err = io.ReadAll(a)
			if err != nil || string(got) != "response" {
				t.Fatalf("ReadAll after CloseWrite = %q, %v", got, err)
			}
			if _, err := a.Write([]byte("x")); err == nil {
				t.Fatal("write after CloseWrite succeeded")
			}
		}},
		{"CloseRead makes peer writes fail", func(t *testing.T, a, b net.Conn) {
			a.(interface{ CloseRead() error }).CloseRead()
			if _, err := b.Write([]byte("x")); err == nil {
				t.Fatal("write to a peer that closed its read side succeeded")
			}
			if n, err := a.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("read after CloseRead = %d, %v; want 0, EOF", n, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := Pipe()
				defer a.Close()
				defer b.Close()
				tc.run(t, a, b)
			})
		})
	}
}

func TestListener(t *testing.T) {
	t.Run("dial after close fails", func(t *testing.T) {
		l := Listen("x")
		l.Close()
		_, err := l.DialContext(context.Background())
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("got %v, want net.ErrClosed", err)
		}
	})
	t.Run("close unblocks accept", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := Listen("x")
			errc := make(chan error)
			go func() {
				_, err := l.Accept()
				errc <- err
			}()
			synctest.Wait()
			l.Close()
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("got %v, want net.ErrClosed", err)
			}
		})
	})
	t.Run("dial honours its context when the backlog is full", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := Listen("x")
			defer l.Close()
			for range backlog {
				if _, err := l.DialContext(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := l.DialContext(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want context.DeadlineExceeded", err)
			}
		})
	})
	t.Run("close closes connections not yet accepted", func(t *testing.T) {
		l := Listen("x")
		c, err := l.DialContext(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read on a connection whose server end was dropped: %v, want EOF", err)
		}
	})
}

// TestConcurrentStreams checks that bytes arrive intact and in order in both
// directions at once, with writes and reads of random sizes.
func TestConcurrentStreams(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	const total = 3 << 20
	rng := mrand.New(mrand.NewPCG(1, 2))
	data := make([]byte, total)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var wg sync.WaitGroup
	for i, pair := range [][2]net.Conn{{a, b}, {b, a}} {
		w, r := pair[0], pair[1]
		wg.Add(2)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), 3))
			for off := 0; off < total; {
				n := min(1+rng.IntN(40000), total-off)
				if _, err := w.Write(data[off : off+n]); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				off += n
			}
		}()
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), 4))
			got := make([]byte, 0, total)
			buf := make([]byte, 50000)
			for len(got) < total {
				n, err := r.Read(buf[:1+rng.IntN(len(buf)-1)])
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("direction %d: stream corrupted", i)
			}
		}()
	}
	wg.Wait()
}

func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hub.test"},
		DNSNames:     []string{"hub.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLSOverPipe(t *testing.T) {
	cert := selfSigned(t)
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			a, b := Pipe()
			client := tls.Client(a, &tls.Config{ServerName: "hub.test", RootCAs: pool, MaxVersion: version})
			server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: version})
			msg := bytes.Repeat([]byte("telemetry "), 5000)
			var wg sync.WaitGroup
			wg.Add(2)
			// Both sides write before they read, as MQTT and AMQP peers may.
			for _, c := range []*tls.Conn{client, server} {
				go func() {
					defer wg.Done()
					if _, err := c.Write(msg); err != nil {
						t.Errorf("write: %v", err)
						return
					}
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
						t.Errorf("read back: %v", err)
					}
				}()
			}
			wg.Wait()
			client.Close()
			if _, err := server.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("server read after client close_notify: %v, want EOF", err)
			}
			server.Close()
		})
	}
}

func TestHTTPOverListener(t *testing.T) {
	l := Listen("hub-https")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	dials := 0
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials++
		return l.DialContext(ctx)
	}}
	client := &http.Client{Transport: tr}
	for i := range 3 {
		resp, err := client.Post("http://hub/devices/d1/messages/events", "application/json", bytes.NewReader(make([]byte, 100*i)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /devices/d1/messages/events %d", 100*i); string(body) != want {
			t.Fatalf("response %q, want %q", body, want)
		}
	}
	if dials != 1 {
		t.Errorf("the transport dialled %d times, want 1 (keep-alive)", dials)
	}
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v", err)
	}
}

type runtimeMem struct{ heap uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.heap = s.HeapAlloc
}

// blockedReaders starts a goroutine per conn that blocks in Read, and returns
// once every one of them is waiting.
func blockedReaders(conns []net.Conn, wg *sync.WaitGroup) {
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [1]byte
			c.Read(buf[:])
		}()
	}
	for _, c := range conns {
		q := c.(*conn).rx
		for {
			q.mu.Lock()
			waiting := q.rwait != nil
			q.mu.Unlock()
			if waiting {
				break
			}
			runtime.Gosched()
		}
	}
}

// BenchmarkIdleConn reports the heap one idle connection pair costs, with a
// reader blocked on each end as a client's and a server's reader would be. A
// warm-up round first leaves the runtime with goroutine descriptors to reuse,
// so the figure is the connections' own heap.
func BenchmarkIdleConn(b *testing.B) {
	const pairs = 10000
	round := func() int64 {
		var m0, m1 runtimeMem
		m0.read()
		conns := make([]net.Conn, 0, 2*pairs)
		for range pairs {
			x, y := Pipe()
			conns = append(conns, x, y)
		}
		var wg sync.WaitGroup
		blockedReaders(conns, &wg)
		m1.read()
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		return int64(m1.heap) - int64(m0.heap) - int64(cap(conns))*16
	}
	round()
	for range b.N {
		b.ReportMetric(float64(round())/pairs, "heap-bytes/pair")
	}
}

func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{64, 1500, 16 << 10} {
		b.Run(fmt.Sprintf("write=%d", size), func(b *testing.B) {
			x, y := Pipe()
			defer x.Close()
			defer y.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				io.Copy(io.Discard, y)
			}()
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := x.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			x.Close()
			<-done
		})
	}
}
