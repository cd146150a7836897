package classify

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/network"
)

// recConn records what a client writes (up) and reads (down), in the order
// the bytes crossed the connection.
type recConn struct {
	net.Conn
	mu   *sync.Mutex
	segs *[]seg
}

func (c recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	*c.segs = append(*c.segs, seg{network.Up, bytes.Clone(p)})
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		*c.segs = append(*c.segs, seg{network.Down, bytes.Clone(p[:n])})
		c.mu.Unlock()
	}
	return n, err
}

// TestHTTPWithNetHTTP classifies what Go's own HTTP client and server put on
// the wire: keep-alive, Content-Length and chunked bodies in both directions,
// HEAD, 204 and a large chunked response. Requests are sent one after
// another, so every byte recorded between two requests belongs to the first.
func TestHTTPWithNetHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /devices/{id}/messages/events", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("HEAD /devices/{id}/messages/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "512")
	})
	mux.HandleFunc("GET /devices/{id}/messages/devicebound", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"5f1c"`)
		io.WriteString(w, "led=on")
	})
	mux.HandleFunc("DELETE /devices/{id}/messages/devicebound/{tok}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /twins/{id}/methods", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"status":200,"payload":"`+strings.Repeat("p", 10000)+`"}`) // over the buffer: chunked
	})
	mux.HandleFunc("GET /devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"deviceId":"d1"}`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on loopback: %v", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("serving: %v", err)
		}
	})

	var mu sync.Mutex
	var segs []seg
	dials := 0
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dials++
			mu.Unlock()
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return recConn{c, &mu, &segs}, err
		},
		DisableCompression: true,
		MaxConnsPerHost:    1,
	}}
	t.Cleanup(client.CloseIdleConnections)
	base := "http://" + ln.Addr().String()
	hideLen := func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) } // unknown length: chunked

	requests := []struct {
		method, path string
		body         io.Reader
		class        network.Class
	}{
		{"POST", "/devices/d1/messages/events?api-version=2021-04-12", strings.NewReader(`{"t":21.5}`), network.ClassTelemetry},
		{"POST", "/devices/d1/messages/events?api-version=2021-04-12", hideLen(strings.Repeat("x", 5000)), network.ClassTelemetry},
		{"HEAD", "/devices/d1/messages/events", nil, network.ClassOther},
		{"GET", "/devices/d1/messages/devicebound?api-version=2021-04-12", nil, network.ClassC2D},
		{"DELETE", "/devices/d1/messages/devicebound/5f1c?api-version=2021-04-12", nil, network.ClassC2D},
		{"POST", "/twins/d1/methods?api-version=2021-04-12", hideLen(`{"methodName":"reboot"}`), network.ClassMethod},
		{"GET", "/devices/d1", nil, network.ClassOther},
		{"POST", "/devices/d1/messages/events", strings.NewReader("last"), network.ClassTelemetry},
	}
	var w want = want{network.Up: {}, network.Down: {}}
	for _, r := range requests {
		mu.Lock()
		start := len(segs)
		mu.Unlock()
		req, err := http.NewRequest(r.method, base+r.path, r.body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// Every byte of the response was recorded by the Read that brought
		// it, before the body reader could see it, so the bytes since start
		// are this exchange's and nothing else's.
		mu.Lock()
		for _, s := range segs[start:] {
			w[s.dir][r.class] += len(s.b)
		}
		mu.Unlock()
	}
	mu.Lock()
	recorded, nDials := slicesClone(segs), dials
	mu.Unlock()
	if nDials != 1 {
		t.Fatalf("client dialled %d connections; the test needs one keep-alive connection", nDials)
	}
	var all [2][]byte
	for _, s := range recorded {
		all[s.dir] = append(all[s.dir], s.b...)
	}
	for d, b := range all {
		if !bytes.Contains(b, []byte("Transfer-Encoding: chunked")) {
			t.Fatalf("%s stream has no chunked message; the test lost its point", network.Direction(d))
		}
	}
	checkSplits(t, newHTTPPender(), recorded, w)
}

func slicesClone(s []seg) []seg { return append([]seg(nil), s...) }
