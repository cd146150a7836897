package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/catmsim/catmsim/fleet"
	simmetrics "github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/scenarios"
)

// config is one measurement: a fleet of one protocol and how to watch it.
type config struct {
	Devices   int
	Protocol  string        // mqtt, amqp or https
	Duration  time.Duration // the run, from the first arrival
	Ramp      time.Duration // arrivals spread evenly over it; 0: all at once
	Interval  time.Duration // telemetry period of each device
	Link      string        // "fast", or a built-in profile: good, typical, poor
	Transport string        // memory or tcp, between devices and the embedded hub
	Seed      uint64
	// Settle is how long after the last first connect the steady-state
	// memory is read, so that every device has sent its first message.
	Settle time.Duration
	// Every is how often the fleet reports its state and the process is
	// sampled.
	Every time.Duration
	// MemProfile, when set, receives a heap profile taken at the steady-state
	// reading.
	MemProfile    string
	SkipPreflight bool
}

// fastLink is a link with the modem's delays and losses taken out, so that a
// run measures the process and not the radio; bytes are metered as on any
// link.
const fastLink = `{base: good, rtt: 20ms, rtt_jitter: 0s, loss: 0%, attach_time: 0s, rrc_setup: 0s, drx_cycle: 10ms}`

// protocolProfiles are the protocols a run may choose, with the lines each
// adds to its profile.
var protocolProfiles = map[string]string{
	"mqtt":  "    keep_alive: 240s\n",
	"amqp":  "    keep_alive: 240s\n",
	"https": "",
}

func (c config) check() error {
	var errs []error
	if _, ok := protocolProfiles[c.Protocol]; !ok {
		errs = append(errs, fmt.Errorf("-protocol %q: choose mqtt, amqp or https", c.Protocol))
	}
	if c.Devices < 1 {
		errs = append(errs, fmt.Errorf("-devices %d: run at least one device", c.Devices))
	}
	if c.Duration <= 0 || c.Ramp < 0 || c.Ramp >= c.Duration {
		errs = append(errs, fmt.Errorf("-ramp %s, -duration %s: the ramp must end before the run does", c.Ramp, c.Duration))
	}
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("-interval %s: telemetry can be sent at most once a second", c.Interval))
	}
	if c.Transport != "memory" && c.Transport != "tcp" {
		errs = append(errs, fmt.Errorf("-transport %q: choose memory or tcp", c.Transport))
	}
	if c.Every <= 0 || c.Settle < 0 {
		errs = append(errs, fmt.Errorf("-every %s, -settle %s: the sampling period must be positive and the settle time not negative", c.Every, c.Settle))
	}
	return errors.Join(errs...)
}

// scenarioYAML is the scenario a measurement runs: the shape of quickstart,
// one profile and one group, sized and timed by the config.
func (c config) scenarioYAML() string {
	link := c.Link
	if link == "" || link == "fast" {
		link = fastLink
	}
	arrival := "{kind: all_at_once}"
	if c.Ramp > 0 {
		arrival = fmt.Sprintf("{kind: ramp, over: %s}", c.Ramp)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `version: 1
name: fleetscale-%s
description: %d devices over %s against the embedded hub, for the scale benchmark
seed: %d
duration: %s
target: {kind: embedded, transport: %s}
profiles:
  dev:
    protocol: %s
    link: %s
%s    behaviour:
      telemetry:
        interval: %s
        jitter: 10%%
        payload:
          kind: json
          fields:
            temperature: {random_walk: {start: 21.0, step: 0.2, min: -20, max: 60}}
            humidity: {uniform: {min: 30, max: 90, decimals: 0}}
            seq: sequence
        content_type: application/json
fleet:
  - name: scale
    profile: dev
    count: %d
    id_pattern: "scale-{index:05}"
    arrival: %s
`, c.Protocol, c.Devices, c.Protocol, c.Seed, c.Duration, c.Transport, c.Protocol, link,
		protocolProfiles[c.Protocol], c.Interval, c.Devices, arrival)
	return b.String()
}

