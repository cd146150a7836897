package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/protocols/amqp"
	"github.com/catmsim/catmsim/protocols/eventhubs"
	"github.com/catmsim/catmsim/protocols/genericmqtt"
	"github.com/catmsim/catmsim/protocols/https"
	"github.com/catmsim/catmsim/protocols/mqtt"
	"github.com/catmsim/catmsim/scenarios"
)

// clients is the one table of device-side protocol implementations.
var clients = map[protocols.Protocol]func(protocols.Config) (protocols.Client, error){
	protocols.MQTT:           func(c protocols.Config) (protocols.Client, error) { return mqtt.New(c) },
	protocols.MQTTWebSocket:  func(c protocols.Config) (protocols.Client, error) { return mqtt.New(c) },
	protocols.AMQP:           func(c protocols.Config) (protocols.Client, error) { return amqp.New(c) },
	protocols.AMQPWebSocket:  func(c protocols.Config) (protocols.Client, error) { return amqp.New(c) },
	protocols.HTTPS:          func(c protocols.Config) (protocols.Client, error) { return https.New(c) },
	protocols.EventHubsHTTPS: func(c protocols.Config) (protocols.Client, error) { return eventhubs.New(c) },
	protocols.GenericMQTT:    func(c protocols.Config) (protocols.Client, error) { return genericmqtt.New(c) },
}

// Options tune a run.
type Options struct {
	Target TargetOptions
	// Progress, when set, is called every ProgressEvery with the fleet's state.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Logger receives the fleet's notes (nothing when nil).
	Logger *slog.Logger
	// SkipPreflight runs even when the machine's limits look too small.
	SkipPreflight bool
}

// Progress is the fleet at one moment, for a live progress line.
type Progress struct {
	Elapsed, Remaining time.Duration
	Sample             metrics.Sample
	Errors             map[string]uint64
}

// Result is what a run leaves for the reports.
type Result struct {
	Run         *metrics.Run
	Started     time.Time
	Duration    time.Duration
	Interrupted bool // the caller cancelled the run before its end
	Target      string
	Delivery    Delivery
	Firmware    FirmwareStats
}

// Delivery compares what devices believe the hub acknowledged with what the
// hub stored: the proof that nothing was lost or duplicated. Checked is false
// when the target cannot tell (a real hub, a broker).
type Delivery struct {
	Checked bool
	Acked   uint64 // messages the hub acknowledged to devices
	Stored  uint64 // messages the hub stored from this run's devices
	Lost    uint64 // acknowledged but not stored
	Extra   uint64 // stored more often than acknowledged (a QoS 1 resend, or an ack lost at the end)
}

// Run runs a plan to its duration, or until ctx ends, and returns what it
// measured. Devices are stopped and their connections closed before it
// returns; an interrupted run still returns its result.
func Run(ctx context.Context, p *scenarios.Plan, o Options) (*Result, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !o.SkipPreflight {
		if err := Check(estimate(p), ReadLimits()); err != nil {
			return nil, err
		}
	}
	for _, pr := range p.Profiles {
		if _, ok := clients[pr.Protocol]; !ok {
			return nil, fmt.Errorf("profile %s: protocol %s is not available in this build", pr.Name, pr.Protocol)
		}
	}
	// Firmware is compiled first: a module that cannot run fails here, before
	// the target starts or any device is provisioned.
	fws, err := loadFirmware(ctx, p)
	if err != nil {
		return nil, err
	}
	defer fws.close(context.WithoutCancel(ctx))
	t, err := newTarget(ctx, p, o.Target)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = t.close(cctx)
	}()
	if t.provision != nil {
		ids := make([]string, 0, p.Len())
		for d := range p.Devices() {
			ids = append(ids, d.ID)
		}
		log.Info("provisioning devices", "count", len(ids))
		if err := t.provision(ctx, ids); err != nil {
			return nil, err
		}
	}

	run := metrics.NewRun(time.Now)
	run.TrackArrivals()
	f := &fleet{plan: p, target: t, run: run, log: log, c2dSent: map[string]time.Time{}}
	devices := make([]*device, 0, p.Len())
	for d := range p.Devices() {
		dev, err := f.newDevice(ctx, d, fws)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", d.ID, err)
		}
		devices = append(devices, dev)
	}
	f.devices = devices
	f.byGroup = map[string][]*device{}
	for _, d := range devices {
		f.byGroup[d.plan.Group] = append(f.byGroup[d.plan.Group], d)
	}

	started := run.Start()
	runCtx, stop := context.WithTimeout(ctx, p.Duration.D())
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	for _, d := range devices {
		g.Go(func() error { d.run(gctx, started); return nil })
	}
	g.Go(func() error { f.drive(gctx, started); return nil })
	g.Go(func() error { f.events(gctx, started); return nil })
	if o.Progress != nil {
		every := o.ProgressEvery
		if every <= 0 {
			every = time.Second
		}
		g.Go(func() error { f.progress(gctx, started, every, o.Progress); return nil })
	}
	_ = g.Wait()
	// A last sample for the charts.
	run.Sample()
	res := &Result{Run: run, Started: started, Duration: time.Since(started), Interrupted: ctx.Err() != nil, Target: t.kind}
	res.Delivery = f.delivery()
	res.Firmware = f.firmwareStats()
	return res, nil
}

