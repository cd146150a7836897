package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/catmsim/catmsim/internal/iothub"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/scenarios"
)

// opTimeout bounds one device operation (a send, a twin request); over a poor
// link with retransmissions a few seconds are normal, minutes are not.
const opTimeout = 60 * time.Second

type eventKind int

const (
	evOutage   eventKind = iota // the cell is gone for d
	evDesired                   // report a desired patch back
	evHubError                  // the protocol client saw the connection end
)

type deviceEvent struct {
	kind  eventKind
	d     time.Duration
	patch []byte
}

// device is one virtual device: its link, its client, its behaviour and its
// measurements. One goroutine runs it; handlers the client calls only hand
// work to that goroutine through events.
type device struct {
	f        *fleet
	plan     scenarios.Device
	prof     *scenarios.PlanProfile
	m        *metrics.Device
	link     *network.Link
	client   protocols.Client
	rnd      *rand.Rand
	payloads *payloads
	fw       *fwDevice // nil: the profile's behaviour is declarative

	dropped chan error
	events  chan deviceEvent

	nextSend, nextPoll time.Time
	connects           int
}

func (d *device) behaviour() *scenarios.Behaviour {
	if d.prof.Behaviour != nil {
		return d.prof.Behaviour
	}
	return &scenarios.Behaviour{Reconnect: scenarios.Reconnect{Initial: scenarios.Duration(time.Second), Max: scenarios.Duration(5 * time.Minute), Multiplier: 2}}
}

// send queues an event for the device without ever blocking the sender; an
// event that finds the queue full is dropped and counted as an error.
func (d *device) send(e deviceEvent) {
	select {
	case d.events <- e:
	default:
		d.m.Error("event_queue_full", errors.New("the device was too busy to take an event"))
	}
}

// bind registers the device's handlers on its client before it connects. A
// device subscribes only to what its group is sent — C2D, methods, desired
// updates — as firmware registers only the handlers it has: each
// subscription costs bytes (MQTT SUBSCRIBE, AMQP link attach and credit).
func (d *device) bind() {
	b := d.behaviour()
	cloud := d.f.plan.Cloud
	in := func(groups []string) bool { return slices.Contains(groups, d.plan.Group) }
	if s, ok := d.client.(protocols.StateNotifier); ok {
		s.OnState(func(connected bool, err error) {
			if connected {
				return
			}
			select {
			case d.dropped <- err:
			default:
			}
		})
	}
	if d.fw != nil {
		d.bindFirmware(in(cloud.C2DGroups) && cloud.C2D != nil, in(cloud.MethodGroups) && cloud.Methods != nil, in(cloud.DesiredGroups) && cloud.Desired != nil)
		return
	}
	if r, ok := d.client.(protocols.C2DReceiver); ok && cloud.C2D != nil && in(cloud.C2DGroups) {
		r.OnC2D(func(_ context.Context, m *protocols.C2DMessage) protocols.Outcome {
			d.c2dArrived(&m.Message)
			return outcome(b.OnC2D)
		})
	}
	if ms, ok := d.client.(protocols.MethodServer); ok && cloud.Methods != nil && in(cloud.MethodGroups) {
		ms.OnMethod(func(ctx context.Context, _ string, _ []byte) (int, []byte) {
			if delay := b.OnMethod.Delay.D(); delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			return b.OnMethod.Status, []byte(b.OnMethod.Payload)
		})
	}
	if tc, ok := d.client.(protocols.TwinClient); ok && cloud.Desired != nil && in(cloud.DesiredGroups) {
		tc.OnDesired(func(patch []byte, _ int64) {
			d.m.Add(metrics.DesiredUpdates, 1)
			if b.OnDesired == "report" {
				d.send(deviceEvent{kind: evDesired, patch: append([]byte(nil), patch...)})
			}
		})
	}
}

// bindFirmware registers the handlers the firmware has, for what the device
// is sent.
func (d *device) bindFirmware(c2d, methods, desired bool) {
	h := d.fw.handles
	if r, ok := d.client.(protocols.C2DReceiver); ok && c2d && h.C2D {
		r.OnC2D(func(ctx context.Context, m *protocols.C2DMessage) protocols.Outcome {
			d.c2dArrived(&m.Message)
			return d.fwC2D(ctx, &m.Message)
		})
	}
	if ms, ok := d.client.(protocols.MethodServer); ok && methods && h.Method {
		ms.OnMethod(d.fwMethod)
	}
	if tc, ok := d.client.(protocols.TwinClient); ok && desired && h.Desired {
		tc.OnDesired(func(patch []byte, version int64) {
			d.m.Add(metrics.DesiredUpdates, 1)
			d.fwDesired(context.Background(), patch, version)
		})
	}
}

