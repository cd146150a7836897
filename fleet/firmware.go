package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catmsim/catmsim/firmware"
	"github.com/catmsim/catmsim/firmware/examples"
	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/scenarios"
)

// outboxSize bounds what one device's firmware may queue before the device
// has sent it: a module that sends in a loop gets CodeThrottled rather than
// an unbounded queue.
const outboxSize = 64

// firmwares are the plan's compiled firmware modules, one per profile that
// names one, compiled before any device starts.
type firmwares struct {
	cache *firmware.Cache
	mods  map[string]*firmware.Module // profile name → module
}

// readFirmware reads a profile's module: a built-in example or a file.
func readFirmware(ref string) ([]byte, error) {
	if strings.HasPrefix(ref, examples.Prefix) {
		return examples.Read(ref)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("reading the module: %w", err)
	}
	return b, nil
}

// loadFirmware compiles the firmware of every profile that names one; the
// cache shares compiled code between profiles running the same module.
func loadFirmware(ctx context.Context, p *scenarios.Plan) (*firmwares, error) {
	fw := &firmwares{mods: map[string]*firmware.Module{}}
	for _, pr := range p.Profiles {
		if pr.Firmware == "" {
			continue
		}
		if fw.cache == nil {
			fw.cache = firmware.NewCache()
		}
		wasm, err := readFirmware(pr.Firmware)
		var m *firmware.Module
		if err == nil {
			lim := firmware.Limits{MemoryPages: uint32(pr.FirmwareLimits.Memory / (64 << 10)), CallTimeout: pr.FirmwareLimits.CallTimeout.D()}
			m, err = firmware.Compile(ctx, wasm, firmware.Options{Cache: fw.cache, Limits: lim})
		}
		if err == nil {
			fw.mods[pr.Name] = m
		}
		if err != nil {
			fw.close(context.WithoutCancel(ctx))
			return nil, &FirmwareError{Profile: pr.Name, Module: pr.Firmware, Err: err}
		}
	}
	return fw, nil
}

func (fw *firmwares) close(ctx context.Context) {
	for _, m := range fw.mods {
		_ = m.Close(ctx)
	}
	if fw.cache != nil {
		_ = fw.cache.Close(ctx)
	}
}

// FirmwareError is a profile's firmware module that cannot run.
type FirmwareError struct {
	Profile, Module string
	Err             error
}

func (e *FirmwareError) Error() string {
	return fmt.Sprintf("profile %s: firmware %s cannot run: %v", e.Profile, e.Module, e.Err)
}

func (e *FirmwareError) Unwrap() error { return e.Err }

// CheckFirmware compiles every firmware module a plan names against the host
// ABI, so that a module that cannot run — a missing export, a wrong import, a
// corrupt file — is reported before a run starts (sim validate). The error is
// a *FirmwareError.
func CheckFirmware(ctx context.Context, p *scenarios.Plan) error {
	fw, err := loadFirmware(ctx, p)
	if err != nil {
		return err
	}
	fw.close(ctx)
	return nil
}

// fwDevice is a device's firmware and what the firmware asked of it. The
// instance runs its calls one at a time, from the device's goroutine and from
// the protocol client's handlers.
type fwDevice struct {
	in      *firmware.Instance
	handles firmware.Handlers
	kick    chan struct{} // the device has firmware work to do
	canTwin bool

	// The device's goroutine alone uses these.
	started bool  // catmsim_init has run
	woke    bool  // the device reconnected after a firmware sleep
	sent    int64 // telemetry messages handed to the client: the next sequence number

	connected atomic.Bool
	memory    atomic.Int64 // linear memory when the instance was closed
	sensors   sensors

	// What the firmware asked for, from whichever goroutine called it.
	mu       sync.Mutex
	outbox   []fwAction
	timerAt  time.Time     // zero: no timer armed
	sleepFor time.Duration // > 0: sleep once the outbox is sent
}

// fwAction is one thing the firmware asked the device to send.
type fwAction struct {
	msg   *iothub.Message // telemetry, or
	patch []byte          // a reported-properties patch
}

func (fw *fwDevice) wake() {
	select {
	case fw.kick <- struct{}{}:
	default:
	}
}

// fwHost is the device as its firmware sees it (firmware.Host). Work is
// queued and the device's goroutine sends it after the call, so a firmware
// call never waits on the network.
type fwHost struct {
	d *device
}

