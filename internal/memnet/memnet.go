package memnet

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// Addr is the address of a memnet endpoint: the listener's name, or the name of a
// dialled endpoint ("name#7" for the seventh connection to listener "name").
type Addr string

// Network returns "mem".
func (Addr) Network() string { return "mem" }

func (a Addr) String() string { return string(a) }

// backlog is how many dialled connections may wait for Accept before DialContext
// blocks; the emulator's accept loop normally keeps it near empty.
const backlog = 512

// Listener accepts in-memory connections. It implements net.Listener.
type Listener struct {
	addr   Addr
	queue  chan *conn
	done   chan struct{}
	mu     sync.RWMutex // held for reading while a dial hands over its conn
	closed bool
	once   sync.Once
	seq    atomic.Uint64
}

// Listen returns a listener named name. Names are labels for logs and addresses,
// not a registry: whoever creates the listener hands it to whoever dials it.
func Listen(name string) *Listener {
	return &Listener{
		addr:  Addr(name),
		queue: make(chan *conn, backlog),
		done:  make(chan struct{}),
	}
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Accept waits for and returns the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "mem", Addr: l.addr, Err: net.ErrClosed}
	default:
	}
	select {
	case c := <-l.queue:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "mem", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close stops the listener. Blocked Accept and DialContext calls return, later
// ones fail, and connections dialled but not yet accepted are closed. Connections
// already accepted are not affected.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		for {
			select {
			case c := <-l.queue:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

// DialContext connects to the listener and returns the client end. It fails with
// an error wrapping net.ErrClosed once the listener is closed, and with the
// context's error when ctx ends before the connection is queued for Accept.
func (l *Listener) DialContext(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: l.addr, Err: err}
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: l.addr, Err: fmt.Errorf("listener is closed: %w", net.ErrClosed)}
	}
	peer := Addr(string(l.addr) + "#" + strconv.FormatUint(l.seq.Add(1), 10))
	client, server := newPair(peer, l.addr)
	select {
	case l.queue <- server:
		return client, nil
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: l.addr, Err: fmt.Errorf("listener is closed: %w", net.ErrClosed)}
	case <-ctx.Done():
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: l.addr, Err: ctx.Err()}
	}
}

// Pipe returns the two ends of a buffered in-memory connection.
func Pipe() (net.Conn, net.Conn) {
	a, b := newPair("pipe-a", "pipe-b")
	return a, b
}
