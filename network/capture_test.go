package network

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The capture check runs a TLS exchange through the Dialer over kernel sockets
// between two network namespaces joined by a veth pair with the profile's MTU,
// captures it with tshark on the device's side of the pair, and compares the
// modelled ip bytes with the captured IP bytes, per direction.
//
// The test binary plays both ends: the parent sets up the namespaces and the
// capture, then runs itself under `ip netns exec` as the server and as the
// device (TestCaptureRole, which does nothing unless captureRoleEnv is set).
// Set CATMSIM_CAPTURE_KEEP to a directory to keep the captures for Wireshark.

const (
	captureRoleEnv = "CATMSIM_CAPTURE_ROLE"
	captureAddrEnv = "CATMSIM_CAPTURE_ADDR"
	captureConfEnv = "CATMSIM_CAPTURE_CONF"
	captureTol     = 0.03
)

// captureConf is one capture case, passed to the helper processes as JSON.
type captureConf struct {
	Name       string
	IPv6       bool
	Timestamps bool
	// DelayedACK leaves Linux's delayed ACKs on (40 ms minimum) instead of
	// forcing an immediate ACK for every segment with the route's quickack.
	DelayedACK bool
}

// profile is the link the device uses: the "good" profile with the capture's
// MTU and timestamps, no modelled loss (the veth loses nothing), and latencies
// small enough for the test to be quick.
func (cc captureConf) profile() Profile {
	p, _ := BuiltinProfile("good")
	p.Name = "capture"
	p.MTU = 1430
	p.IPv6 = cc.IPv6
	p.TCPTimestamps = cc.Timestamps
	p.Loss = 0
	p.RTT, p.RTTJitter = 4*time.Millisecond, 0
	p.DownlinkBPS, p.UplinkBPS = 50_000_000, 50_000_000
	p.AttachTime, p.RRCSetup = 0, 0
	// Both ends are Linux: the SYN carries MSS, SACK-permitted and window
	// scale, and Linux acknowledges at once early in a connection
	// (quick-ack), which the route's quickack option makes permanent.
	p.SYNOptions = 12
	p.DelayedACK, p.PeerDelayedACK = 0, 0
	if cc.DelayedACK {
		p.DelayedACK, p.PeerDelayedACK = 40*time.Millisecond, 40*time.Millisecond
	}
	return p
}

type captureResult struct {
	Stats ConnStats
	Err   string
}

func TestCaptureRole(t *testing.T) {
	role := os.Getenv(captureRoleEnv)
	if role == "" {
		t.Skip("helper for TestCaptureMatchesModel; runs only inside its network namespaces")
	}
	var cc captureConf
	if err := json.Unmarshal([]byte(os.Getenv(captureConfEnv)), &cc); err != nil {
		t.Fatal(err)
	}
	addr := os.Getenv(captureAddrEnv)
	switch role {
	case "probe":
		// One datagram the capture can see; nothing listens for it.
		host, _, _ := net.SplitHostPort(addr)
		c, err := net.Dial("udp", net.JoinHostPort(host, "9"))
		if err == nil {
			c.Write([]byte("probe"))
			c.Close()
		}
	case "server":
		captureServer(t, addr)
	case "client":
		res := captureResult{}
		st, err := captureClient(cc, addr)
		res.Stats = st
		if err != nil {
			res.Err = err.Error()
		}
		json.NewEncoder(os.Stdout).Encode(res)
	}
}

// captureExchange is an MQTT-like session: a connect, publishes of several
// sizes each acknowledged, keep-alives, cloud-to-device messages the device
// acknowledges, and a disconnect after which the server closes.
var captureExchange = []struct {
	up, down int // bytes the device sends, then bytes the server answers
}{
	{260, 4},                       // CONNECT, CONNACK
	{54, 5},                        // SUBSCRIBE, SUBACK
	{150, 4}, {1200, 4}, {5000, 4}, // publishes
	{2, 2},               // PINGREQ, PINGRESP
	{4, 300}, {4, 12000}, // c2d pulls: ack, message
	{40000, 4}, // a big publish
	{2, 2},
	{150, 4}, {150, 4}, {150, 4},
}