// plan compiles the config's scenario as sim run would.
func (c config) plan() (*scenarios.Plan, error) {
	s, _, err := scenarios.Parse("fleetscale.yaml", []byte(c.scenarioYAML()))
	if err != nil {
		return nil, fmt.Errorf("parsing the benchmark scenario: %w", err)
	}
	p, err := scenarios.Compile(s, scenarios.PlanOptions{})
	if err != nil {
		return nil, fmt.Errorf("compiling the benchmark scenario: %w", err)
	}
	return p, nil
}

// figures are what one measurement found.
type figures struct {
	Devices   int    `json:"devices"`
	Protocol  string `json:"protocol"`
	Link      string `json:"link"`
	Transport string `json:"transport"`

	FilesBefore int `json:"files_before"`
	FilesPeak   int `json:"files_peak"`

	// Before the run, after a GC.
	HeapBefore       uint64 `json:"heap_before"`
	StacksBefore     uint64 `json:"stacks_before"`
	RSSBefore        uint64 `json:"rss_before"`
	GoroutinesBefore int    `json:"goroutines_before"`
	// At the steady state, after a GC.
	Steady           bool   `json:"steady"` // every device was connected at the reading
	SteadyAt         string `json:"steady_at"`
	ConnectedSteady  int    `json:"connected_steady"`
	HeapSteady       uint64 `json:"heap_steady"`
	StacksSteady     uint64 `json:"stacks_steady"`
	RSSSteady        uint64 `json:"rss_steady"`
	GoroutinesSteady int    `json:"goroutines_steady"`
	// Over the run.
	HeapPeak uint64 `json:"heap_peak"` // heap objects, sampled
	RSSPeak  uint64 `json:"rss_peak"`  // VmHWM

	Connected     int     `json:"connected"`      // devices connected at the most
	RampOffered   string  `json:"ramp_offered"`   // the scenario's arrival span
	RampTook      string  `json:"ramp_took"`      // first arrival to the last first connect
	ConnectsPerS  float64 `json:"connects_per_s"` // Connected / RampTook
	PeakPerS      float64 `json:"peak_connects_per_s"`
	ConnectP50    string  `json:"connect_p50"`
	ConnectP99    string  `json:"connect_p99"`
	ConnectFailed uint64  `json:"connect_failures"`

	Attempted uint64            `json:"messages_attempted"`
	Acked     uint64            `json:"messages_acked"`
	Stored    uint64            `json:"messages_stored"`
	Lost      uint64            `json:"messages_lost"`
	Extra     uint64            `json:"messages_extra"`
	Failed    uint64            `json:"messages_failed"`
	Errors    map[string]uint64 `json:"errors,omitempty"`

	Run  string `json:"run"`  // fleet's Result.Duration: devices made, run, stopped
	Wall string `json:"wall"` // fleet.Run, called to returned
}

// HeapPerDevice is the live heap each connected device added.
func (f *figures) HeapPerDevice() float64 {
	return perDevice(f.HeapSteady, f.HeapBefore, f.ConnectedSteady)
}

// StacksPerDevice is the goroutine stack memory each connected device added.
func (f *figures) StacksPerDevice() float64 {
	return perDevice(f.StacksSteady, f.StacksBefore, f.ConnectedSteady)
}

// RSSPerDevice is the resident memory each connected device added.
func (f *figures) RSSPerDevice() float64 {
	return perDevice(f.RSSSteady, f.RSSBefore, f.ConnectedSteady)
}

// PeakRSSPerDevice is the run's peak resident memory per device.
func (f *figures) PeakRSSPerDevice() float64 { return perDevice(f.RSSPeak, f.RSSBefore, f.Devices) }

// GoroutinesPerDevice is the goroutines each connected device added.
func (f *figures) GoroutinesPerDevice() float64 {
	if f.ConnectedSteady == 0 {
		return 0
	}
	return float64(f.GoroutinesSteady-f.GoroutinesBefore) / float64(f.ConnectedSteady)
}