type fleet struct {
	plan    *scenarios.Plan
	target  *target
	run     *metrics.Run
	log     *slog.Logger
	devices []*device
	byGroup map[string][]*device

	mu      sync.Mutex
	c2dSent map[string]time.Time // C2D message id → when the cloud sent it
	c2dSeq  uint64
}

func (f *fleet) newDevice(ctx context.Context, d scenarios.Device, fws *firmwares) (*device, error) {
	prof := f.plan.Profile(d.Profile)
	if prof == nil {
		return nil, fmt.Errorf("no profile %q", d.Profile)
	}
	// Separate streams for the link model and the device's own choices, so
	// that a change to one does not shift the other.
	linkRand := rand.New(rand.NewPCG(d.Seed^0x9e3779b97f4a7c15, uint64(d.Index)))
	ledger := network.NewLedger()
	link, err := network.NewLink(prof.Link.Profile, network.LinkOptions{Clock: network.RealClock(), Rand: linkRand, Ledger: ledger})
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	var plan int64
	if prof.DataPlan != nil {
		plan = int64(prof.DataPlan.PerMonth())
	}
	m := f.run.Device(metrics.DeviceInfo{Index: d.Index, ID: d.ID, Group: d.Group, Profile: d.Profile, Protocol: string(prof.Protocol), DataPlan: plan}, ledger, link.Energy)
	if err := f.target.register(d.ID, prof.Auth); err != nil {
		return nil, err
	}
	creds, err := f.target.credentials(d.ID, prof.Auth)
	if err != nil {
		return nil, err
	}
	creds.TokenTTL, creds.RenewAt = prof.TokenTTL.D(), prof.RenewAt
	cfg := f.clientConfig(prof, d.ID, link, creds)
	c, err := clients[prof.Protocol](cfg)
	if err != nil {
		return nil, err
	}
	dev := &device{f: f, plan: d, prof: prof, m: m, link: link, client: c, rnd: d.Rand(),
		dropped: make(chan error, 1), events: make(chan deviceEvent, 8)}
	if b := prof.Behaviour; b != nil && b.Telemetry != nil {
		dev.payloads = newPayloads(b.Telemetry, dev.rnd)
	}
	if m := fws.mods[prof.Name]; m != nil {
		if err := dev.newFirmware(ctx, m); err != nil {
			return nil, err
		}
	}
	dev.bind()
	return dev, nil
}

func (f *fleet) clientConfig(prof *scenarios.PlanProfile, id string, link *network.Link, creds protocols.Credentials) protocols.Config {
	t := f.target
	host := t.hostName
	if prof.Protocol == protocols.EventHubsHTTPS {
		host = t.ehHost
		creds = protocols.Credentials{Key: t.ehKey, KeyName: "send", TokenTTL: creds.TokenTTL, RenewAt: creds.RenewAt}
	}
	cfg := protocols.Config{
		Protocol: prof.Protocol,
		HostName: host,
		Address:  t.addrs[prof.Protocol],
		Auth:     creds,
		TLS: protocols.TLSOptions{
			RootCAs: t.roots, ServerName: host,
			MinVersion: tlsVersion(prof.TLS.Version), MaxVersion: tlsVersion(prof.TLS.MaxVersion),
			Resumption: prof.TLS.Resumption,
		},
		Dialer:                  &network.Dialer{Link: link, Transport: t.transport},
		APIVersion:              prof.APIVersion,
		ModelID:                 prof.ModelID,
		ClientType:              "catmsim",
		KeepAlive:               prof.KeepAlive.D(),
		CleanSession:            prof.CleanSession,
		QoS:                     byte(prof.QoS),
		IdleTimeout:             prof.KeepAlive.D(),
		NewConnectionPerRequest: prof.HTTPS.NewConnectionPerRequest,
		EventHub:                prof.EventHub,
		TopicUp:                 t.topicUp,
		TopicDown:               t.topicDown,
	}
	cfg.Identity.DeviceID = id
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = -1 // an explicit 0 turns MQTT keep-alive off
	}
	return cfg
}

func tlsVersion(v string) uint16 {
	switch v {
	case "1.2":
		return tls.VersionTLS12
	case "1.3":
		return tls.VersionTLS13
	}
	return 0
}