func outcome(s string) protocols.Outcome {
	switch s {
	case "abandon":
		return protocols.Abandon
	case "reject":
		return protocols.Reject
	}
	return protocols.Complete
}

func (d *device) c2dArrived(m *iothub.Message) {
	d.m.Add(metrics.C2DReceived, 1)
	if sent, ok := d.f.c2dTaken(m.MessageID); ok {
		d.m.Observe(metrics.LatencyC2D, time.Since(sent))
	}
}

// run is the device's life: arrive, connect, work, and reconnect with back-off
// after drops, outages and sleeps, until ctx ends.
func (d *device) run(ctx context.Context, started time.Time) {
	defer d.fwClose(ctx)
	if !sleepUntil(ctx, started.Add(d.plan.Arrival.D())) {
		return // never arrived: it stays waiting
	}
	defer func() {
		// A failed device stays failed in the report.
		if d.m.State() != metrics.StateFailed {
			d.m.SetState(metrics.StateDone)
		}
	}()
	d.m.Arrived(time.Now())
	d.link.PowerOn()
	defer d.link.PowerOff()
	bo := newBackoff(d.behaviour().Reconnect)
	if b := d.prof.Behaviour; b != nil && b.Telemetry != nil {
		// Firmware sends its first reading as soon as it is connected
		// (connect; loop { read; send; sleep }), within the interval's jitter;
		// arrivals already spread the fleet.
		spread := time.Duration(b.Telemetry.Jitter.Fraction() * float64(b.Telemetry.Interval.D()))
		d.nextSend = time.Now().Add(time.Duration(d.rnd.Int64N(int64(spread) + 1)))
	}
	for ctx.Err() == nil {
		d.m.SetState(metrics.StateConnecting)
		t0 := time.Now()
		err := d.connect(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.m.Add(metrics.ConnectFailures, 1)
			d.m.Error(errKind(err), err)
			if permanent(err) {
				d.m.SetState(metrics.StateFailed)
				<-ctx.Done()
				return
			}
			d.m.SetState(metrics.StateBackoff)
			if !sleepFor(ctx, bo.wait(d.rnd)) {
				return
			}
			continue
		}
		d.m.Observe(metrics.LatencyConnect, time.Since(t0))
		d.m.Add(metrics.Connects, 1)
		if d.connects > 0 {
			d.m.Add(metrics.Reconnects, 1)
		}
		d.connects++
		bo.reset()
		d.m.SetState(metrics.StateConnected)
		d.afterConnect(ctx)
		why := d.session(ctx)
		if d.fw != nil {
			d.fw.connected.Store(false)
		}
		d.closeClient(ctx)
		switch why.kind {
		case endFailed:
			d.m.SetState(metrics.StateFailed)
			<-ctx.Done()
			return
		case endOutage:
			d.m.SetState(metrics.StateOffline)
			d.link.PowerOff()
			ok := sleepFor(ctx, why.d)
			d.link.PowerOn()
			if !ok {
				return
			}
			// The cell is back: every device of the outage reconnects at once,
			// the reconnect storm the scenario asked for.
		case endSleep:
			d.m.Add(metrics.Sleeps, 1)
			d.m.SetState(metrics.StateSleeping)
			d.link.PowerOff()
			ok := sleepFor(ctx, why.d)
			d.link.PowerOn()
			if !ok {
				return
			}
		case endDropped:
			if why.err != nil {
				d.m.Error(errKind(why.err), why.err)
			}
			d.m.SetState(metrics.StateBackoff)
			if !sleepFor(ctx, bo.wait(d.rnd)) {
				return
			}
		case endDone:
			return
		}
	}
}

func (d *device) connect(ctx context.Context) error {
	// Drain a drop reported by the previous connection.
	select {
	case <-d.dropped:
	default:
	}
	cctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
	defer cancel()
	return d.client.Connect(cctx)
}

