package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/internal/memnet"
)

// The ports IoT Hub listens on.
const (
	StandardMQTTPort  = 8883
	StandardAMQPPort  = 5671
	StandardHTTPSPort = 443
)

// WebSocketPath is where MQTT and AMQP over WebSockets connect (D-MQTT,
// D-AMQP); the device clients share it through internal/iothub.
const WebSocketPath = iothub.WebSocketPath

// WebSocket subprotocols of the two WebSocket transports.
const (
	SubprotocolMQTT = iothub.SubprotocolMQTT
	SubprotocolAMQP = iothub.SubprotocolAMQP
)

// ServerConfig says what the emulator serves and where.
type ServerConfig struct {
	Hub Config
	// ListenHost is the address the TCP listeners bind; 127.0.0.1 by default.
	// Only loopback addresses are sensible: the emulator is a local tool.
	ListenHost string
	// MQTTPort, HTTPSPort and MetricsPort choose the ports: 0 picks a free one
	// (the standard port first when PreferStandardPorts is set), -1 turns the
	// listener off.
	MQTTPort, HTTPSPort, MetricsPort int
	// AMQPPort chooses the AMQP over TLS port the same way (standard: 5671).
	AMQPPort int
	// PreferStandardPorts tries 8883, 5671 and 443 before falling back to free
	// ports.
	PreferStandardPorts bool
	// InMemory also serves in-memory listeners that a fleet in the same process
	// dials without kernel sockets (see Dial).
	InMemory bool
	// TLS are the TLS choices; ExtraNames are more names for the certificate.
	TLS        TLSOptions
	ExtraNames []string
	// ConnectTimeout is how long a new connection may take to finish its TLS
	// handshake and send CONNECT; 30 s when zero.
	ConnectTimeout time.Duration
}

// Endpoints are the emulator's addresses, as URLs.
type Endpoints struct {
	MQTT    string `json:"mqtt,omitempty"`
	MQTTWS  string `json:"mqtt_ws,omitempty"`
	AMQP    string `json:"amqp,omitempty"`
	AMQPWS  string `json:"amqp_ws,omitempty"`
	HTTPS   string `json:"https,omitempty"`
	Metrics string `json:"metrics,omitempty"`
}

// Server is a running emulator: a Hub behind its network front ends.
type Server struct {
	Hub   *Hub
	chain *Chain
	tls   *tls.Config
	cfg   ServerConfig

	mqtt    *mqttFront
	amqp    *amqpFront
	httpSrv *http.Server
	metrics *http.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	listeners []net.Listener
	mem       map[string]*memnet.Listener
	endpoints Endpoints
	mqttPort  int
	amqpPort  int
	httpsPort int
}

