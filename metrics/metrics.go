package metrics

import (
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/catmsim/catmsim/network"
)

// Latency names a round trip the run measures.
type Latency int

const (
	// LatencyD2C is send to acknowledgement of a device-to-cloud message.
	LatencyD2C Latency = iota
	// LatencyC2D is the cloud's send to the device's receipt of a message.
	LatencyC2D
	// LatencyMethod is a direct method's invocation to its answer, as the
	// service sees it.
	LatencyMethod
	// LatencyTwin is a twin request to its response, as the device sees it.
	LatencyTwin
	// LatencyConnect is dial to a usable connection (TCP, TLS, protocol, auth).
	LatencyConnect
	numLatencies
)

var latencyNames = [numLatencies]string{"d2c", "c2d", "method", "twin", "connect"}

func (l Latency) String() string {
	if l >= 0 && l < numLatencies {
		return latencyNames[l]
	}
	return "invalid"
}

// Latencies lists every latency in report order.
func Latencies() []Latency {
	out := make([]Latency, numLatencies)
	for i := range out {
		out[i] = Latency(i)
	}
	return out
}

// Count names an event the run counts.
type Count int

const (
	D2CSent         Count = iota // device-to-cloud messages the hub acknowledged
	D2CFailed                    // sends that failed
	C2DReceived                  // cloud-to-device messages devices received
	C2DSent                      // cloud-to-device messages the cloud side queued
	MethodCalls                  // direct methods the cloud side invoked
	MethodFailures               // invocations that failed or timed out
	TwinOps                      // twin reads and reported patches
	DesiredUpdates               // desired-property updates devices received
	Connects                     // connections established
	ConnectFailures              // connection attempts that failed
	Reconnects                   // connections after the device's first
	Sleeps                       // sleep cycles entered
	C2DPolls                     // HTTPS polls for cloud-to-device messages
	numCounts
)

var countNames = [numCounts]string{"d2c_sent", "d2c_failed", "c2d_received", "c2d_sent", "method_calls", "method_failures",
	"twin_ops", "desired_updates", "connects", "connect_failures", "reconnects", "sleeps", "c2d_polls"}

func (c Count) String() string {
	if c >= 0 && c < numCounts {
		return countNames[c]
	}
	return "invalid"
}

// Counts lists every count in report order.
func Counts() []Count {
	out := make([]Count, numCounts)
	for i := range out {
		out[i] = Count(i)
	}
	return out
}

// State is where a device is in its life.
type State int32

const (
	StateWaiting    State = iota // not arrived yet
	StateConnecting              // dialling or authenticating
	StateConnected               // connected and working
	StateBackoff                 // waiting to reconnect after a failure
	StateSleeping                // asleep by its behaviour (PSM cycles)
	StateOffline                 // its link is down (an outage event)
	StateFailed                  // gave up: an error retrying cannot fix
	StateDone                    // finished its run
	numStates
)

var stateNames = [numStates]string{"waiting", "connecting", "connected", "backoff", "sleeping", "offline", "failed", "done"}

func (s State) String() string {
	if s >= 0 && s < numStates {
		return stateNames[s]
	}
	return "invalid"
}

// States lists every state in order.
func States() []State {
	out := make([]State, numStates)
	for i := range out {
		out[i] = State(i)
	}
	return out
}

// DeviceInfo is what a report says about a device.
type DeviceInfo struct {
	Index    int
	ID       string
	Group    string
	Profile  string
	Protocol string
	DataPlan int64 // bytes per month; 0 when the profile has none
}

// Histogram bounds: latencies from 1 µs to one hour, to three significant
// digits, as HDR histograms record them (merged exactly across shards).
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Run is what one run measures: per-device counters and byte ledgers, and, per
// group and protocol, latency histograms. Memory is bounded: a device costs its
// ledger and a few counters, histograms are per group, and the timeline keeps a
// bounded number of samples.
type Run struct {
	start time.Time
	now   func() time.Time

	mu       sync.Mutex
	devices  []*Device
	groups   map[groupKey]*Group
	errs     map[string]uint64 // error kind → count
	line     timeline
	arrivals atomic.Bool // devices record their arrival (see Device.Arrived)
}