func (h fwHost) queue(a fwAction) firmware.Code {
	fw := h.d.fw
	if !fw.connected.Load() {
		return firmware.CodeDisconnected
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if len(fw.outbox) >= outboxSize {
		return firmware.CodeThrottled
	}
	fw.outbox = append(fw.outbox, a)
	fw.wake()
	return firmware.CodeOK
}

func (h fwHost) SendTelemetry(_ context.Context, body []byte, props []firmware.Property) firmware.Code {
	m := &iothub.Message{Body: body}
	// A JSON body goes out as application/json, as declarative JSON telemetry
	// does, so that a firmware and its declarative twin cost the same bytes.
	if json.Valid(body) {
		m.ContentType = "application/json"
	}
	for _, p := range props {
		m.Properties = append(m.Properties, iothub.Property{Name: p.Name, Value: p.Value})
	}
	return h.queue(fwAction{msg: m})
}

func (h fwHost) ReportProperties(_ context.Context, patch []byte) firmware.Code {
	if !h.d.fw.canTwin {
		return firmware.CodeUnsupported
	}
	return h.queue(fwAction{patch: patch})
}

func (h fwHost) SetTimer(_ context.Context, d time.Duration) firmware.Code {
	fw := h.d.fw
	fw.mu.Lock()
	if d < 0 {
		fw.timerAt = time.Time{}
	} else {
		fw.timerAt = time.Now().Add(d)
	}
	fw.mu.Unlock()
	fw.wake()
	return firmware.CodeOK
}

func (h fwHost) Sleep(_ context.Context, d time.Duration) firmware.Code {
	if d <= 0 {
		return firmware.CodeInvalid
	}
	fw := h.d.fw
	fw.mu.Lock()
	fw.sleepFor, fw.timerAt = d, time.Time{}
	fw.mu.Unlock()
	fw.wake()
	return firmware.CodeOK
}

func (h fwHost) Now() time.Time { return time.Now() }

func (h fwHost) Log(level slog.Level, msg string) {
	h.d.f.log.Log(context.Background(), level, "firmware: "+msg, "device", h.d.plan.ID)
}

func (h fwHost) Sensor(id int32) float64 { return h.d.fw.sensors.read(id) }

// sensors are a device's simulated sensors: seeded random walks, so the same
// seed reads the same values.
type sensors struct {
	mu                 sync.Mutex
	rnd                *rand.Rand
	temp, hum, battery float64
}

func newSensors(rnd *rand.Rand) sensors {
	return sensors{rnd: rnd, temp: 15 + 10*rnd.Float64(), hum: 40 + 20*rnd.Float64(), battery: 4.1}
}

func (s *sensors) read(id int32) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	step := func(v, by, lo, hi float64) float64 {
		return math.Min(hi, math.Max(lo, v+(s.rnd.Float64()*2-1)*by))
	}
	switch id {
	case firmware.SensorTemperature:
		s.temp = step(s.temp, 0.3, -20, 45)
		return s.temp
	case firmware.SensorHumidity:
		s.hum = step(s.hum, 1, 5, 95)
		return s.hum
	case firmware.SensorBattery:
		// A LiPo cell discharging slowly, read after read.
		s.battery = math.Max(3.3, s.battery-0.0002)
		return s.battery
	}
	return math.NaN()
}

// newFirmware instantiates the device's own instance of its profile's module.
func (d *device) newFirmware(ctx context.Context, m *firmware.Module) error {
	_, twin := d.client.(protocols.TwinClient)
	d.fw = &fwDevice{
		handles: m.Handles(), kick: make(chan struct{}, 1), canTwin: twin,
		sensors: newSensors(rand.New(rand.NewPCG(d.plan.Seed^0x5be5a1e5, uint64(d.plan.Index)))),
	}
	in, err := m.Instantiate(ctx, d.plan.ID, fwHost{d}, firmware.Limits{})
	if err != nil {
		return fmt.Errorf("starting its firmware: %w", err)
	}
	d.fw.in = in
	return nil
}

// fwCall runs one firmware entry point and tells whether the device may go
// on. An event the firmware does not handle is not an error, nor is one its
// allocator had no room for (counted); a trap, a timeout or a memory overrun
// fails the device, and the error, naming the entry point and the wasm stack,
// is the device's last error in the report.
func (d *device) fwCall(ctx context.Context, err error) bool {
	switch {
	case err == nil, errors.Is(err, firmware.ErrNotHandled):
		return true
	case errors.Is(err, firmware.ErrNoRoom):
		d.m.Error("firmware_no_room", err)
		return true
	case ctx.Err() != nil || !fwTrapped(d.fw.in):
		// The call was cut short by the run ending, not by the firmware.
		return true
	}
	d.fw.wake() // the device's goroutine sees the failure
	return false
}

// fwTrapped reports an instance the firmware itself failed.
func fwTrapped(in *firmware.Instance) bool {
	var t *firmware.TrapError
	return errors.As(in.Err(), &t)
}

// fwFailed reports the firmware's failure once, as the device's error.
func (d *device) fwFailed() sessionEnd {
	err := d.fw.in.Err()
	d.m.Error("firmware", err)
	return sessionEnd{kind: endFailed, err: err}
}

// fwStart tells the firmware the device is connected: catmsim_init on the
// first connection, catmsim_on_wake after a sleep it asked for.
func (d *device) fwStart(ctx context.Context) bool {
	fw := d.fw
	fw.connected.Store(true)
	switch {
	case !fw.started:
		fw.started = true
		return d.fwCall(ctx, fw.in.Init(ctx))
	case fw.woke:
		fw.woke = false
		return d.fwCall(ctx, fw.in.OnWake(ctx))
	}
	return true
}