// Start builds a hub from cfg and starts serving it. Close stops it.
func Start(ctx context.Context, cfg ServerConfig) (*Server, error) {
	h, err := New(cfg.Hub)
	if err != nil {
		return nil, err
	}
	if cfg.ListenHost == "" {
		cfg.ListenHost = "127.0.0.1"
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	names := append([]string{h.HostName(), h.cfg.EventHubsNamespace, "localhost", "127.0.0.1", "::1", cfg.ListenHost}, cfg.ExtraNames...)
	chain, err := NewChain(dedupe(names))
	if err != nil {
		return nil, fmt.Errorf("making the emulator's certificates: %w", err)
	}
	tc, err := chain.ServerTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{Hub: h, chain: chain, tls: tc, cfg: cfg, ctx: ctx, cancel: cancel, mem: map[string]*memnet.Listener{}}
	if s.mqtt, err = newMQTTFront(h); err != nil {
		cancel()
		return nil, fmt.Errorf("starting the MQTT front end: %w", err)
	}
	aopts := defaultAMQPOptions()
	aopts.connectTimeout = cfg.ConnectTimeout
	s.amqp = newAMQPFront(h, aopts)
	s.httpSrv = &http.Server{Handler: http.HandlerFunc(s.routeHTTP), ReadHeaderTimeout: cfg.ConnectTimeout, ErrorLog: log.New(io.Discard, "", 0)}
	if err := s.listen(); err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) listen() error {
	host := s.cfg.ListenHost
	if s.cfg.MQTTPort >= 0 {
		l, port, err := s.bind(host, s.cfg.MQTTPort, StandardMQTTPort)
		if err != nil {
			return fmt.Errorf("MQTT listener: %w", err)
		}
		s.mqttPort = port
		s.endpoints.MQTT = "mqtts://" + net.JoinHostPort(host, strconv.Itoa(port))
		s.serveListener(l, s.handleMQTT)
	}
	if s.cfg.AMQPPort >= 0 {
		l, port, err := s.bind(host, s.cfg.AMQPPort, StandardAMQPPort)
		if err != nil {
			return fmt.Errorf("AMQP listener: %w", err)
		}
		s.amqpPort = port
		s.endpoints.AMQP = "amqps://" + net.JoinHostPort(host, strconv.Itoa(port))
		s.serveListener(l, s.handleAMQP)
	}
	if s.cfg.HTTPSPort >= 0 {
		l, port, err := s.bind(host, s.cfg.HTTPSPort, StandardHTTPSPort)
		if err != nil {
			return fmt.Errorf("HTTPS listener: %w", err)
		}
		s.httpsPort = port
		hp := net.JoinHostPort(host, strconv.Itoa(port))
		s.endpoints.MQTTWS = "wss://" + hp + WebSocketPath
		s.endpoints.AMQPWS = "wss://" + hp + WebSocketPath
		s.endpoints.HTTPS = "https://" + hp
		s.serveHTTPS(l)
	}
	if s.cfg.MetricsPort >= 0 {
		l, _, err := s.bind(host, s.cfg.MetricsPort, 0)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		s.endpoints.Metrics = "http://" + l.Addr().String() + "/metrics"
		s.metrics = &http.Server{Handler: metricsHandler(s.Hub), ReadHeaderTimeout: 10 * time.Second}
		s.track(func() { _ = s.metrics.Serve(l) })
	}
	if s.cfg.InMemory {
		for _, name := range []string{"mqtt", "amqp", "https"} {
			l := memnet.Listen("hub-" + name)
			s.mu.Lock()
			s.mem[name] = l
			s.mu.Unlock()
			switch name {
			case "mqtt":
				s.serveListener(l, s.handleMQTT)
			case "amqp":
				s.serveListener(l, s.handleAMQP)
			default:
				s.serveHTTPS(l)
			}
		}
	}
	return nil
}

// bind listens on port, or when port is 0 on the standard port if wanted and
// free, else on any free port.
func (s *Server) bind(host string, port, standard int) (net.Listener, int, error) {
	try := func(p int) (net.Listener, error) {
		return net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
	}
	var l net.Listener
	var err error
	switch {
	case port > 0:
		l, err = try(port)
	case s.cfg.PreferStandardPorts && standard > 0:
		if l, err = try(standard); err != nil {
			l, err = try(0)
		}
	default:
		l, err = try(0)
	}
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	return l, l.Addr().(*net.TCPAddr).Port, nil
}

// track runs f in a goroutine that Close waits for.
func (s *Server) track(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// serveListener accepts connections and hands each, in its own goroutine, to
// handle.
func (s *Server) serveListener(l net.Listener, handle func(net.Conn)) {
	s.track(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			s.track(func() { handle(c) })
		}
	})
}

func (s *Server) serveHTTPS(l net.Listener) {
	tl := tls.NewListener(l, s.tls)
	s.track(func() { _ = s.httpSrv.Serve(tl) })
}

