package amqp

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/internal/hubtest"
)

func TestMain(m *testing.M) {
	code := hubtest.Main(m)
	if left := amqpLeaks(); left != "" && code == 0 {
		fmt.Fprintf(os.Stderr, "go-amqp or WebSocket goroutines outlived the clients' Close:\n%s\n", left)
		code = 1
	}
	os.Exit(code)
}

// amqpLeaks returns the stacks of go-amqp and WebSocket goroutines still
// running, which hubtest does not look for, waiting up to five seconds for
// them to end; "" means none.
func amqpLeaks() string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "github.com/Azure/go-amqp") || strings.Contains(g, "github.com/coder/websocket") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return strings.Join(left, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// device is a device's configuration for amqp or amqp-ws against the
// emulator. The hubtest fixture knows the MQTT and HTTPS ports; AMQP over TLS
// has a listener of its own, on loopback or in memory.
func device(t testing.TB, env *hubtest.Env, proto protocols.Protocol, id string) (protocols.Config, *network.Link) {
	t.Helper()
	cfg, link := env.Device(t, proto, id)
	if proto == protocols.AMQP {
		if env.InMemory {
			cfg.Address = net.JoinHostPort(hubtest.HostName, strconv.Itoa(protocols.PortAMQP))
			cfg.Dialer = &network.Dialer{Link: link, Transport: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return env.Server.Dial(ctx, "amqp")
			}}
		} else {
			cfg.Address = fmt.Sprintf("127.0.0.1:%d", env.Server.AMQPPort())
		}
	}
	return cfg, link
}

func newClient(t testing.TB, cfg protocols.Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// recorder collects what the hub pushed to a device's handlers.
type recorder struct {
	c2d     chan *protocols.C2DMessage
	desired chan desired
	states  chan state
	mu      sync.Mutex
	outcome func(*protocols.C2DMessage) protocols.Outcome
}

type desired struct {
	patch   string
	version int64
}

type state struct {
	connected bool
	err       error
}

func newRecorder() *recorder {
	return &recorder{c2d: make(chan *protocols.C2DMessage, 16), desired: make(chan desired, 16), states: make(chan state, 16)}
}

func (r *recorder) setOutcome(f func(*protocols.C2DMessage) protocols.Outcome) {
	r.mu.Lock()
	r.outcome = f
	r.mu.Unlock()
}

func (r *recorder) register(c *Client) {
	c.OnC2D(func(_ context.Context, m *protocols.C2DMessage) protocols.Outcome {
		r.c2d <- m
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.outcome == nil {
			return protocols.Complete
		}
		return r.outcome(m)
	})
	c.OnMethod(func(_ context.Context, name string, payload []byte) (int, []byte) {
		return 201, []byte(`{"method":"` + name + `","got":` + string(payload) + `}`)
	})
	c.OnDesired(func(patch []byte, version int64) { r.desired <- desired{string(patch), version} })
	c.OnState(func(connected bool, err error) { r.states <- state{connected, err} })
}

func next[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
		var zero T
		return zero
	}
}

// quiet fails the test if a state change has been reported.
func quiet(t testing.TB, r *recorder) {
	t.Helper()
	select {
	case st := <-r.states:
		t.Fatalf("unexpected state change: %v %v", st.connected, st.err)
	default:
	}
}