// estimate is the run's peak use for the preflight: open files by transport,
// memory per device by protocol (and firmware) from the scale benchmark.
func estimate(p *scenarios.Plan) Needs {
	files, kernel := 1, true
	if p.Target.Kind == "" || p.Target.Kind == "embedded" {
		if p.Target.Transport == "tcp" {
			files = 2 // the emulator in this process holds the other end
		} else {
			files, kernel = 0, false
		}
	}
	var total uint64
	byProfile := map[string]uint64{}
	for d := range p.Devices() { // this shard's devices
		m, ok := byProfile[d.Profile]
		if !ok {
			m = deviceMemory(p.Profile(d.Profile))
			byProfile[d.Profile] = m
		}
		total += m
	}
	per := uint64(0)
	if n := p.Len(); n > 0 {
		per = (total + uint64(n) - 1) / uint64(n)
	}
	return Estimate(p.Len(), files, per, kernel)
}

// perDeviceMemory is the peak memory of one device and its side of the
// embedded hub, by protocol: the larger of resident memory and heap plus
// goroutine stacks per device at 20,000 devices, rounded up
// (go run ./bench/fleetscale, bench/README.md). AMQP costs most because
// go-amqp gives every session and link a 5,000-slot queue. Protocols not
// measured take their transport's sibling's figure.
var perDeviceMemory = map[protocols.Protocol]uint64{
	protocols.MQTT: 192 << 10, protocols.MQTTWebSocket: 192 << 10, protocols.GenericMQTT: 192 << 10,
	protocols.AMQP: 352 << 10, protocols.AMQPWebSocket: 352 << 10,
	protocols.HTTPS: 128 << 10, protocols.EventHubsHTTPS: 128 << 10,
}

// firmwareMemory is what a device's firmware instance adds: about 105 KB for
// the C example at 1,000 devices (BenchmarkFirmwareFleet), 64 KiB of it its
// one page of linear memory, rounded up. A module that starts with or grows
// to more memory, up to its profile's firmware_limits.memory, costs more than
// the preflight can foresee.
const firmwareMemory = 128 << 10

func deviceMemory(pr *scenarios.PlanProfile) uint64 {
	if pr == nil {
		return perDeviceMemory[protocols.AMQP] // the dearest, when unsure
	}
	m, ok := perDeviceMemory[pr.Protocol]
	if !ok {
		m = perDeviceMemory[protocols.AMQP]
	}
	if pr.Firmware != "" {
		m += firmwareMemory
	}
	return m
}

// delivery compares acknowledged and stored telemetry per device.
func (f *fleet) delivery() Delivery {
	var d Delivery
	for _, dev := range f.devices {
		acked := dev.m.Get(metrics.D2CSent)
		stored, ok := f.target.stored(dev.plan.ID)
		if !ok {
			return Delivery{}
		}
		d.Checked = true
		d.Acked += acked
		d.Stored += uint64(stored)
		if uint64(stored) < acked {
			d.Lost += acked - uint64(stored)
		} else {
			d.Extra += uint64(stored) - acked
		}
	}
	return d
}

func (f *fleet) progress(ctx context.Context, started time.Time, every time.Duration, report func(Progress)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s := f.run.Sample()
			rem := f.plan.Duration.D() - time.Since(started)
			if rem < 0 {
				rem = 0
			}
			report(Progress{Elapsed: s.Elapsed, Remaining: rem, Sample: s, Errors: f.run.Errors()})
		}
	}
}

// events runs the plan's fleet-wide events at their times.
func (f *fleet) events(ctx context.Context, started time.Time) {
	for _, e := range f.plan.Events {
		if !sleepUntil(ctx, started.Add(e.At.D())) {
			return
		}
		switch e.Kind {
		case "outage":
			f.log.Info("outage", "devices", len(e.Devices), "for", e.Duration.D())
			idx := map[int]*device{}
			for _, d := range f.devices {
				idx[d.plan.Index] = d
			}
			for _, i := range e.Devices {
				if d := idx[int(i)]; d != nil {
					d.send(deviceEvent{kind: evOutage, d: e.Duration.D()})
				}
			}
		case "hub_restart":
			if f.target.cloud != nil {
				if err := f.target.cloud.disconnectAll(); err != nil {
					f.log.Warn("hub restart", "error", err)
				}
			}
		}
	}
}

// sleepUntil waits for t or ctx; it reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errKind names an error's kind for counters, as a tag value ("timed_out").
func errKind(err error) string {
	k := protocols.KindOther
	var pe *protocols.Error
	switch {
	case errors.As(err, &pe):
		k = pe.Kind
	case errors.Is(err, context.DeadlineExceeded):
		k = protocols.KindTimeout
	}
	return slug(k)
}

func slug(k protocols.Kind) string { return strings.ReplaceAll(k.String(), " ", "_") }