func perDevice(after, before uint64, n int) float64 {
	if n == 0 {
		return 0
	}
	return (float64(after) - float64(before)) / float64(n)
}

// measure runs the config's fleet and watches the process while it runs.
func measure(ctx context.Context, c config) (*figures, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	p, err := c.plan()
	if err != nil {
		return nil, err
	}
	f := &figures{Devices: p.Len(), Protocol: c.Protocol, Link: c.Link, Transport: c.Transport, RampOffered: c.Ramp.String()}
	runtime.GC()
	before := readProcess()
	f.FilesBefore, f.HeapBefore, f.StacksBefore, f.RSSBefore, f.GoroutinesBefore = before.files, before.heapLive, before.stacks, before.rss, before.goroutines

	rec := newRecorder(p.Len(), c.Duration, c.Settle)
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	peaks := &peaks{}
	wg.Go(func() { peaks.watch(sctx, c.Every/2) })
	var steady process
	var steadyErr error
	wg.Go(func() {
		select {
		case <-sctx.Done():
			return
		case <-rec.due:
		}
		runtime.GC()
		steady = readProcess()
		if c.MemProfile != "" {
			steadyErr = writeProfiles(c.MemProfile)
		}
		s := rec.last()
		f.Steady, f.SteadyAt, f.ConnectedSteady = s.connected == p.Len(), s.elapsed.Round(time.Millisecond).String(), s.connected
	})

	t0 := time.Now()
	res, err := fleet.Run(ctx, p, fleet.Options{Progress: rec.observe, ProgressEvery: c.Every, SkipPreflight: c.SkipPreflight})
	wall := time.Since(t0)
	stop()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if steadyErr != nil {
		return nil, steadyErr
	}
	if steady.rss == 0 && steady.heapLive == 0 {
		return nil, fmt.Errorf("the run of %s ended before the steady state was read: lengthen -duration or shorten -settle", c.Duration)
	}
	f.HeapSteady, f.StacksSteady, f.RSSSteady, f.GoroutinesSteady = steady.heapLive, steady.stacks, steady.rss, steady.goroutines
	f.FilesPeak, f.HeapPeak = peaks.result()
	f.RSSPeak = readProcess().rssPeak

	r := rec.ramp()
	f.Connected, f.RampTook, f.ConnectsPerS, f.PeakPerS = r.connected, r.took.Round(time.Millisecond).String(), r.rate, r.peak
	tot := res.Run.Totals()
	f.ConnectFailed = tot[simmetrics.ConnectFailures]
	f.Attempted, f.Failed = tot[simmetrics.D2CSent]+tot[simmetrics.D2CFailed], tot[simmetrics.D2CFailed]
	d := res.Delivery
	f.Acked, f.Stored, f.Lost, f.Extra = d.Acked, d.Stored, d.Lost, d.Extra
	if !d.Checked {
		f.Acked = tot[simmetrics.D2CSent]
	}
	if errs := res.Run.Errors(); len(errs) > 0 {
		f.Errors = errs
	}
	for _, g := range res.Run.Groups() {
		h := g.Histogram(simmetrics.LatencyConnect)
		us := func(q float64) string { return (time.Duration(h.ValueAtQuantile(q)) * time.Microsecond).String() }
		f.ConnectP50, f.ConnectP99 = us(50), us(99)
	}
	f.Run = res.Duration.Round(time.Millisecond).String()
	f.Wall = wall.Round(time.Millisecond).String()
	return f, nil
}

// writeProfiles writes the heap profile to path and the goroutines, grouped
// by stack, as text beside it: per device, stacks cost as much as the heap.
func writeProfiles(path string) error {
	for _, p := range []struct {
		name, path string
		debug      int
	}{{"heap", path, 0}, {"goroutine", path + ".goroutines.txt", 1}} {
		out, err := os.Create(p.path)
		if err != nil {
			return fmt.Errorf("writing the %s profile: %w", p.name, err)
		}
		if err := pprof.Lookup(p.name).WriteTo(out, p.debug); err != nil {
			out.Close()
			return fmt.Errorf("writing the %s profile: %w", p.name, err)
		}
		if err := out.Close(); err != nil {
			return fmt.Errorf("writing the %s profile: %w", p.name, err)
		}
	}
	return nil
}