// handleMQTT runs one MQTT-over-TLS connection: the TLS handshake and CONNECT
// must both arrive within the connect timeout.
func (s *Server) handleMQTT(raw net.Conn) {
	tc := tls.Server(raw, s.tls)
	_ = tc.SetDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		_ = tc.Close()
		s.Hub.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err.Error())
		return
	}
	s.mqtt.serve(tc, MQTT, peerCerts(tc.ConnectionState()))
}

// handleAMQP runs one AMQP-over-TLS connection: the TLS handshake, the AMQP
// header and open must all arrive within the connect timeout.
func (s *Server) handleAMQP(raw net.Conn) {
	tc := tls.Server(raw, s.tls)
	_ = tc.SetDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		_ = tc.Close()
		s.Hub.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err.Error())
		return
	}
	s.amqp.serve(tc, AMQP, peerCerts(tc.ConnectionState()))
}

func peerCerts(cs tls.ConnectionState) []*x509.Certificate {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates
}

// serveWebSocket accepts MQTT and AMQP over secure WebSockets.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{SubprotocolMQTT, SubprotocolAMQP}})
	if err != nil {
		return // Accept has answered the request
	}
	var certs []*x509.Certificate
	if r.TLS != nil {
		certs = peerCerts(*r.TLS)
	}
	switch ws.Subprotocol() {
	case SubprotocolMQTT:
		ws.SetReadLimit(mqttMaxPacket + 1024)
		nc := websocket.NetConn(s.ctx, ws, websocket.MessageBinary)
		_ = nc.SetDeadline(time.Now().Add(s.cfg.ConnectTimeout))
		s.wg.Add(1)
		defer s.wg.Done()
		s.mqtt.serve(nc, MQTTWebSocket, certs)
	case SubprotocolAMQP:
		// AMQP frames are a byte stream over binary messages; a message may
		// hold any number of frames, so only the frame size is limited.
		ws.SetReadLimit(-1)
		nc := websocket.NetConn(s.ctx, ws, websocket.MessageBinary)
		_ = nc.SetDeadline(time.Now().Add(s.cfg.ConnectTimeout))
		s.wg.Add(1)
		defer s.wg.Done()
		s.amqp.serve(nc, AMQPWebSocket, certs)
	default:
		_ = ws.Close(websocket.StatusPolicyViolation, "the WebSocket subprotocol must be mqtt or AMQPWSB10")
	}
}

// Endpoints are the emulator's TCP addresses.
func (s *Server) Endpoints() Endpoints {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endpoints
}

// MQTTPort is the MQTT listener's port (0 when off).
func (s *Server) MQTTPort() int { return s.mqttPort }

// AMQPPort is the AMQP listener's port (0 when off).
func (s *Server) AMQPPort() int { return s.amqpPort }

// HTTPSPort is the HTTPS and WebSocket listener's port (0 when off).
func (s *Server) HTTPSPort() int { return s.httpsPort }

// Chain is the emulator's certificate chain; its root is what clients trust.
func (s *Server) Chain() *Chain { return s.chain }

// Dial connects to one of the in-memory listeners ("mqtt", "amqp" or "https",
// which also carries WebSockets) without a kernel socket. The server must have been
// started with InMemory.
func (s *Server) Dial(ctx context.Context, listener string) (net.Conn, error) {
	s.mu.Lock()
	l := s.mem[listener]
	s.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("the emulator has no in-memory %q listener (start it with InMemory)", listener)
	}
	return l.DialContext(ctx)
}

// Close stops accepting, closes every connection and waits for the emulator's
// goroutines to end, or for ctx.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	for _, l := range s.listeners {
		_ = l.Close()
	}
	for _, l := range s.mem {
		_ = l.Close()
	}
	s.mu.Unlock()
	_ = s.httpSrv.Close()
	if s.metrics != nil {
		_ = s.metrics.Close()
	}
	if s.mqtt != nil {
		s.mqtt.close()
	}
	if s.amqp != nil {
		s.amqp.close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("closing the emulator: %w", ctx.Err())
	}
}
