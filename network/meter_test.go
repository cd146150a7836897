package network

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catmsim/catmsim/internal/memnet"
)

// step is one exchange: the device sends a frame of class up (split into
// writes of the given sizes, if any), the server answers with frames.
type step struct {
	up     Class
	size   int
	splits []int
	down   []Class
}

var session = []step{
	{up: ClassConnect, size: 260, down: []Class{ClassConnect}},                            // CONNECT, CONNACK
	{up: ClassTelemetry, size: 150, down: []Class{ClassTelemetry}},                        // publish, puback
	{up: ClassTelemetry, size: 900, splits: []int{2, 400}, down: []Class{ClassTelemetry}}, // a publish in three writes
	{up: ClassKeepAlive, size: 2, down: []Class{ClassKeepAlive}},
	{up: ClassC2D, size: 4, down: []Class{ClassC2D, ClassTwin, ClassMethod}}, // several frames in one burst
	{up: ClassTwin, size: 300, down: []Class{ClassTwin}},
	{up: ClassMethod, size: 80, down: []Class{ClassMethod}},
}

const downSize = 120 // body of every frame the server sends

// tally is what each side counted per class.
type tally struct {
	frames [numDirections][numClasses]int
	writes [numDirections][numClasses]int // records, when each write is one record
	bytes  [numDirections][numClasses]int
}

func (s step) writes() [][2]int {
	f := frame(s.up, s.size)
	var out [][2]int
	off := 0
	for _, k := range s.splits {
		out = append(out, [2]int{off, off + k})
		off += k
	}
	return append(out, [2]int{off, len(f)})
}

func expected() tally {
	var e tally
	for _, s := range session {
		e.frames[Up][s.up]++
		e.writes[Up][s.up] += len(s.writes())
		e.bytes[Up][s.up] += 3 + s.size
		for _, c := range s.down {
			e.frames[Down][c]++
			e.writes[Down][c]++
			e.bytes[Down][c] += 3 + downSize
		}
	}
	return e
}

// serveSession is the server end: it reads each frame and writes the answers,
// one Write per frame, then waits for the device to close.
func serveSession(raw net.Conn, wrap func(net.Conn) net.Conn) (*countingConn, *countingConn, error) {
	cr := &countingConn{Conn: raw}
	cp := &countingConn{Conn: wrap(cr)}
	for _, s := range session {
		if _, err := io.ReadFull(cp, make([]byte, 3+s.size)); err != nil {
			return cr, cp, fmt.Errorf("server read: %w", err)
		}
		for _, c := range s.down {
			if _, err := cp.Write(frame(c, downSize)); err != nil {
				return cr, cp, err
			}
		}
	}
	io.Copy(io.Discard, cp) // until the device closes
	raw.Close()             // no close_notify back: the device no longer reads
	return cr, cp, nil
}

func runSession(t *testing.T, m net.Conn) {
	t.Helper()
	for _, s := range session {
		f := frame(s.up, s.size)
		for _, w := range s.writes() {
			if _, err := m.Write(f[w[0]:w[1]]); err != nil {
				t.Fatalf("device write: %v", err)
			}
		}
		if _, err := io.ReadFull(m, make([]byte, len(s.down)*(3+downSize))); err != nil {
			t.Fatalf("device read: %v", err)
		}
	}
}

type meterCase struct {
	name    string
	version uint16 // 0: no TLS
	ovh     int    // ciphertext bytes per record
}

var meterCases = []meterCase{
	{"tls1.3", tls.VersionTLS13, 22},
	{"tls1.2", tls.VersionTLS12, 29},
	{"plain", 0, 0},
}

