package network

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/catmsim/catmsim/internal/memnet"
)

// DialFunc opens the real connection under a modelled one.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer opens a device's connections over its Link. It plugs in beneath every
// client the protocols use:
//
//   - paho: ClientOptions.SetCustomOpenConnectionFn calling DialTLS;
//   - go-amqp: amqp.NewConn over the conn DialTLS returns;
//   - net/http: the Transport from HTTPTransport (DialContext and
//     DialTLSContext both metered);
//   - coder/websocket: an http.Client with that Transport as its HTTPClient,
//     and a WebSocket classifier around the protocol's.
type Dialer struct {
	Link *Link
	// Transport opens the underlying connection. Nil means kernel sockets; use
	// MemTransport to reach an emulator in the same process without them.
	Transport DialFunc
}

type reasonKey struct{}

// WithConnReason returns a context telling the Dialer why the connection is
// opened. Without it the device's first connection is ReasonInitial and every
// later one ReasonReconnect.
func WithConnReason(ctx context.Context, r ConnReason) context.Context {
	return context.WithValue(ctx, reasonKey{}, r)
}

// DialContext is Dial returning a net.Conn, for APIs that take a dial function.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Dial waits out the modelled attach, RRC promotion and TCP handshake, then
// opens the underlying connection and returns it carried over the link.
func (d *Dialer) Dial(ctx context.Context, network, addr string) (*Conn, error) {
	l := d.Link
	reason, given := ctx.Value(reasonKey{}).(ConnReason)
	established, synLost, reason, err := l.handshake(l.clock.Now(), reason, given)
	if err != nil {
		return nil, fmt.Errorf("dial %s over the modelled link: %w", addr, err)
	}
	if err := l.sleepUntil(ctx, established); err != nil {
		return nil, fmt.Errorf("dial %s over the modelled link: %w", addr, err)
	}
	dial := d.Transport
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	under, err := dial(ctx, network, addr)
	if err != nil {
		// The SYNs went out all the same.
		syn := l.p.ipHeader() + l.p.SYNOptions
		l.ledger.Add(LayerIP, Up, reason.connectClass(), (1+synLost)*syn)
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := newConn(l, under, reason, l.clock.Now())
	var cost tcpCost
	c.acct.tcp.open(&l.p, synLost, &cost)
	c.acct.cost(&cost, [numDirections]int{})
	l.ledger.addConn(reason)
	l.register(c)
	return c, nil
}

// DialTLS dials, completes the TLS handshake and returns the metered
// plaintext connection (see Conn.Meter). cfg's ServerName defaults to addr's
// host.
func (d *Dialer) DialTLS(ctx context.Context, network, addr string, cfg *tls.Config, cl Classifier) (net.Conn, error) {
	c, err := d.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = new(tls.Config)
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		} else {
			cfg.ServerName = addr
		}
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return c.Meter(tc, cl), nil
}

// DialPlain dials and returns the metered connection without TLS.
func (d *Dialer) DialPlain(ctx context.Context, network, addr string, cl Classifier) (net.Conn, error) {
	c, err := d.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return c.Meter(c, cl), nil
}

// HTTPTransport returns an HTTP/1.1 transport whose connections are dialled
// over the link and metered, each with a classifier from newClassifier.
func (d *Dialer) HTTPTransport(cfg *tls.Config, newClassifier func() Classifier) *http.Transport {
	cl := func() Classifier {
		if newClassifier == nil {
			return nil
		}
		return newClassifier()
	}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialPlain(ctx, network, addr, cl())
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialTLS(ctx, network, addr, cfg, cl())
		},
		MaxIdleConnsPerHost: 1,
	}
}

// MemTransport returns a DialFunc that connects to in-memory listeners instead
// of kernel sockets: the address is looked up as given ("host:port"), then by
// port alone (":port").
func MemTransport(listeners map[string]*memnet.Listener) DialFunc {
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		l, ok := listeners[addr]
		if !ok {
			if _, port, err := net.SplitHostPort(addr); err == nil {
				l, ok = listeners[":"+port]
			}
		}
		if !ok {
			return nil, fmt.Errorf("no in-memory listener for %s: the emulator does not serve that address", addr)
		}
		return l.DialContext(ctx)
	}
}