// TrackArrivals says that every device of the run calls Arrived when it
// arrives, so a device that never called it never arrived and has measured
// nothing.
func (r *Run) TrackArrivals() { r.arrivals.Store(true) }

// TracksArrivals reports whether TrackArrivals was called.
func (r *Run) TracksArrivals() bool { return r.arrivals.Load() }

type groupKey struct{ group, protocol string }

// Group is the latency histograms and counters of one group on one protocol.
type Group struct {
	Name, Protocol string
	mu             sync.Mutex
	hist           [numLatencies]*hdrhistogram.Histogram
}

// NewRun starts measuring; now is the run's clock (time.Now when nil).
func NewRun(now func() time.Time) *Run {
	if now == nil {
		now = time.Now
	}
	return &Run{start: now(), now: now, groups: map[groupKey]*Group{}, errs: map[string]uint64{}, line: timeline{max: maxTimeline}}
}

// Start is when the run began.
func (r *Run) Start() time.Time { return r.start }

// Device registers a device and returns its handle. ledger is the device's
// byte ledger (its network.Link's); energy reports its radio's energy so far.
func (r *Run) Device(info DeviceInfo, ledger *network.Ledger, energy func() network.EnergyReport) *Device {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := groupKey{info.Group, info.Protocol}
	g := r.groups[k]
	if g == nil {
		g = &Group{Name: info.Group, Protocol: info.Protocol}
		for i := range g.hist {
			g.hist[i] = newHistogram()
		}
		r.groups[k] = g
	}
	d := &Device{run: r, Info: info, group: g, ledger: ledger, energy: energy}
	r.devices = append(r.devices, d)
	return d
}

// Devices returns the registered devices in registration order.
func (r *Run) Devices() []*Device {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Device(nil), r.devices...)
}