// checkLedger compares the device's ledger with what the server counted and
// with the exact record arithmetic.
func checkLedger(t *testing.T, mc meterCase, l *Link, c *Conn, raw, plain *countingConn) {
	t.Helper()
	s := l.Ledger().Snapshot()
	pr, pw := plain.counts()
	rr, rw := raw.counts()
	for _, tc := range []struct {
		what string
		got  uint64
		want int64
	}{
		{"protocol up = plaintext the server read", s.Total(LayerProtocol, Up), pr},
		{"protocol down = plaintext the server wrote", s.Total(LayerProtocol, Down), pw},
		{"tls up = ciphertext the server read", s.Total(LayerTLS, Up), rr},
		{"tls down = ciphertext the server wrote", s.Total(LayerTLS, Down), rw},
	} {
		if int64(tc.got) != tc.want {
			t.Errorf("%s: ledger %d, server %d", tc.what, tc.got, tc.want)
		}
	}
	st := c.Stats()
	for _, d := range []Direction{Up, Down} {
		if got := s.Total(LayerIP, d); int64(got) != st.IP[d] {
			t.Errorf("ip %s: ledger %d, connection %d", d, got, st.IP[d])
		}
		if st.IP[d] <= st.TLS[d]+int64(st.Segments[d])*40-1 {
			t.Errorf("ip %s %d is not tls %d plus %d segment headers", d, st.IP[d], st.TLS[d], st.Segments[d])
		}
	}
	want := expected()
	for _, d := range []Direction{Up, Down} {
		for _, cl := range Classes() {
			proto := s.Bytes(LayerProtocol, d, cl)
			if int(proto) != want.bytes[d][cl] {
				t.Errorf("protocol %s %s: %d, want %d", d, cl, proto, want.bytes[d][cl])
			}
			if cl == ClassConnect || cl == ClassReconnect {
				continue // also holds the handshake
			}
			// Each write is one record: its plaintext plus the overhead.
			tlsBytes := s.Bytes(LayerTLS, d, cl)
			if w := want.bytes[d][cl] + want.writes[d][cl]*mc.ovh; int(tlsBytes) != w {
				t.Errorf("tls %s %s: %d, want %d (%d B in %d records of %d B overhead)",
					d, cl, tlsBytes, w, want.bytes[d][cl], want.writes[d][cl], mc.ovh)
			}
		}
		if o := s.Bytes(LayerTLS, d, ClassOther); o != 0 {
			t.Errorf("tls %s: %d bytes of class other", d, o)
		}
	}
}

func serverTLS(t *testing.T, version uint16) (func(net.Conn) net.Conn, *tls.Config) {
	cert, pool := testCert(t)
	if version == 0 {
		return func(c net.Conn) net.Conn { return c }, nil
	}
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: version, MinVersion: version,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	return func(c net.Conn) net.Conn { return tls.Server(c, srv) }, &tls.Config{RootCAs: pool, ServerName: "hub.test"}
}

func dialSession(t *testing.T, d *Dialer, addr string, version uint16, clientCfg *tls.Config) (net.Conn, *Conn) {
	t.Helper()
	ctx := context.Background()
	if version == 0 {
		m, err := d.DialPlain(ctx, "tcp", addr, &frameClassifier{})
		if err != nil {
			t.Fatal(err)
		}
		return m, m.(*meteredConn).link
	}
	m, err := d.DialTLS(ctx, "tcp", addr, clientCfg, &frameClassifier{})
	if err != nil {
		t.Fatal(err)
	}
	return m, m.(*meteredConn).link
}

