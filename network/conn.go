package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNATExpired is returned by a connection that stayed silent longer than the
// profile's NATIdleTimeout: the carrier NAT forgot it, so neither end can reach
// the other any more.
var ErrNATExpired = errors.New("the carrier NAT dropped the idle connection: send keep-alives more often than the profile's nat_idle_timeout")

const (
	// maxUpQueue bounds the uplink bytes a connection holds in flight in the
	// model, like a socket send buffer: Write blocks beyond it.
	maxUpQueue = 256 << 10
	// linger bounds how long a closed connection keeps delivering what it had
	// queued before the underlying connection is closed regardless.
	linger = 30 * time.Second
)

// Conn is one TCP connection of a device, carried over its Link. It is the
// ciphertext layer: what it reads and writes is counted on the tls and ip
// layers. Put TLS on top of it and wrap that with [Conn.Meter] for the protocol
// layer and for attribution to classes.
//
// Uplink bytes are written to the underlying connection when the model says
// they arrive, by at most one timer per connection; downlink bytes are held in
// the caller's Read until the model says they reach the device. A connection
// with nothing in flight has no goroutine and no running timer of its own.
type Conn struct {
	link  *Link
	under net.Conn

	amu        sync.Mutex // guards acct and lastActive
	acct       acct
	lastActive time.Time

	wmu        sync.Mutex // one Write at a time
	qmu        sync.Mutex // guards the fields below up to underClosed
	queue      []upChunk
	queued     int
	delivering bool
	timer      Timer
	space      chan struct{} // closed when the queue shrinks; nil while nobody waits
	werr       error
	closing    bool
	underDone  bool

	rmu    sync.Mutex // one Read at a time; guards in and rerr
	in     inbound
	rerr   error
	wake   chan struct{} // tokens for the reader holding data: timer, Close, deadline, PSM wake
	rtimer Timer
	rdl    atomic.Int64 // read deadline in Unix nanoseconds on the link's clock; 0 for none

	closed atomic.Bool
}

type upChunk struct {
	buf *[]byte
	n   int
	at  time.Time
}

// inbound is downlink bytes read from the underlying connection and not yet
// handed to the caller.
type inbound struct {
	data      []byte
	buf       *[]byte // pooled storage once the bytes outlive the Read that got them
	inCaller  bool    // data aliases the caller's buffer
	n         int     // size of the burst, for the model
	more      bool    // the read filled the caller's buffer: the burst may go on
	readAt    time.Time
	te        time.Time // when the burst reached the base station
	scheduled bool
	deliver   time.Time
}

func newConn(l *Link, under net.Conn, reason ConnReason, now time.Time) *Conn {
	c := &Conn{link: l, under: under, wake: make(chan struct{}, 1), lastActive: now}
	c.acct.ledger = l.ledger
	c.acct.reason = reason
	c.acct.tcp = newTCPModel(&l.p)
	return c
}

// Reason is why the connection was opened.
func (c *Conn) Reason() ConnReason { return c.acct.reason }

// Stats returns the connection's raw byte counts.
func (c *Conn) Stats() ConnStats {
	c.amu.Lock()
	defer c.amu.Unlock()
	var cost tcpCost
	c.acct.tcp.settle(c.link.clock.Now(), &cost)
	c.acct.cost(&cost, [numDirections]int{})
	return c.acct.stats
}

func (c *Conn) LocalAddr() net.Addr  { return c.under.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.under.RemoteAddr() }

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "catm", Source: c.under.LocalAddr(), Addr: c.under.RemoteAddr(), Err: err}
}

// natCheck fails the connection if it was silent for longer than the NAT
// keeps its mapping. c.amu must be held.
func (c *Conn) natCheck(now time.Time) error {
	t := c.link.p.NATIdleTimeout
	if t > 0 && now.Sub(c.lastActive) > t {
		return ErrNATExpired
	}
	c.lastActive = now
	return nil
}