// permanent reports an error that reconnecting cannot fix.
func permanent(err error) bool {
	return errors.Is(err, protocols.ErrUnsupported)
}

func (d *device) closeClient(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = d.client.Close(cctx)
}

func (d *device) afterConnect(ctx context.Context) {
	b := d.prof.Behaviour
	if b == nil || len(b.ReportedOnConnect) == 0 {
		return
	}
	tc, ok := d.client.(protocols.TwinClient)
	if !ok {
		return
	}
	patch, err := json.Marshal(b.ReportedOnConnect)
	if err != nil {
		return
	}
	d.twinPatch(ctx, tc, patch)
}

func (d *device) twinPatch(ctx context.Context, tc protocols.TwinClient, patch []byte) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	t0 := time.Now()
	_, err := tc.PatchReported(octx, patch)
	if err != nil {
		if ctx.Err() == nil {
			d.m.Error(errKind(err), err)
		}
		return
	}
	d.m.Observe(metrics.LatencyTwin, time.Since(t0))
	d.m.Add(metrics.TwinOps, 1)
}

type endKind int

const (
	endDone endKind = iota
	endDropped
	endOutage
	endSleep
	endFailed // the device's firmware failed
)

type sessionEnd struct {
	kind endKind
	d    time.Duration
	err  error
}

// session is one connection's work: telemetry on its schedule, C2D polls,
// desired echoes, until the connection drops, an event takes the device away,
// its sleep cycle comes round, or ctx ends.
func (d *device) session(ctx context.Context) sessionEnd {
	b := d.prof.Behaviour
	var sendT, pollT, sleepT <-chan time.Time
	timer := func(at time.Time) (<-chan time.Time, *time.Timer) {
		t := time.NewTimer(time.Until(at))
		return t.C, t
	}
	var timers []*time.Timer
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	if d.payloads != nil {
		c, t := timer(d.nextSend)
		sendT, timers = c, append(timers, t)
	}
	poller, polls := d.client.(protocols.C2DPoller)
	if d.fw != nil && !d.fw.handles.C2D {
		polls = false // firmware with no C2D handler never asks for messages
	}
	if polls && d.prof.HTTPS.C2DPoll > 0 {
		if d.nextPoll.IsZero() {
			d.nextPoll = time.Now().Add(time.Duration(d.rnd.Int64N(int64(d.prof.HTTPS.C2DPoll.D()) + 1)))
		}
		c, t := timer(d.nextPoll)
		pollT, timers = c, append(timers, t)
	}
	if b != nil && b.Sleep != nil {
		c, t := timer(time.Now().Add(b.Sleep.Every.D() - b.Sleep.For.D()))
		sleepT, timers = c, append(timers, t)
	}
	// The firmware's one timer, re-armed whenever the firmware sets it.
	var fwT <-chan time.Time
	var fwTimer *time.Timer
	defer func() {
		if fwTimer != nil {
			fwTimer.Stop()
		}
	}()
	var fwKick <-chan struct{}
	var armed time.Time
	rearm := func() {}
	if d.fw != nil {
		fwKick = d.fw.kick
		booting := !d.fw.started
		if !d.fwStart(ctx) {
			return d.fwFailed()
		}
		if booting {
			// What the firmware's init sends recurs only when the device
			// restarts: projections count it once, like the first
			// connection. It is counted as queued, so that a send still in
			// flight when the run ends counts too.
			sent, patches := d.fw.queued()
			d.m.SetSetup(map[metrics.Count]uint64{metrics.D2CSent: sent, metrics.TwinOps: patches})
		}
		rearm = func() {
			at := d.fw.timer()
			if at.Equal(armed) {
				return
			}
			armed, fwT = at, nil
			if fwTimer != nil {
				fwTimer.Stop()
			}
			if !at.IsZero() {
				fwTimer = time.NewTimer(time.Until(at))
				fwT = fwTimer.C
			}
		}
		if end, stop := d.fwFlush(ctx); stop {
			return end
		}
		rearm()
	}
	for {
		select {
		case <-ctx.Done():
			return sessionEnd{kind: endDone}
		case <-fwKick:
			if end, stop := d.fwFlush(ctx); stop {
				return end
			}
			rearm()
		case <-fwT:
			armed, fwT = time.Time{}, nil
			if !d.fwOnTimer(ctx) {
				return d.fwFailed()
			}
			if end, stop := d.fwFlush(ctx); stop {
				return end
			}
			rearm()
		case err := <-d.dropped:
			return sessionEnd{kind: endDropped, err: err}
		case e := <-d.events:
			switch e.kind {
			case evOutage:
				return sessionEnd{kind: endOutage, d: e.d}
			case evDesired:
				if tc, ok := d.client.(protocols.TwinClient); ok {
					d.twinPatch(ctx, tc, stripVersion(e.patch))
				}
			}
		case <-sleepT:
			return sessionEnd{kind: endSleep, d: b.Sleep.For.D()}
		case <-sendT:
			interval := b.Telemetry.Interval.D()
			d.nextSend = d.nextSend.Add(jittered(interval, b.Telemetry.Jitter.Fraction(), d.rnd))
			if now := time.Now(); d.nextSend.Before(now) {
				d.nextSend = now.Add(interval) // a device that fell behind does not burst to catch up
			}
			c, t := timer(d.nextSend)
			sendT, timers = c, append(timers, t)
			if err := d.sendTelemetry(ctx); err != nil && reconnectOn(err) {
				return sessionEnd{kind: endDropped, err: err}
			}
		case <-pollT:
			d.nextPoll = time.Now().Add(d.prof.HTTPS.C2DPoll.D())
			c, t := timer(d.nextPoll)
			pollT, timers = c, append(timers, t)
			d.poll(ctx, poller)
		}
	}
}