func TestLayersMatchTheOtherEnd(t *testing.T) {
	for _, mc := range meterCases {
		t.Run("memnet/"+mc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				wrap, clientCfg := serverTLS(t, mc.version)
				ln := memnet.Listen("hub")
				defer ln.Close()
				type served struct {
					raw, plain *countingConn
					err        error
				}
				done := make(chan served, 1)
				go func() {
					s, err := ln.Accept()
					if err != nil {
						done <- served{err: err}
						return
					}
					r, p, err := serveSession(s, wrap)
					done <- served{r, p, err}
				}()
				p, _ := BuiltinProfile("typical")
				p.Loss = 0.05 // retransmissions count on the ip layer only
				l, err := NewLink(p, LinkOptions{Rand: rand.New(rand.NewPCG(3, 4))})
				if err != nil {
					t.Fatal(err)
				}
				d := &Dialer{Link: l, Transport: MemTransport(map[string]*memnet.Listener{":8883": ln})}
				m, c := dialSession(t, d, "hub.test:8883", mc.version, clientCfg)
				runSession(t, m)
				m.Close()
				sv := <-done
				if sv.err != nil {
					t.Fatal(sv.err)
				}
				synctest.Wait()
				checkLedger(t, mc, l, c, sv.raw, sv.plain)
			})
		})
	}
	t.Run("loopback/tls1.3", func(t *testing.T) {
		mc := meterCases[0]
		wrap, clientCfg := serverTLS(t, mc.version)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var raw, plain *countingConn
		var serr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := ln.Accept()
			if err != nil {
				serr = err
				return
			}
			raw, plain, serr = serveSession(s, wrap)
		}()
		l, err := NewLink(fastProfile(), LinkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, c := dialSession(t, &Dialer{Link: l}, ln.Addr().String(), mc.version, clientCfg)
		runSession(t, m)
		m.Close()
		wg.Wait()
		if serr != nil {
			t.Fatal(serr)
		}
		checkLedger(t, mc, l, c, raw, plain)
	})
}

func TestConnectBytesFollowTheReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wrap, clientCfg := serverTLS(t, tls.VersionTLS13)
		ln := memnet.Listen("hub")
		defer ln.Close()
		served := make(chan error)
		go func() {
			for {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					_, _, err := serveSession(s, wrap)
					served <- err
				}()
			}
		}()
		l, err := NewLink(fastProfile(), LinkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d := &Dialer{Link: l, Transport: MemTransport(map[string]*memnet.Listener{":8883": ln})}
		ctx := context.Background()
		reasons := []struct {
			ctx  context.Context
			want ConnReason
		}{
			{ctx, ReasonInitial},
			{ctx, ReasonReconnect},
			{WithConnReason(ctx, ReasonTokenRenewal), ReasonTokenRenewal},
		}
		var before Snapshot
		for _, r := range reasons {
			m, err := d.DialTLS(r.ctx, "tcp", "hub.test:8883", clientCfg, &frameClassifier{})
			if err != nil {
				t.Fatal(err)
			}
			if got := m.(*meteredConn).link.Reason(); got != r.want {
				t.Errorf("reason %s, want %s", got, r.want)
			}
			runSession(t, m)
			m.Close()
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			after := l.Ledger().Snapshot()
			charged := r.want.connectClass()
			for _, layer := range []Layer{LayerProtocol, LayerTLS, LayerIP} {
				for _, cl := range []Class{ClassConnect, ClassReconnect, ClassTokenRenewal} {
					delta := after.Bytes(layer, Up, cl) - before.Bytes(layer, Up, cl)
					if (cl == charged) != (delta > 0) {
						t.Errorf("%s connection: %s %s grew by %d", r.want, layer, cl, delta)
					}
				}
			}
			if after.Conns(r.want) != before.Conns(r.want)+1 {
				t.Errorf("connection count for %s did not grow", r.want)
			}
			before = after
		}
	})
}

func TestClassifierThatHoldsBytesUntilClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := memnet.Listen("hub")
		defer ln.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s, _ := ln.Accept()
			io.Copy(io.Discard, s)
			s.Close()
		}()
		l, _ := NewLink(fastProfile(), LinkOptions{})
		d := &Dialer{Link: l, Transport: MemTransport(map[string]*memnet.Listener{":1883": ln})}
		m, err := d.DialPlain(context.Background(), "tcp", "hub:1883", &frameClassifier{})
		if err != nil {
			t.Fatal(err)
		}
		m.Write(frame(ClassTelemetry, 10))
		m.Write([]byte{byte(ClassTwin), 0}) // a header cut short: the classifier holds it
		m.Close()
		<-done
		s := l.Ledger().Snapshot()
		if got := s.Bytes(LayerProtocol, Up, ClassOther); got != 2 {
			t.Errorf("held bytes flushed to other: %d, want 2", got)
		}
		if got := s.Bytes(LayerTLS, Up, ClassOther); got != 2 {
			t.Errorf("their stream bytes: %d in other, want 2", got)
		}
		if got, want := s.Total(LayerTLS, Up), uint64(15); got != want {
			t.Errorf("tls up %d, want %d", got, want)
		}
	})
}

func TestHTTPTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cert, pool := testCert(t)
		ln := memnet.Listen("hub-https")
		var mu sync.Mutex
		var raws []*countingConn
		tln := tls.NewListener(listenerFunc{ln, func(c net.Conn) net.Conn {
			cc := &countingConn{Conn: c}
			mu.Lock()
			raws = append(raws, cc)
			mu.Unlock()
			return cc
		}}, &tls.Config{Certificates: []tls.Certificate{cert}})
		closed := make(chan struct{}, 4)
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}),
			ConnState: func(_ net.Conn, st http.ConnState) {
				if st == http.StateClosed {
					closed <- struct{}{}
				}
			},
		}
		go srv.Serve(tln)
		l, _ := NewLink(fastProfile(), LinkOptions{})
		d := &Dialer{Link: l, Transport: MemTransport(map[string]*memnet.Listener{":443": ln})}
		client := &http.Client{Transport: d.HTTPTransport(&tls.Config{RootCAs: pool}, nil)}
		for range 3 {
			resp, err := client.Post("https://hub.test/devices/d1/messages/events?api-version=2021-04-12",
				"application/json", strings.NewReader(`{"t":21.5}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		client.CloseIdleConnections()
		<-closed // the server read the device's close_notify and EOF
		srv.Close()
		synctest.Wait()
		s := l.Ledger().Snapshot()
		if s.Conns(ReasonInitial) != 1 || s.Conns(ReasonReconnect) != 0 {
			t.Errorf("connections: %d initial, %d reconnect; want one kept alive", s.Conns(ReasonInitial), s.Conns(ReasonReconnect))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(raws) != 1 {
			t.Fatalf("%d server connections", len(raws))
		}
		rr, _ := raws[0].counts()
		if got := s.Total(LayerTLS, Up); int64(got) != rr {
			t.Errorf("tls up %d, server read %d", got, rr)
		}
		if s.Bytes(LayerProtocol, Up, ClassOther) == 0 || s.Bytes(LayerTLS, Up, ClassOther) == 0 {
			t.Error("with no classifier the requests should count as other")
		}
	})
}

// listenerFunc wraps each accepted connection.
type listenerFunc struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l listenerFunc) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

func TestRecordOverhead(t *testing.T) {
	tests := []struct {
		version uint16
		suite   uint16
		want    int
	}{
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, 22},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, 29},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, 21},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, 61},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, 49},
	}
	for _, tc := range tests {
		t.Run(tls.CipherSuiteName(tc.suite), func(t *testing.T) {
			if got := recordOverhead(stateConn{tls.ConnectionState{Version: tc.version, CipherSuite: tc.suite}}); got != tc.want {
				t.Fatalf("overhead %d, want %d", got, tc.want)
			}
		})
	}
}

type stateConn struct{ cs tls.ConnectionState }

func (stateConn) Read([]byte) (int, error)               { return 0, io.EOF }
func (stateConn) Write(p []byte) (int, error)            { return len(p), nil }
func (stateConn) Close() error                           { return nil }
func (stateConn) LocalAddr() net.Addr                    { return nil }
func (stateConn) RemoteAddr() net.Addr                   { return nil }
func (stateConn) SetDeadline(time.Time) error            { return nil }
func (stateConn) SetReadDeadline(time.Time) error        { return nil }
func (stateConn) SetWriteDeadline(time.Time) error       { return nil }
func (s stateConn) ConnectionState() tls.ConnectionState { return s.cs }
