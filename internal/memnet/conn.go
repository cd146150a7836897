package memnet

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	chunkSize = 16 << 10
	// maxPending bounds the bytes queued in one direction; a writer blocks beyond it.
	maxPending = 256 << 10
)

type chunk struct {
	b    [chunkSize]byte
	r, w int
}

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// errPeerClosed is returned by Write when the peer has closed or stopped reading;
// it plays the part of EPIPE.
var errPeerClosed = errors.New("connection closed by peer")

// queue is one direction of a connection: written by one end, read by the other.
type queue struct {
	mu      sync.Mutex
	chunks  []*chunk
	size    int
	wclosed bool          // the writer is done: the reader gets io.EOF once drained
	rclosed bool          // the reader is gone: writes fail
	rwait   chan struct{} // closed to wake the reader; nil while nobody waits
	wwait   chan struct{} // closed to wake the writer
}

func wake(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}

func waitChan(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// read copies queued bytes into p. It must be called with q.mu held and q.size > 0.
func (q *queue) read(p []byte) int {
	n := 0
	for n < len(p) && q.size > 0 {
		c := q.chunks[0]
		k := copy(p[n:], c.b[c.r:c.w])
		c.r += k
		n += k
		q.size -= k
		if c.r == c.w {
			q.chunks[0] = nil
			q.chunks = q.chunks[1:]
			c.r, c.w = 0, 0
			chunkPool.Put(c)
		}
	}
	if len(q.chunks) == 0 {
		q.chunks = nil // an idle connection keeps no slice either
	}
	return n
}

// write queues up to maxPending-q.size bytes of p. It must be called with q.mu held.
func (q *queue) write(p []byte) int {
	room := maxPending - q.size
	if len(p) > room {
		p = p[:room]
	}
	n := 0
	for n < len(p) {
		var c *chunk
		if k := len(q.chunks); k > 0 && q.chunks[k-1].w < chunkSize {
			c = q.chunks[k-1]
		} else {
			c = chunkPool.Get().(*chunk)
			q.chunks = append(q.chunks, c)
		}
		k := copy(c.b[c.w:], p[n:])
		c.w += k
		n += k
	}
	q.size += n
	return n
}

// drop discards everything queued. It must be called with q.mu held.
func (q *queue) drop() {
	for i, c := range q.chunks {
		c.r, c.w = 0, 0
		chunkPool.Put(c)
		q.chunks[i] = nil
	}
	q.chunks = nil
	q.size = 0
}

// conn is one end of a connection.
type conn struct {
	rx, tx        *queue
	local, remote Addr
	rmu, wmu      sync.Mutex // one Read and one Write at a time, as on a socket
	closed        atomic.Bool
	rdl, wdl      deadline
}

func newPair(a, b Addr) (*conn, *conn) {
	ab, ba := new(queue), new(queue)
	return &conn{rx: ba, tx: ab, local: a, remote: b}, &conn{rx: ab, tx: ba, local: b, remote: a}
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mem", Source: c.local, Addr: c.remote, Err: err}
}

// Read reads queued bytes, waiting for some if there are none.
func (c *conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	q := c.rx
	for {
		q.mu.Lock()
		switch {
		case c.closed.Load():
			q.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		case len(p) == 0:
			q.mu.Unlock()
			return 0, nil
		case q.size > 0:
			n := q.read(p)
			wake(&q.wwait)
			q.mu.Unlock()
			return n, nil
		case q.wclosed:
			q.mu.Unlock()
			return 0, io.EOF
		case q.rclosed:
			q.mu.Unlock()
			return 0, io.EOF
		}
		dl, expired := c.rdl.wait()
		if expired {
			q.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		ch := waitChan(&q.rwait)
		q.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
	}
}

// Write queues p for the peer, waiting while the queue is full.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	q := c.tx
	n := 0
	for {
		q.mu.Lock()
		switch {
		case c.closed.Load():
			q.mu.Unlock()
			return n, c.opErr("write", net.ErrClosed)
		case q.wclosed:
			q.mu.Unlock()
			return n, c.opErr("write", errors.New("write after CloseWrite"))
		case q.rclosed:
			q.mu.Unlock()
			return n, c.opErr("write", errPeerClosed)
		}
		if k := q.write(p[n:]); k > 0 {
			n += k
			wake(&q.rwait)
		}
		if n == len(p) {
			q.mu.Unlock()
			return n, nil
		}
		dl, expired := c.wdl.wait()
		if expired {
			q.mu.Unlock()
			return n, os.ErrDeadlineExceeded
		}
		ch := waitChan(&q.wwait)
		q.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
	}
}

// Close closes both directions. The peer reads the bytes already queued and then
// io.EOF; its writes fail.
func (c *conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.tx.mu.Lock()
	c.tx.wclosed = true
	wake(&c.tx.rwait)
	wake(&c.tx.wwait)
	c.tx.mu.Unlock()
	c.rx.mu.Lock()
	c.rx.rclosed = true
	c.rx.drop()
	wake(&c.rx.rwait)
	wake(&c.rx.wwait)
	c.rx.mu.Unlock()
	c.rdl.stop()
	c.wdl.stop()
	return nil
}

// CloseWrite shuts down the writing side: the peer reads io.EOF after the bytes
// already queued, and reading on this end goes on.
func (c *conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	c.tx.mu.Lock()
	c.tx.wclosed = true
	wake(&c.tx.rwait)
	wake(&c.tx.wwait)
	c.tx.mu.Unlock()
	return nil
}

// CloseRead shuts down the reading side: queued and later bytes are discarded
// and the peer's writes fail.
func (c *conn) CloseRead() error {
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	c.rx.mu.Lock()
	c.rx.rclosed = true
	c.rx.drop()
	wake(&c.rx.rwait)
	wake(&c.rx.wwait)
	c.rx.mu.Unlock()
	return nil
}

func (c *conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	return nil
}

// deadline is a point in time after which waits fail. Its channel is closed when
// the deadline passes and replaced when a new deadline is set after that, so a
// waiter blocked on it sees a deadline moved while it waits (the technique
// net.Pipe uses). The channel and timer exist only once a deadline is set.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until its close is visible
	}
	d.timer = nil
	if d.cancel == nil {
		if t.IsZero() {
			return
		}
		d.cancel = make(chan struct{})
	}
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !closed {
			close(d.cancel)
		}
		return
	}
	if closed {
		d.cancel = make(chan struct{})
	}
	cancel := d.cancel
	d.timer = time.AfterFunc(dur, func() { close(cancel) })
}

// wait returns the channel to wait on (nil, which blocks forever, when no
// deadline is set) and whether the deadline has already passed.
func (d *deadline) wait() (<-chan struct{}, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		return nil, false
	}
	return d.cancel, isClosed(d.cancel)
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}