// sample is the fleet at one progress report.
type sample struct {
	elapsed   time.Duration
	connected int
}

// recorder keeps the fleet's progress reports and says when the steady state
// is due: settle after every device first connected, or, if they never all
// do, near the run's end.
type recorder struct {
	want     int
	duration time.Duration
	settle   time.Duration

	mu      sync.Mutex
	samples []sample
	allAt   time.Duration // when every device was first connected; 0: not yet
	due     chan struct{}
	closed  bool
}

func newRecorder(want int, duration, settle time.Duration) *recorder {
	return &recorder{want: want, duration: duration, settle: settle, due: make(chan struct{})}
}

// lateFraction is how far into the run the steady state is read at the
// latest.
const lateFraction = 0.9

func (r *recorder) observe(p fleet.Progress) {
	s := sample{elapsed: p.Elapsed, connected: p.Sample.Count(simmetrics.StateConnected)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
	if r.allAt == 0 && s.connected >= r.want {
		r.allAt = max(s.elapsed, time.Nanosecond)
	}
	late := time.Duration(lateFraction * float64(r.duration))
	if !r.closed && ((r.allAt > 0 && s.elapsed >= min(r.allAt+r.settle, late)) || s.elapsed >= late) {
		r.closed = true
		close(r.due)
	}
}

func (r *recorder) last() sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return sample{}
	}
	return r.samples[len(r.samples)-1]
}

// rampFigures describe how fast devices first connected.
type rampFigures struct {
	connected int           // the most connected at once
	took      time.Duration // from the first arrival until then
	rate      float64       // connected / took
	peak      float64       // the fastest second
}

// ramp works the connect rate out of the samples. The first connect of every
// device happens before any reconnect can, so the connected count rising to
// its first maximum counts first connects.
func (r *recorder) ramp() rampFigures {
	r.mu.Lock()
	defer r.mu.Unlock()
	var f rampFigures
	for _, s := range r.samples {
		if s.connected > f.connected {
			f.connected, f.took = s.connected, s.elapsed
		}
	}
	if f.took > 0 {
		f.rate = float64(f.connected) / f.took.Seconds()
	}
	// The fastest rise over any window of at least a second.
	j := 0
	for i, s := range r.samples {
		for j < i && s.elapsed-r.samples[j+1].elapsed >= time.Second {
			j++
		}
		if w := s.elapsed - r.samples[j].elapsed; w >= time.Second {
			if rate := float64(s.connected-r.samples[j].connected) / w.Seconds(); rate > f.peak {
				f.peak = rate
			}
		}
	}
	return f
}

// peaks samples the open files and the heap while the run goes on.
type peaks struct {
	mu    sync.Mutex
	files int
	heap  uint64
}

func (p *peaks) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *peaks) sample() {
	files := countFiles()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	p.mu.Lock()
	p.files = max(p.files, files)
	p.heap = max(p.heap, s[0].Value.Uint64())
	p.mu.Unlock()
}

func (p *peaks) result() (files int, heap uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.files, p.heap
}

// process is this process's use of the machine at one moment.
type process struct {
	files        int
	heapLive     uint64 // live heap as of the last GC
	stacks       uint64 // goroutine stacks
	rss, rssPeak uint64
	goroutines   int
}

func readProcess() process {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	p := process{files: countFiles(), heapLive: s[0].Value.Uint64(), goroutines: int(s[1].Value.Uint64()), stacks: s[2].Value.Uint64()}
	p.rss, p.rssPeak = readStatus()
	return p
}

// countFiles counts this process's open files, less the one reading them.
func countFiles() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0
	}
	return len(names) - 1
}

// readStatus reads the resident set size and its peak from /proc; both are
// zero where there is no /proc.
func readStatus() (rss, peak uint64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		kb, err := strconv.ParseUint(fs[1], 10, 64)
		if err != nil {
			continue
		}
		switch fs[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}