func captureServer(t *testing.T, addr string) {
	cert, _ := testCert(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}})
	buf := make([]byte, 64<<10)
	for _, step := range captureExchange {
		if _, err := io.ReadFull(s, buf[:step.up]); err != nil {
			t.Fatalf("server read: %v", err)
		}
		if _, err := s.Write(buf[:step.down]); err != nil {
			t.Fatalf("server write: %v", err)
		}
	}
	if _, err := io.ReadFull(s, buf[:2]); err != nil { // DISCONNECT
		t.Fatalf("server read: %v", err)
	}
	s.CloseWrite() // close_notify; the device closes the TCP connection first
	io.Copy(io.Discard, s)
	raw.Close()
}

func captureClient(cc captureConf, addr string) (ConnStats, error) {
	l, err := NewLink(cc.profile(), LinkOptions{})
	if err != nil {
		return ConnStats{}, err
	}
	d := &Dialer{Link: l}
	ctx := context.Background()
	c, err := d.Dial(ctx, "tcp", addr)
	if err != nil {
		return ConnStats{}, err
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	m := c.Meter(tc, nil)
	buf := make([]byte, 64<<10)
	for _, step := range captureExchange {
		if _, err := m.Write(buf[:step.up]); err != nil {
			return c.Stats(), err
		}
		if _, err := io.ReadFull(m, buf[:step.down]); err != nil {
			return c.Stats(), err
		}
	}
	if _, err := m.Write(buf[:2]); err != nil {
		return c.Stats(), err
	}
	if _, err := m.Read(buf); err != io.EOF {
		return c.Stats(), fmt.Errorf("waiting for the server's close_notify: %v", err)
	}
	m.Close()
	// Give the FIN exchange time to finish on the wire before the capture stops.
	time.Sleep(200 * time.Millisecond)
	return c.Stats(), nil
}

func TestCaptureMatchesModel(t *testing.T) {
	if os.Getenv(captureRoleEnv) != "" {
		t.Skip("inside a capture helper")
	}
	if os.Geteuid() != 0 {
		t.Skip("the capture check needs root to create network namespaces; run the tests as root (CI does)")
	}
	for _, tool := range []string{"ip", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the capture check needs %s; install iproute2 and tshark (CI does)", tool)
		}
	}
	for _, cc := range []captureConf{
		{Name: "ipv4"},
		{Name: "ipv4 timestamps", Timestamps: true},
		{Name: "ipv6", IPv6: true},
		{Name: "ipv4 delayed ack", DelayedACK: true},
	} {
		t.Run(cc.Name, func(t *testing.T) {
			t.Parallel() // each case has its own pair of namespaces
			runCapture(t, cc)
		})
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func runCapture(t *testing.T, cc captureConf) {
	id := strconv.Itoa(os.Getpid()%100000) + strconv.Itoa(int(time.Now().UnixNano()%1000))
	nsA, nsB := "catmsim-"+id+"-dev", "catmsim-"+id+"-hub"
	vA, vB := "cmd"+id, "cmh"+id
	if len(vA) > 15 {
		vA, vB = vA[:15], vB[:15]
	}
	run(t, "ip", "netns", "add", nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsA).Run() })
	run(t, "ip", "netns", "add", nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsB).Run() })
	run(t, "ip", "link", "add", vA, "netns", nsA, "type", "veth", "peer", "name", vB, "netns", nsB)
	p := cc.profile()
	ts := "0"
	if cc.Timestamps {
		ts = "1"
	}
	srvIP, devIP, prefix, fam := "10.203.0.2", "10.203.0.1", "/30", "-4"
	if cc.IPv6 {
		srvIP, devIP, prefix, fam = "fd00:cafe::2", "fd00:cafe::1", "/64", "-6"
	}
	for _, s := range []struct{ ns, dev, ip string }{{nsA, vA, devIP}, {nsB, vB, srvIP}} {
		run(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", s.ns, "link", "set", s.dev, "mtu", strconv.Itoa(p.MTU))
		// One segment per packet on the wire, as on a real link: no GSO
		// super-packets in the capture.
		run(t, "ip", "-n", s.ns, "link", "set", s.dev, "gso_max_segs", "1")
		run(t, "ip", "-n", s.ns, fam, "addr", "add", s.ip+prefix, "dev", s.dev, "nodad")
		run(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
		run(t, "ip", "netns", "exec", s.ns, "sysctl", "-q", "-w", "net.ipv4.tcp_timestamps="+ts)
		peer := srvIP
		if s.ip == srvIP {
			peer = devIP
		}
		if !cc.DelayedACK {
			run(t, "ip", "-n", s.ns, fam, "route", "add", peer, "dev", s.dev, "quickack", "1")
		}
	}

	conf, _ := json.Marshal(cc)
	port := "18883"
	addr := net.JoinHostPort(srvIP, port)
	env := append(os.Environ(), captureAddrEnv+"="+addr, captureConfEnv+"="+string(conf))
	helper := func(ns, role string) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestCaptureRole$", "-test.v")
		cmd.Env = append(env, captureRoleEnv+"="+role)
		return cmd
	}

	dir := t.TempDir()
	pcap := filepath.Join(dir, "capture.pcap")
	os.Chmod(dir, 0o777) // dumpcap may drop privileges to write
	capCtx, stopCap := context.WithCancel(context.Background())
	defer stopCap()
	// -P -l prints each packet as it is captured, so the probes below show
	// when the capture really runs.
	tshark := exec.CommandContext(capCtx, "ip", "netns", "exec", nsA, "tshark", "-i", vA, "-w", pcap, "-P", "-l")
	tshark.Cancel = func() error { return tshark.Process.Signal(os.Interrupt) }
	tsOut, _ := tshark.StdoutPipe()
	var tsErr bytes.Buffer
	tshark.Stderr = &tsErr
	if err := tshark.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(tsOut)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "UDP") {
				close(seen)
				once = true
			}
		}
	}()
	probing := true
	for tries := 0; probing; tries++ {
		if tries == 100 {
			t.Fatalf("tshark captured none of %d probes\n%s", tries, tsErr.String())
		}
		if out, err := helper(nsA, "probe").CombinedOutput(); err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		select {
		case <-seen:
			probing = false
		case <-time.After(200 * time.Millisecond):
		}
	}

	srv := helper(nsB, "server")
	srvOut, _ := srv.StdoutPipe()
	var srvErr bytes.Buffer
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	if err := waitLine(srvOut, "ready", 20*time.Second); err != nil {
		t.Fatalf("capture server did not start: %v\n%s", err, srvErr.String())
	}
	out, err := helper(nsA, "client").Output()
	if err != nil {
		t.Fatalf("capture client: %v\n%s", err, out)
	}
	var res captureResult
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "{") {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res.Err != "" {
		t.Fatalf("capture client: %s", res.Err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("capture server: %v\n%s", err, srvErr.String())
	}
	stopCap()
	tshark.Wait()
	if keep := os.Getenv("CATMSIM_CAPTURE_KEEP"); keep != "" {
		b, _ := os.ReadFile(pcap)
		os.WriteFile(filepath.Join(keep, strings.ReplaceAll(cc.Name, " ", "_")+".pcap"), b, 0o644)
	}

	fields := "ip.src"
	lenField := "ip.len"
	if cc.IPv6 {
		fields, lenField = "ipv6.src", "ipv6.plen"
	}
	dump, err := exec.Command("tshark", "-r", pcap, "-Y", "tcp", "-T", "fields", "-e", fields, "-e", lenField, "-e", "tcp.len", "-e", "tcp.flags.str").Output()
	if err != nil {
		t.Fatalf("reading the capture: %v", err)
	}
	var got [numDirections]int64
	var pkts [numDirections]int
	for _, line := range strings.Split(strings.TrimSpace(string(dump)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("capture line %q: %v", line, err)
		}
		if cc.IPv6 {
			n += 40 // the payload length excludes the fixed header
		}
		d := Down
		if f[0] == devIP {
			d = Up
		}
		got[d] += int64(n)
		pkts[d]++
	}
	for _, d := range []Direction{Up, Down} {
		model := res.Stats.IP[d]
		diff := float64(model-got[d]) / float64(got[d])
		t.Logf("%s: modelled %d B in %d segments (%d pure ACKs, tls %d B), captured %d B in %d packets: %+.2f%%",
			d, model, res.Stats.Segments[d], res.Stats.PureACKs[d], res.Stats.TLS[d], got[d], pkts[d], 100*diff)
		if diff > captureTol || diff < -captureTol {
			t.Errorf("%s: modelled ip bytes %d differ from the capture's %d by %+.2f%%, more than %.0f%%",
				d, model, got[d], 100*diff, 100*captureTol)
		}
	}
}

// waitLine reads r until a line containing want, in the background, and
// returns when it is found, when r ends, or after timeout.
func waitLine(r io.Reader, want string, timeout time.Duration) error {
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				found <- nil
				io.Copy(io.Discard, r)
				return
			}
		}
		found <- errors.New("output ended before " + strconv.Quote(want))
	}()
	select {
	case err := <-found:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no %q after %v", want, timeout)
	}
}