// reconnectOn reports errors after which the device reconnects: a dropped
// connection, or credentials the hub refused (a fresh token may do).
func reconnectOn(err error) bool {
	return errors.Is(err, protocols.ErrDisconnected) || errors.Is(err, protocols.ErrUnauthorized)
}

func stripVersion(patch []byte) []byte {
	var m map[string]any
	if json.Unmarshal(patch, &m) != nil {
		return patch
	}
	for k := range m {
		if strings.HasPrefix(k, "$") {
			delete(m, k)
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// sendTelemetry sends one batch (or one message) and records what the hub
// acknowledged. The error is returned only for the session to decide whether
// to reconnect; it is already counted.
func (d *device) sendTelemetry(ctx context.Context) error {
	b := d.prof.Behaviour.Telemetry
	n := max(b.Batch, 1)
	msgs := make([]*iothub.Message, n)
	seqs := make([]int64, n)
	now := time.Now()
	for i := range msgs {
		msgs[i], seqs[i] = d.payloads.next(now)
	}
	return d.deliver(ctx, msgs, seqs)
}

// deliver sends messages (as one batch where the protocol has batches) and
// records what the hub acknowledged; seqs are their sequence numbers.
func (d *device) deliver(ctx context.Context, msgs []*iothub.Message, seqs []int64) error {
	n := len(msgs)
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	t0 := time.Now()
	sent := 0
	var err error
	if bs, ok := d.client.(protocols.BatchSender); ok && n > 1 {
		if err = bs.SendBatch(octx, msgs); err == nil {
			sent = n
		}
	} else {
		for _, m := range msgs {
			if err = d.client.SendTelemetry(octx, m); err != nil {
				break
			}
			sent++
		}
	}
	d.m.Add(metrics.D2CSent, sent)
	if sent > 0 {
		d.m.Acked(seqs[sent-1] + 1)
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		d.m.Add(metrics.D2CFailed, n-sent)
		d.m.Error(errKind(err), err)
		return err
	}
	d.m.Observe(metrics.LatencyD2C, time.Since(t0))
	return nil
}

func (d *device) poll(ctx context.Context, p protocols.C2DPoller) {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for {
		d.m.Add(metrics.C2DPolls, 1)
		m, err := p.PollC2D(octx)
		if err != nil {
			if ctx.Err() == nil {
				d.m.Error(errKind(err), err)
			}
			return
		}
		if m == nil {
			return
		}
		d.c2dArrived(&m.Message)
		o := outcome(d.behaviour().OnC2D)
		if d.fw != nil {
			o = d.fwC2D(ctx, &m.Message)
		}
		if err := p.SettleC2D(octx, m.LockToken, o); err != nil {
			if ctx.Err() == nil {
				d.m.Error(errKind(err), err)
			}
			return
		}
	}
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	return sleepUntil(ctx, time.Now().Add(d))
}
