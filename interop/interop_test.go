package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/hub"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/sas"
)

// hubHost is the emulator's HostName, which the clients put in SAS tokens and
// MQTT usernames. No client opens a socket to it: each is told to connect to
// 127.0.0.1. It is shaped like a hub's name but ends in .invalid (RFC 2606), so
// that a client that did try would fail here rather than look up a real name.
const hubHost = "catmsim-interop.azure-devices.invalid"

// groupKey admits every device of the suite, as a DPS group enrollment does.
var groupKey = []byte("catmsim interop suite group enrollment key")

// apiVersion is what the well-known IoT Hub Paho sample puts in its username.
const apiVersion = "2021-04-12"

// emulator is a running hub and the file its root certificate was written to.
type emulator struct {
	srv    *hub.Server
	caFile string
}

func (e *emulator) hub() *hub.Hub { return e.srv.Hub }

// startEmulator starts an emulator on free loopback ports unless mod says
// otherwise, and closes it when the test ends.
func startEmulator(t *testing.T, mod func(*hub.ServerConfig)) *emulator {
	t.Helper()
	e, err := newEmulator(t, mod)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newEmulator is startEmulator for callers that handle a failure to start.
func newEmulator(t *testing.T, mod func(*hub.ServerConfig)) (*emulator, error) {
	t.Helper()
	cfg := hub.ServerConfig{
		Hub:         hub.Config{HostName: hubHost, GroupKey: groupKey, KeepBodies: true},
		MetricsPort: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := hub.Start(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("starting the emulator: %w", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("closing the emulator: %v", err)
		}
	})
	e := &emulator{srv: srv, caFile: filepath.Join(t.TempDir(), "catmsim-root-ca.pem")}
	if err := srv.Chain().WriteCAFile(e.caFile); err != nil {
		return nil, err
	}
	return e, nil
}

// token is a device SAS token for the group-derived key, valid for an hour.
func (e *emulator) token(deviceID string) string {
	return sas.Sign(sas.DeviceResource(hubHost, deviceID, ""), sas.DeriveKey(groupKey, deviceID), "", time.Now().Add(time.Hour))
}

// username is the MQTT username of the IoT Hub MQTT documentation and samples.
func username(deviceID string) string {
	return hubHost + "/" + deviceID + "/?api-version=" + apiVersion
}

// watch subscribes to the hub's events for the rest of the test.
func watch(t *testing.T, h *hub.Hub) <-chan hub.Event {
	ch, stop := h.Subscribe(1024)
	t.Cleanup(stop)
	return ch
}

// waitEvent returns the first hub event that match accepts, failing the test
// when ctx ends first.
func waitEvent(ctx context.Context, t *testing.T, ch <-chan hub.Event, what string, match func(hub.Event) bool) hub.Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("waiting for %s: the hub's event stream ended", what)
			}
			if match(ev) {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// storedFor waits until the hub has stored n messages from id and returns them.
func storedFor(ctx context.Context, t *testing.T, h *hub.Hub, id iothub.Identity, n int) []hub.StoredMessage {
	t.Helper()
	err := h.Store().WaitFor(ctx, func(msgs []hub.StoredMessage) bool {
		c := 0
		for _, m := range msgs {
			if m.Identity == id {
				c++
			}
		}
		return c >= n
	})
	if err != nil {
		t.Fatalf("waiting for %d stored messages from %s: %v (the hub has %d from it)", n, id, err, h.Store().CountFor(id))
	}
	return h.Store().For(id)
}

// tailBuffer keeps the last max bytes written to it, for a client's stderr.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// clientEvent is one JSON line a driven client printed.
type clientEvent struct {
	Kind string `json:"event"`
	Raw  json.RawMessage
}

// process is a long-running client program that reports on stdout in JSON
// lines and stops when its stdin closes.
type process struct {
	t       *testing.T
	name    string
	stdin   io.WriteCloser
	events  chan clientEvent
	seen    []clientEvent // read but not yet asked for
	stderr  *tailBuffer
	stdout  *tailBuffer // every line, for the failure report
	exited  chan struct{}
	waitErr error
}

// startProcess runs argv in dir with env added to the test's environment. The
// process is killed when ctx ends or the test ends; if the test failed, its
// output is logged.
func startProcess(ctx context.Context, t *testing.T, name, dir string, env []string, argv ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	p := &process{t: t, name: name, events: make(chan clientEvent, 64), stderr: &tailBuffer{max: 64 << 10}, stdout: &tailBuffer{max: 16 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", name, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(p.events)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			_, _ = p.stdout.Write(append(line, '\n'))
			ev := clientEvent{Raw: line}
			if json.Unmarshal(line, &ev) != nil || ev.Kind == "" {
				continue // not one of the program's reports
			}
			select {
			case p.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		<-read
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.exited
		if t.Failed() {
			t.Logf("%s stdout:\n%s", name, p.stdout.String())
			t.Logf("%s stderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

// expect returns the next event of the given kind that match accepts (match
// may be nil), keeping other events for later calls. An "error" event, the
// program's exit or ctx's end fails the test.
func (p *process) expect(ctx context.Context, kind string, match func(json.RawMessage) bool) json.RawMessage {
	p.t.Helper()
	for i, ev := range p.seen {
		if ev.Kind == kind && (match == nil || match(ev.Raw)) {
			p.seen = append(p.seen[:i:i], p.seen[i+1:]...)
			return ev.Raw
		}
	}
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				<-p.exited
				p.t.Fatalf("waiting for %q from %s: it exited (%v)", kind, p.name, p.waitErr)
			}
			if ev.Kind == "error" {
				p.t.Fatalf("waiting for %q from %s: it reported %s", kind, p.name, ev.Raw)
			}
			if ev.Kind == kind && (match == nil || match(ev.Raw)) {
				return ev.Raw
			}
			p.seen = append(p.seen, ev)
		case <-ctx.Done():
			p.t.Fatalf("waiting for %q from %s: %v", kind, p.name, ctx.Err())
		}
	}
}

// send writes one command line to the program's stdin.
func (p *process) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("writing %q to %s: %v", line, p.name, err)
	}
}

// closeAndWait closes the program's stdin, which asks it to finish, and waits
// for it to exit successfully.
func (p *process) closeAndWait(ctx context.Context) {
	p.t.Helper()
	_ = p.stdin.Close()
	select {
	case <-p.exited:
		if p.waitErr != nil {
			p.t.Fatalf("%s exited with %v", p.name, p.waitErr)
		}
	case <-ctx.Done():
		p.t.Fatalf("waiting for %s to exit: %v", p.name, ctx.Err())
	}
}

// runTool runs a one-shot command line client to completion (or ctx's end)
// and returns its combined output and error; the caller decides what the exit
// status means, the hub's state is what the test checks.
func runTool(ctx context.Context, argv []string, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return out.String(), err
}

// nodeDir is interop/node, where the Node programs and their packages live.
func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireNode skips the test unless node and the npm packages it needs are
// installed.
func requireNode(t *testing.T, packages ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("skipping: node is not installed; install Node.js 18 or later (Debian: apt-get install nodejs npm)")
	}
	for _, pkg := range packages {
		if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", pkg, "package.json")); err != nil {
			t.Skipf("skipping: node_modules missing in interop/node (no %s); run `cd interop/node && npm ci` (.ci/run does)", pkg)
		}
	}
	return node
}

// debianPython is the interpreter Debian's python3-* packages load under; a
// python3 earlier on PATH (pyenv, a venv) does not see them.
const debianPython = "/usr/bin/python3"

// requirePaho skips the test unless Debian's python3-paho-mqtt is importable.
func requirePaho(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Skip("skipping: /usr/bin/python3 is missing; install Debian's python3-paho-mqtt (.ci/run installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := runTool(ctx, []string{debianPython, "-c", "import paho.mqtt.publish"}, nil); err != nil {
		t.Skipf("skipping: paho-mqtt does not load under /usr/bin/python3 (%v: %s); install Debian's python3-paho-mqtt (.ci/run installs it)", err, strings.TrimSpace(out))
	}
}

// requireTool skips the test unless a Debian program is on PATH.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipping: %s is not installed; install Debian's %s (.ci/run installs it)", name, pkg)
	}
	return path
}

// decode unmarshals a client's report, failing the test if it cannot.
func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}