// fail ends a connection the model killed.
func (c *Conn) fail(err error) {
	c.qmu.Lock()
	if c.werr == nil {
		c.werr = err
	}
	c.qmu.Unlock()
	c.under.Close()
}

// Write sends b over the link. It returns once the model has b in flight, as a
// socket returns once b is in its send buffer.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	c.qmu.Lock()
	werr := c.werr
	c.qmu.Unlock()
	if werr != nil {
		return 0, c.opErr("write", werr)
	}
	if len(b) == 0 {
		return 0, nil
	}
	l := c.link
	now := l.clock.Now()
	c.amu.Lock()
	if err := c.natCheck(now); err != nil {
		c.amu.Unlock()
		c.fail(err)
		return 0, c.opErr("write", err)
	}
	c.amu.Unlock()

	bu := l.sendUp(now, len(b))

	c.amu.Lock()
	var cost tcpCost
	c.acct.tcp.data(Up, bu.start, bu.deliver, len(b), false, &cost)
	c.acct.cost(&cost, [numDirections]int{Up: bu.resentBytes})
	c.acct.wire(Up, b)
	c.amu.Unlock()
	return c.enqueue(b, bu.deliver, now)
}

// enqueue hands b to the underlying connection at at: now, if nothing is
// queued and at has come, else through the delivery timer.
func (c *Conn) enqueue(b []byte, at, now time.Time) (int, error) {
	c.qmu.Lock()
	for c.queued >= maxUpQueue && c.werr == nil {
		if c.space == nil {
			c.space = make(chan struct{})
		}
		ch := c.space
		c.qmu.Unlock()
		<-ch
		c.qmu.Lock()
	}
	if c.werr != nil {
		err := c.werr
		c.qmu.Unlock()
		return 0, c.opErr("write", err)
	}
	if len(c.queue) == 0 && !c.delivering && !at.After(now) {
		c.delivering = true
		c.qmu.Unlock()
		_, err := c.under.Write(b)
		c.qmu.Lock()
		c.delivering = false
		if err != nil && c.werr == nil {
			c.werr = err
		}
		closeNow := c.closing && len(c.queue) == 0 && !c.underDone // Close came meanwhile
		if closeNow {
			c.underDone = true
		}
		c.qmu.Unlock()
		if closeNow {
			c.under.Close()
		}
		if err != nil {
			return 0, err
		}
		return len(b), nil
	}
	wasEmpty := len(c.queue) == 0
	for p := b; len(p) > 0; {
		buf := getBuf(len(p))
		k := copy((*buf)[:cap(*buf)], p)
		c.queue = append(c.queue, upChunk{buf: buf, n: k, at: at})
		c.queued += k
		p = p[k:]
	}
	if wasEmpty && !c.delivering {
		c.arm(at.Sub(now))
	}
	c.qmu.Unlock()
	return len(b), nil
}

// arm sets the delivery timer. c.qmu must be held.
func (c *Conn) arm(d time.Duration) {
	if c.timer == nil {
		c.timer = c.link.clock.AfterFunc(d, c.deliverDue)
		return
	}
	c.timer.Reset(d)
}

// deliverDue writes every queued chunk whose time has come, then re-arms the
// timer for the next one. It runs on the timer's goroutine.
func (c *Conn) deliverDue() {
	c.qmu.Lock()
	if c.delivering {
		c.qmu.Unlock()
		return
	}
	c.delivering = true
	for len(c.queue) > 0 && c.werr == nil {
		h := c.queue[0]
		now := c.link.clock.Now()
		if h.at.After(now) {
			c.arm(h.at.Sub(now))
			break
		}
		copy(c.queue, c.queue[1:])
		c.queue[len(c.queue)-1] = upChunk{}
		c.queue = c.queue[:len(c.queue)-1]
		c.queued -= h.n
		if c.space != nil {
			close(c.space)
			c.space = nil
		}
		c.qmu.Unlock()
		_, err := c.under.Write((*h.buf)[:h.n])
		putBuf(h.buf)
		c.qmu.Lock()
		if err != nil && c.werr == nil {
			c.werr = err
		}
	}
	if c.werr != nil {
		c.dropQueue()
	}
	c.delivering = false
	closeNow := c.closing && len(c.queue) == 0 && !c.underDone
	if closeNow {
		c.underDone = true
	}
	c.qmu.Unlock()
	if closeNow {
		c.under.Close()
	}
}

