package network

import "time"

// RadioState is what the modem is doing; energy is time in each state times its
// current.
type RadioState uint8

const (
	// StateOff is the modem switched off (board in deep sleep).
	StateOff RadioState = iota
	// StateAttaching is the cold attach after power-up.
	StateAttaching
	// StateTX is RRC connected and transmitting.
	StateTX
	// StateRX is RRC connected and receiving.
	StateRX
	// StateConnectedIdle is RRC connected with nothing to send or receive,
	// waiting for the inactivity timer: the "tail".
	StateConnectedIdle
	// StateIdleDRX is RRC idle, monitoring paging every DRX cycle.
	StateIdleDRX
	// StateIdleEDRX is RRC idle with extended DRX.
	StateIdleEDRX
	// StatePSM is asleep in power saving mode, unreachable.
	StatePSM
	numRadioStates
)

var radioStateNames = [numRadioStates]string{
	StateOff:           "off",
	StateAttaching:     "attaching",
	StateTX:            "connected_tx",
	StateRX:            "connected_rx",
	StateConnectedIdle: "connected_idle",
	StateIdleDRX:       "idle_drx",
	StateIdleEDRX:      "idle_edrx",
	StatePSM:           "psm",
}

func (s RadioState) String() string {
	if s < numRadioStates {
		return radioStateNames[s]
	}
	return "invalid"
}

// RadioStates lists every radio state in report order.
func RadioStates() []RadioState {
	out := make([]RadioState, numRadioStates)
	for i := range out {
		out[i] = RadioState(i)
	}
	return out
}

// radio is the RRC and power-saving state machine of one device. It computes;
// it never sleeps or sets timers. Times passed in must not go backwards by more
// than the model's own delays (callers pass the clock's now, or a time the model
// returned).
//
// Time is accounted as closed (acc, up to closedAt) plus an open stretch that
// follows deterministically from the state: attaching until attachedAt,
// connected until connUntil, then idle — DRX, eDRX, or PSM cycles of T3412 with
// T3324 of active time each — until something promotes the radio again.
type radio struct {
	p          *Profile
	on         bool
	epoch      time.Time // power-on; paging occasions are phased from it
	attachedAt time.Time
	drxPhase   time.Duration
	edrxPhase  time.Duration
	connFrom   time.Time // start of the current or last connected period
	readyAt    time.Time // end of the attach or RRC set-up that began it
	connUntil  time.Time // last activity + RRC inactivity
	closedAt   time.Time
	acc        [numRadioStates]time.Duration // StateConnectedIdle holds all connected time until report
	taus       int
	tx, rx     time.Duration // serialisation time of uplink and downlink bursts
}

func (r *radio) powerOn(t time.Time, drxPhase, edrxPhase time.Duration) {
	if r.on {
		return
	}
	if r.closedAt.IsZero() {
		r.closedAt = t
	}
	r.integrate(t)
	r.on = true
	r.epoch = t
	r.attachedAt = t.Add(r.p.AttachTime)
	r.connFrom, r.readyAt = r.attachedAt, r.attachedAt
	r.connUntil = r.attachedAt.Add(r.p.RRCInactivity) // the network releases the UE after attach inactivity
	r.drxPhase, r.edrxPhase = drxPhase, edrxPhase
}

func (r *radio) powerOff(t time.Time) {
	if !r.on {
		return
	}
	r.integrate(t)
	r.on = false
}

// promote returns when the radio can transmit if the device wants to send at
// t: after attach, and after the RRC set-up if it was idle or asleep (or is
// still setting up).
func (r *radio) promote(t time.Time) time.Time {
	if t.Before(r.attachedAt) {
		t = r.attachedAt
	}
	if !t.After(r.connUntil) {
		return maxTime(t, r.readyAt)
	}
	r.integrate(t)
	setup := r.p.RRCSetup
	if r.p.UseRRCResume {
		setup = r.p.RRCResume
	}
	ready := t.Add(setup)
	r.connFrom, r.readyAt = t, ready
	r.connUntil = ready.Add(r.p.RRCInactivity)
	return ready
}

// connectedAt reports whether the radio is RRC connected (or still attaching,
// after which it is) at t.
func (r *radio) connectedAt(t time.Time) bool {
	return !t.After(r.connUntil)
}

// activity records a transmission from start to end and keeps the radio
// connected for the inactivity timer after it.
func (r *radio) activity(d Direction, start, end time.Time) {
	if end.Add(r.p.RRCInactivity).After(r.connUntil) {
		r.connUntil = end.Add(r.p.RRCInactivity)
	}
	if d == Up {
		r.tx += end.Sub(start)
	} else {
		r.rx += end.Sub(start)
	}
}

