package firmware_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catmsim/catmsim/firmware"
)

// recordingHost is a Host that writes down every call as one line, so a test
// can compare what two firmwares did, or what one did against what it should.
type recordingHost struct {
	mu      sync.Mutex
	calls   []string
	sensors map[int32]float64
	send    firmware.Code // what SendTelemetry answers
	now     time.Time
	// noteSensors records sensor reads, which testdata/echo.wasm uses to
	// report the codes host functions returned to it.
	noteSensors bool
}

func newHost() *recordingHost {
	return &recordingHost{
		sensors: map[int32]float64{},
		now:     time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func (h *recordingHost) record(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
}

// take returns the calls recorded since the last take.
func (h *recordingHost) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls
	h.calls = nil
	return c
}

func (h *recordingHost) SendTelemetry(_ context.Context, body []byte, props []firmware.Property) firmware.Code {
	ps := make([]string, len(props))
	for i, p := range props {
		ps[i] = p.Name + "=" + p.Value
	}
	h.record("telemetry %s [%s]", body, strings.Join(ps, " "))
	return h.send
}

func (h *recordingHost) ReportProperties(_ context.Context, patch []byte) firmware.Code {
	h.record("report %s", patch)
	return firmware.CodeOK
}

func (h *recordingHost) SetTimer(_ context.Context, d time.Duration) firmware.Code {
	h.record("timer %v", d)
	return firmware.CodeOK
}

func (h *recordingHost) Sleep(_ context.Context, d time.Duration) firmware.Code {
	h.record("sleep %v", d)
	return firmware.CodeOK
}

func (h *recordingHost) Now() time.Time { return h.now }

func (h *recordingHost) Log(level slog.Level, msg string) { h.record("log %v %s", level, msg) }

func (h *recordingHost) Sensor(id int32) float64 {
	if h.noteSensors {
		h.record("code %v", firmware.Code(id))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.sensors[id]; ok {
		return v
	}
	return math.NaN()
}

func (h *recordingHost) setSensors(temperature, humidity float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sensors[firmware.SensorTemperature] = temperature
	h.sensors[firmware.SensorHumidity] = humidity
}

// Paths of the committed modules.
var (
	sensorNodeC  = filepath.Join("examples", "c", "sensornode.wasm")
	sensorNodeAS = filepath.Join("examples", "assemblyscript", "sensornode.wasm")
)

func readWasm(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v (rebuild with the build.sh beside it)", path, err)
	}
	return b
}

func compile(t testing.TB, path string, opts firmware.Options) *firmware.Module {
	t.Helper()
	m, err := firmware.Compile(context.Background(), readWasm(t, path), opts)
	if err != nil {
		t.Fatalf("compiling %s: %v", path, err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func instantiate(t testing.TB, m *firmware.Module, device string, h firmware.Host, limits firmware.Limits) *firmware.Instance {
	t.Helper()
	in, err := m.Instantiate(context.Background(), device, h, limits)
	if err != nil {
		t.Fatalf("instantiating %s: %v", device, err)
	}
	t.Cleanup(func() { _ = in.Close(context.Background()) })
	return in
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