// dropQueue discards queued uplink. c.qmu must be held.
func (c *Conn) dropQueue() {
	for i := range c.queue {
		putBuf(c.queue[i].buf)
		c.queue[i] = upChunk{}
	}
	c.queue = c.queue[:0]
	c.queued = 0
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// Read returns downlink bytes once the model says they reached the device. It
// returns at most one TLS record per call, so that the meter above knows which
// records crypto/tls consumed (see the package documentation).
func (c *Conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(b) == 0 {
		return 0, nil
	}
	for {
		if c.closed.Load() {
			return 0, c.opErr("read", net.ErrClosed)
		}
		if c.in.data == nil {
			if c.rerr != nil {
				return 0, c.readErr(c.rerr)
			}
			n, err := c.under.Read(b)
			if n == 0 {
				if err == nil {
					continue
				}
				return 0, c.readErr(err)
			}
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				c.rerr = err // io.EOF or a broken connection: after these bytes
			}
			if err := c.arrive(b[:n], n == len(b)); err != nil {
				return 0, c.opErr("read", err)
			}
		}
		if err := c.deliverWait(); err != nil {
			c.stash()
			return 0, err
		}
		return c.handOver(b), nil
	}
}

// arrive takes a burst read from the underlying connection.
func (c *Conn) arrive(p []byte, more bool) error {
	l := c.link
	now := l.clock.Now()
	c.amu.Lock()
	err := c.natCheck(now)
	c.amu.Unlock()
	if err != nil {
		c.fail(err)
		return err
	}
	c.in = inbound{data: p, inCaller: true, n: len(p), more: more, readAt: now, te: l.arrival(now)}
	return nil
}

// readErr books the end of the stream.
func (c *Conn) readErr(err error) error {
	if err == io.EOF {
		c.amu.Lock()
		var cost tcpCost
		c.acct.tcp.peerClosed(c.link.clock.Now(), &cost)
		c.acct.cost(&cost, [numDirections]int{})
		c.amu.Unlock()
	}
	return err
}

// deliverWait holds the reader until the pending burst reaches the device:
// first until the device can be paged (or woken from PSM), then through the
// downlink's serialisation.
func (c *Conn) deliverWait() error {
	l := c.link
	if !c.in.scheduled {
		for {
			at, asleep := l.reach(c.in.te, c)
			if !asleep {
				if err := c.sleep(at, false); err != nil {
					return err
				}
				break
			}
			err := c.sleep(at, true)
			l.forgetSleeper(c)
			if err != nil {
				return err
			}
			c.in.te = maxTime(c.in.te, l.clock.Now())
		}
		bu := l.sendDown(maxTime(c.in.te, l.clock.Now()), c.in.n)
		c.amu.Lock()
		var cost tcpCost
		c.acct.tcp.data(Down, c.in.readAt, bu.deliver, c.in.n, c.in.more, &cost)
		c.acct.cost(&cost, [numDirections]int{Down: bu.resentBytes})
		c.amu.Unlock()
		c.in.scheduled, c.in.deliver = true, bu.deliver
	}
	return c.sleep(c.in.deliver, false)
}

// sleep waits on the link's clock until t, or once for any token when once is
// set. Close ends it with net.ErrClosed and the read deadline with a timeout.
func (c *Conn) sleep(t time.Time, once bool) error {
	for {
		if c.closed.Load() {
			return c.opErr("read", net.ErrClosed)
		}
		now := c.link.clock.Now()
		d := t.Sub(now)
		if d <= 0 {
			return nil
		}
		if dl := c.rdl.Load(); dl != 0 {
			left := time.Duration(dl - now.UnixNano())
			if left <= 0 {
				return c.opErr("read", os.ErrDeadlineExceeded)
			}
			d = min(d, left)
		}
		if c.rtimer == nil {
			c.rtimer = c.link.clock.AfterFunc(d, c.poke)
		} else {
			c.rtimer.Reset(d)
		}
		<-c.wake
		if once {
			return nil
		}
	}
}