// fwFlush sends what the firmware queued, in order, and reports a sleep the
// firmware asked for once that is done.
func (d *device) fwFlush(ctx context.Context) (sessionEnd, bool) {
	fw := d.fw
	if ctx.Err() != nil {
		return sessionEnd{kind: endDone}, true
	}
	if fwTrapped(fw.in) {
		return d.fwFailed(), true
	}
	for {
		fw.mu.Lock()
		if len(fw.outbox) == 0 {
			sleep := fw.sleepFor
			fw.sleepFor = 0
			fw.mu.Unlock()
			if sleep > 0 {
				fw.woke = true
				return sessionEnd{kind: endSleep, d: sleep}, true
			}
			return sessionEnd{}, false
		}
		a := fw.outbox[0]
		fw.outbox = fw.outbox[1:]
		fw.mu.Unlock()
		if a.msg != nil {
			fw.sent++
			if err := d.deliver(ctx, []*iothub.Message{a.msg}, []int64{fw.sent - 1}); err != nil {
				if ctx.Err() != nil {
					return sessionEnd{kind: endDone}, true
				}
				if reconnectOn(err) {
					return sessionEnd{kind: endDropped, err: err}, true
				}
			}
			continue
		}
		if tc, ok := d.client.(protocols.TwinClient); ok {
			d.twinPatch(ctx, tc, a.patch)
		}
	}
}

// queued counts the telemetry messages and reported patches waiting in the
// outbox.
func (fw *fwDevice) queued() (telemetry, patches uint64) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, a := range fw.outbox {
		if a.msg != nil {
			telemetry++
		} else {
			patches++
		}
	}
	return telemetry, patches
}

// fwTimer is when the firmware's timer fires (zero: not armed).
func (fw *fwDevice) timer() time.Time {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.timerAt
}

// fwOnTimer runs catmsim_on_timer if the timer is still due.
func (d *device) fwOnTimer(ctx context.Context) bool {
	fw := d.fw
	fw.mu.Lock()
	due := !fw.timerAt.IsZero() && !time.Now().Before(fw.timerAt)
	if due {
		fw.timerAt = time.Time{}
	}
	fw.mu.Unlock()
	if !due {
		return true
	}
	return d.fwCall(ctx, fw.in.OnTimer(ctx))
}

// fwC2D hands a cloud-to-device message to the firmware and returns its
// settlement; a device whose firmware has failed abandons it, so the hub
// keeps it for a later delivery.
func (d *device) fwC2D(ctx context.Context, m *iothub.Message) protocols.Outcome {
	props := make([]firmware.Property, 0, len(m.Properties))
	for _, p := range m.Properties {
		props = append(props, firmware.Property{Name: p.Name, Value: p.Value})
	}
	o, err := d.fw.in.OnC2D(ctx, m.Body, props)
	if !d.fwCall(ctx, err) {
		return protocols.Abandon
	}
	switch o {
	case firmware.Abandon:
		return protocols.Abandon
	case firmware.Reject:
		return protocols.Reject
	}
	return protocols.Complete
}

// fwMethod hands a direct method to the firmware. A device whose firmware
// has failed answers 500, as a device's SDK does when its callback fails.
func (d *device) fwMethod(ctx context.Context, name string, payload []byte) (int, []byte) {
	status, resp, err := d.fw.in.OnMethod(ctx, name, payload)
	if !d.fwCall(ctx, err) {
		return 500, []byte(`{"error":"the device's firmware has failed"}`)
	}
	if resp == nil {
		resp = []byte("null")
	}
	return status, resp
}

// fwDesired hands a desired-properties patch to the firmware.
func (d *device) fwDesired(ctx context.Context, patch []byte, version int64) {
	d.fwCall(ctx, d.fw.in.OnDesired(ctx, patch, version))
}

// fwClose releases the device's instance, noting the memory it had.
func (d *device) fwClose(ctx context.Context) {
	if d.fw != nil && d.fw.in != nil {
		d.fw.memory.Store(int64(d.fw.in.MemoryBytes()))
		_ = d.fw.in.Close(context.WithoutCancel(ctx))
	}
}

// Check the interface is met where the fleet hands it over.
var _ firmware.Host = fwHost{}

// FirmwareStats describe a run's firmware instances.
type FirmwareStats struct {
	Instances int   // devices that ran firmware
	Failed    int   // instances that trapped, ran over time or over memory
	Memory    int64 // their linear memory when the run ended, in bytes
}

func (f *fleet) firmwareStats() FirmwareStats {
	var s FirmwareStats
	for _, d := range f.devices {
		if d.fw != nil && d.fw.in != nil {
			s.Instances++
			s.Memory += d.fw.memory.Load()
			if fwTrapped(d.fw.in) {
				s.Failed++
			}
		}
	}
	return s
}
