package network

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for hub.test and a pool that
// trusts it.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
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
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// fastProfile is "good" with delays small enough for tests on the real clock.
func fastProfile() Profile {
	p, _ := BuiltinProfile("good")
	p.Name = "fast"
	p.RTT, p.RTTJitter = 2*time.Millisecond, 0
	p.AttachTime, p.RRCSetup = 0, 0
	p.DownlinkBPS, p.UplinkBPS = 100_000_000, 100_000_000
	p.Loss = 0
	return p
}

// frame is a test protocol message: a class byte, a 2-byte length, a body.
func frame(c Class, body int) []byte {
	f := make([]byte, 3+body)
	f[0] = byte(c)
	f[1], f[2] = byte(body>>8), byte(body)
	for i := range body {
		f[3+i] = byte(i)
	}
	return f
}

// frameClassifier classifies a stream of frames. Like the real classifiers it
// holds back a frame's first bytes until its header is complete.
type frameClassifier struct {
	dir [numDirections]struct {
		hdr  []byte
		left int
		cls  Class
	}
}

func (f *frameClassifier) Classify(d Direction, p []byte, attribute func(Class, int)) {
	s := &f.dir[d]
	for len(p) > 0 {
		if s.left == 0 {
			k := min(3-len(s.hdr), len(p))
			s.hdr = append(s.hdr, p[:k]...)
			p = p[k:]
			if len(s.hdr) < 3 {
				return
			}
			s.cls = Class(s.hdr[0])
			if s.cls >= numClasses {
				s.cls = ClassOther
			}
			s.left = int(s.hdr[1])<<8 | int(s.hdr[2])
			attribute(s.cls, 3)
			s.hdr = s.hdr[:0]
			continue
		}
		k := min(s.left, len(p))
		attribute(s.cls, k)
		s.left -= k
		p = p[k:]
	}
}

func (f *frameClassifier) Flush(d Direction, attribute func(Class, int)) {
	s := &f.dir[d]
	if len(s.hdr) > 0 {
		attribute(ClassOther, len(s.hdr))
		s.hdr = s.hdr[:0]
	}
}

// countingConn counts what crosses a connection.
type countingConn struct {
	net.Conn
	mu          sync.Mutex
	read, wrote int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.wrote += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) counts() (read, wrote int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read, c.wrote
}

// fakeClock is a Clock that moves only when told to; timers fire in order,
// synchronously, inside Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	at     time.Time
	f      func()
	active bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f, active: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	return was
}

// Advance moves the clock by d, running every timer that falls due on the way.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if t.active && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		c.now = maxTime(c.now, next.at)
		next.active = false
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// activeTimers counts timers that are set.
func (c *fakeClock) activeTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.active {
			n++
		}
	}
	return n
}