// reach says when downlink data that reaches the base station at t can be
// paged to the device: t itself if it is connected, the next paging occasion
// if it is idle, or the next periodic TAU if it is asleep in PSM (asleep is
// then true: an uplink before that wakes it sooner).
func (r *radio) reach(t time.Time) (at time.Time, asleep bool) {
	if t.Before(r.attachedAt) {
		t = r.attachedAt
	}
	if !t.After(r.connUntil) {
		return t, false
	}
	if r.p.PSM {
		x := t.Sub(r.connUntil)
		k := x / r.p.T3412
		if x-k*r.p.T3412 >= r.p.T3324 {
			return r.connUntil.Add((k + 1) * r.p.T3412), true
		}
	}
	return r.nextPagingOccasion(t), false
}

// nextPagingOccasion is the first paging occasion at or after t: every
// DRXCycle from the device's phase, or with eDRX, every DRXCycle inside the
// paging time window that opens every EDRXCycle.
func (r *radio) nextPagingOccasion(t time.Time) time.Time {
	drx := r.p.DRXCycle
	if r.p.EDRX {
		base := r.epoch.Add(r.edrxPhase)
		k := floorDiv(t.Sub(base), r.p.EDRXCycle)
		w := base.Add(k * r.p.EDRXCycle)
		if t.Before(w.Add(r.p.EDRXPTW)) {
			po := w.Add(ceilDiv(t.Sub(w), drx) * drx)
			if po.Before(w.Add(r.p.EDRXPTW)) {
				return po
			}
		}
		return w.Add(r.p.EDRXCycle)
	}
	base := r.epoch.Add(r.drxPhase)
	return base.Add(ceilDiv(t.Sub(base), drx) * drx)
}

func floorDiv(a, b time.Duration) time.Duration {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b time.Duration) time.Duration {
	return -floorDiv(-a, b)
}

// integrate moves the closed accounting forward to t along the open stretch.
func (r *radio) integrate(t time.Time) {
	from := r.closedAt
	if !t.After(from) {
		return
	}
	r.closedAt = t
	if !r.on {
		r.acc[StateOff] += t.Sub(from)
		return
	}
	if from.Before(r.attachedAt) {
		e := minTime(t, r.attachedAt)
		r.acc[StateAttaching] += e.Sub(from)
		from = e
	}
	if from.Before(t) && from.Before(r.connUntil) {
		e := minTime(t, r.connUntil)
		r.acc[StateConnectedIdle] += e.Sub(from)
		from = e
	}
	if from.Before(t) {
		r.integrateIdle(from.Sub(r.connUntil), t.Sub(r.connUntil))
	}
}

// integrateIdle accounts idle time from x0 to x1 after the RRC release.
func (r *radio) integrateIdle(x0, x1 time.Duration) {
	paging := StateIdleDRX
	if r.p.EDRX {
		paging = StateIdleEDRX
	}
	if !r.p.PSM {
		r.acc[paging] += x1 - x0
		return
	}
	period, active := r.p.T3412, r.p.T3324
	// activeUntil(x) is the active time in [0, x): T3324 at the start of every
	// T3412 period, each period starting with a TAU (the first with the release).
	activeUntil := func(x time.Duration) time.Duration {
		return (x/period)*active + min(x%period, active)
	}
	a := activeUntil(x1) - activeUntil(x0)
	r.acc[paging] += a
	r.acc[StatePSM] += x1 - x0 - a
	r.taus += int(x1/period - x0/period)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// report returns the time in each state from the first power-on to now. The
// connected time is split into TX (uplink serialisation × TXDuty), RX
// (downlink serialisation and the rest of uplink bursts) and the tail.
func (r *radio) report(now time.Time, start time.Time) EnergyReport {
	cp := *r
	cp.integrate(now)
	var rep EnergyReport
	rep.Elapsed = now.Sub(start)
	rep.time = cp.acc
	connected := cp.acc[StateConnectedIdle]
	tx := time.Duration(float64(r.tx) * r.p.TXDuty)
	rx := r.rx + r.tx - tx
	tx, rx = min(tx, connected), min(rx, connected-min(tx, connected))
	rep.time[StateTX] = tx
	rep.time[StateRX] = rx
	rep.time[StateConnectedIdle] = connected - tx - rx
	rep.TAUs = cp.taus
	rep.ChargeMAh = rep.charge(r.p)
	return rep
}
