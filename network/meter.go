package network

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// flusher is what a classifier implements to give up the bytes it holds back
// when a connection ends mid-packet (network/classify's Flusher).
type flusher interface {
	Flush(dir Direction, attribute func(c Class, n int))
}

// otherClassifier puts every byte in ClassOther; it stands in for a nil
// Classifier.
type otherClassifier struct{}

func (otherClassifier) Classify(_ Direction, p []byte, attribute func(Class, int)) {
	attribute(ClassOther, len(p))
}

// meteredConn is the protocol layer: the plaintext under TLS (or the stream
// itself without TLS), counted and classified.
type meteredConn struct {
	net.Conn
	link     *Conn
	cl       Classifier
	cmu      sync.Mutex // the classifier sees one call at a time
	rmu, wmu sync.Mutex // a Read or Write and its matching stay together
	started  atomic.Bool
	up, down func(Class, int)
}

// Meter wraps inner, the TLS connection layered on c (or c itself when there
// is no TLS), so that its plaintext is counted on the protocol layer and
// classified by cl, which also attributes c's tls and ip bytes to classes.
// Until the first Read or Write on the returned conn (which completes the TLS
// handshake if the caller did not), every byte counts as connect. A nil cl
// puts every byte in ClassOther.
//
// Where WebSockets are used, meter the connection under them: the protocol
// layer then includes the HTTP upgrade and the frames, and cl (a WebSocket
// classifier around the protocol's) classifies what the frames carry.
func (c *Conn) Meter(inner net.Conn, cl Classifier) net.Conn {
	if cl == nil {
		cl = otherClassifier{}
	}
	m := &meteredConn{Conn: inner, link: c, cl: cl}
	m.up = func(k Class, n int) { m.attribute(Up, k, n) }
	m.down = func(k Class, n int) { m.attribute(Down, k, n) }
	if inner == net.Conn(c) {
		c.enterApp(true, 0)
		m.started.Store(true)
	}
	return m
}

func (m *meteredConn) attribute(d Direction, c Class, n int) {
	m.link.amu.Lock()
	m.link.acct.classified(d, c, n)
	m.link.amu.Unlock()
}

// start completes the TLS handshake and ends the set-up phase.
func (m *meteredConn) start() error {
	if m.started.Load() {
		return nil
	}
	if h, ok := m.Conn.(interface{ HandshakeContext(context.Context) error }); ok {
		if err := h.HandshakeContext(context.Background()); err != nil {
			return err
		}
	}
	m.link.enterApp(false, recordOverhead(m.Conn))
	m.started.Store(true)
	return nil
}

func (m *meteredConn) Write(p []byte) (int, error) {
	if err := m.start(); err != nil {
		return 0, err
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.link.amu.Lock()
	m.link.acct.beginWrite(len(p))
	m.link.amu.Unlock()
	n, err := m.Conn.Write(p)
	m.link.amu.Lock()
	m.link.acct.endWrite(n)
	m.link.amu.Unlock()
	if n > 0 {
		m.cmu.Lock()
		m.cl.Classify(Up, p[:n], m.up)
		m.cmu.Unlock()
	}
	return n, err
}

func (m *meteredConn) Read(p []byte) (int, error) {
	if err := m.start(); err != nil {
		return 0, err
	}
	m.rmu.Lock()
	defer m.rmu.Unlock()
	n, err := m.Conn.Read(p)
	m.link.amu.Lock()
	m.link.acct.readDone(n)
	m.link.amu.Unlock()
	if n > 0 {
		m.cmu.Lock()
		m.cl.Classify(Down, p[:n], m.down)
		m.cmu.Unlock()
	}
	return n, err
}

// Close gives the classifier's held-back bytes up to ClassOther, then closes.
func (m *meteredConn) Close() error {
	if f, ok := m.cl.(flusher); ok {
		m.cmu.Lock()
		f.Flush(Up, m.up)
		f.Flush(Down, m.down)
		m.cmu.Unlock()
	}
	return m.Conn.Close()
}

// recordOverhead is the ciphertext bytes one application-data record adds to
// its plaintext with the negotiated version and cipher suite (spec §3.2): the
// 5-byte header, plus for TLS 1.3 the inner content type and a 16-byte tag;
// for TLS 1.2 AES-GCM an 8-byte explicit nonce and the tag, ChaCha20-Poly1305
// the tag only, CBC an IV, a MAC and on average 8 bytes of padding.
func recordOverhead(c net.Conn) int {
	const gcm12 = 5 + 8 + 16
	s, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return gcm12
	}
	cs := s.ConnectionState()
	if cs.Version == tls.VersionTLS13 {
		return 5 + 1 + 16
	}
	name := tls.CipherSuiteName(cs.CipherSuite)
	switch {
	case strings.Contains(name, "CHACHA20"):
		return 5 + 16
	case strings.HasSuffix(name, "CBC_SHA256"):
		return 5 + 16 + 32 + 8
	case strings.HasSuffix(name, "CBC_SHA"):
		return 5 + 16 + 20 + 8
	}
	return gcm12
}