// poke wakes the reader, if one is holding data.
func (c *Conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stash moves pending bytes out of the caller's buffer before Read returns
// without them.
func (c *Conn) stash() {
	if c.in.inCaller {
		buf := getBuf(len(c.in.data))
		*buf = append((*buf)[:0], c.in.data...)
		c.in.data, c.in.buf, c.in.inCaller = *buf, buf, false
	}
}

// handOver gives the caller the pending bytes up to the end of the current TLS
// record.
func (c *Conn) handOver(b []byte) int {
	c.amu.Lock()
	defer c.amu.Unlock()
	k := len(c.in.data)
	if !(c.acct.phase == phaseApp && c.acct.plain) {
		k = c.acct.scan[Down].span(c.in.data)
	}
	k = min(k, len(b))
	if c.in.inCaller {
		if k < len(c.in.data) {
			rest := c.in.data[k:]
			buf := getBuf(len(rest))
			*buf = append((*buf)[:0], rest...)
			c.in.data, c.in.buf, c.in.inCaller = *buf, buf, false
		} else {
			c.in = inbound{}
		}
	} else {
		copy(b, c.in.data[:k])
		c.in.data = c.in.data[k:]
		if len(c.in.data) == 0 {
			putBuf(c.in.buf)
			c.in = inbound{}
		}
	}
	c.acct.wire(Down, b[:k])
	return k
}

// Close closes the connection. Uplink still in flight is delivered first, as
// the kernel does after close(2), then the underlying connection is closed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	l := c.link
	now := l.clock.Now()
	l.touch(now)
	c.amu.Lock()
	var cost tcpCost
	c.acct.tcp.deviceClosed(now, &cost)
	c.acct.cost(&cost, [numDirections]int{})
	c.acct.flush()
	c.amu.Unlock()
	c.poke()
	l.unregister(c)

	c.qmu.Lock()
	c.closing = true
	closeNow := len(c.queue) == 0 && !c.delivering && !c.underDone
	if closeNow {
		c.underDone = true
	}
	c.qmu.Unlock()
	if closeNow {
		return c.under.Close()
	}
	c.under.SetWriteDeadline(time.Now().Add(linger))
	return nil
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline bounds Read, including the time data is held by the model.
// Deadlines are read on the link's clock.
func (c *Conn) SetReadDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.rdl.Store(ns)
	c.poke()
	return c.under.SetReadDeadline(t)
}

// SetWriteDeadline bounds writes to the underlying connection.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.under.SetWriteDeadline(t)
}

// enterApp ends the set-up phase; see attrib.go.
func (c *Conn) enterApp(plain bool, ovh int) {
	c.amu.Lock()
	defer c.amu.Unlock()
	c.acct.enterApp(plain, ovh)
}

func (c *Conn) String() string {
	return fmt.Sprintf("catm %s->%s", c.under.LocalAddr(), c.under.RemoteAddr())
}

// Buffers for bytes in flight come in three sizes, so a small packet does not
// hold a record-sized buffer while it crosses the modelled link.
var bufClasses = [...]int{512, 4 << 10, recHeaderLen + maxRecordBody}

var bufPools [len(bufClasses)]sync.Pool

func getBuf(n int) *[]byte {
	for i, size := range bufClasses {
		if n <= size || i == len(bufClasses)-1 {
			if b, ok := bufPools[i].Get().(*[]byte); ok {
				return b
			}
			b := make([]byte, 0, size)
			return &b
		}
	}
	panic("unreachable")
}

func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	for i, size := range bufClasses {
		if cap(*b) == size {
			*b = (*b)[:0]
			bufPools[i].Put(b)
			return
		}
	}
}