// Groups returns the group histograms, sorted by group and protocol.
func (r *Run) Groups() []*Group {
	r.mu.Lock()
	out := make([]*Group, 0, len(r.groups))
	for _, g := range r.groups {
		out = append(out, g)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

// Histogram returns a copy of one latency histogram of the group.
func (g *Group) Histogram(l Latency) *hdrhistogram.Histogram {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := newHistogram()
	h.Merge(g.hist[l])
	return h
}

// Device is one device's measurements. Its methods are safe for concurrent use
// and cheap: counters are atomic and a latency takes the group's lock for one
// histogram update.
type Device struct {
	run    *Run
	Info   DeviceInfo
	group  *Group
	ledger *network.Ledger
	energy func() network.EnergyReport

	state  atomic.Int32
	active atomic.Int64 // unix nanoseconds the device arrived; 0: never
	counts [numCounts]atomic.Uint64
	seqAck atomic.Int64 // highest telemetry sequence number the hub acknowledged
	errMu  sync.Mutex
	errs   map[string]uint64
	last   string // the last error's text, for the report's device table
	setup  atomic.Pointer[[numCounts]uint64]
}

// SetSetup records how many of the device's operations, by counter, its
// start-up performed and recur only when it restarts — what a firmware sends
// from its init — so that projections count their share of the bytes once,
// as they count the first connection, rather than scale it with time.
func (d *Device) SetSetup(ops map[Count]uint64) {
	var t [numCounts]uint64
	for c, n := range ops {
		if c >= 0 && c < numCounts {
			t[c] = n
		}
	}
	d.setup.Store(&t)
}

// Setup returns the operations SetSetup recorded, by counter, if any.
func (d *Device) Setup() (ops [numCounts]uint64, ok bool) {
	if t := d.setup.Load(); t != nil {
		return *t, true
	}
	return ops, false
}

// Ledger is the device's byte ledger.
func (d *Device) Ledger() *network.Ledger { return d.ledger }

// Energy reports the device's radio energy so far (zero without a link).
func (d *Device) Energy() network.EnergyReport {
	if d.energy == nil {
		return network.EnergyReport{}
	}
	return d.energy()
}

// Observe records one latency.
func (d *Device) Observe(l Latency, dur time.Duration) {
	if l < 0 || l >= numLatencies {
		return
	}
	us := dur.Microseconds()
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	d.group.mu.Lock()
	_ = d.group.hist[l].RecordValue(us)
	d.group.mu.Unlock()
}

// Add counts n events.
func (d *Device) Add(c Count, n int) {
	if c >= 0 && c < numCounts && n > 0 {
		d.counts[c].Add(uint64(n))
	}
}

// Get reads a counter.
func (d *Device) Get(c Count) uint64 {
	if c < 0 || c >= numCounts {
		return 0
	}
	return d.counts[c].Load()
}

// Arrived records that the device arrived (powered on) at t; its measured
// time runs from then. Only the first call counts.
func (d *Device) Arrived(t time.Time) { d.active.CompareAndSwap(0, t.UnixNano()) }

// ActiveFor is how long the device has been measured by end: from its
// arrival, or 0 if it never arrived.
func (d *Device) ActiveFor(end time.Time) time.Duration {
	a := d.active.Load()
	if a == 0 {
		return 0
	}
	if dur := end.Sub(time.Unix(0, a)); dur > 0 {
		return dur
	}
	return 0
}

// SetState records where the device is.
func (d *Device) SetState(s State) { d.state.Store(int32(s)) }

// State is where the device is now.
func (d *Device) State() State { return State(d.state.Load()) }

// Acked records that the hub acknowledged the telemetry message with sequence
// number seq, so that the run can compare what devices believe was delivered
// with what the hub stored.
func (d *Device) Acked(seq int64) {
	for {
		cur := d.seqAck.Load()
		if seq <= cur || d.seqAck.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// LastAcked is the highest acknowledged sequence number (0: none).
func (d *Device) LastAcked() int64 { return d.seqAck.Load() }

// Error counts an error of a kind ("unauthorized", "throttled" …) and keeps
// its text as the device's last error.
func (d *Device) Error(kind string, err error) {
	if err == nil {
		return
	}
	d.errMu.Lock()
	if d.errs == nil {
		d.errs = map[string]uint64{}
	}
	d.errs[kind]++
	d.last = err.Error()
	d.errMu.Unlock()
	d.run.mu.Lock()
	d.run.errs[kind]++
	d.run.mu.Unlock()
}

// Errors returns the device's error counts by kind and its last error.
func (d *Device) Errors() (map[string]uint64, string) {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	out := make(map[string]uint64, len(d.errs))
	for k, v := range d.errs {
		out[k] = v
	}
	return out, d.last
}

// Errors returns the run's error counts by kind.
func (r *Run) Errors() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.errs))
	for k, v := range r.errs {
		out[k] = v
	}
	return out
}

// StateCounts counts devices by state now.
func (r *Run) StateCounts() map[State]int {
	out := map[State]int{}
	for _, d := range r.Devices() {
		out[d.State()]++
	}
	return out
}

// Totals sums a counter over every device.
func (r *Run) Totals() map[Count]uint64 {
	out := map[Count]uint64{}
	for _, d := range r.Devices() {
		for c := Count(0); c < numCounts; c++ {
			out[c] += d.Get(c)
		}
	}
	return out
}

// Bytes sums every device's ledger.
func (r *Run) Bytes() network.Snapshot {
	var s network.Snapshot
	for _, d := range r.Devices() {
		if d.ledger != nil {
			ds := d.ledger.Snapshot()
			s.Add(&ds)
		}
	}
	return s
}

// ErrUnknown is returned when a name matches no latency, count or state.
var ErrUnknown = errors.New("unknown metric name")
