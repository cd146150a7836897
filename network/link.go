package network

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Link is one device's modelled LTE-M link: its radio (attach, RRC states, DRX,
// eDRX, PSM), its shared uplink and downlink, its random draws and its byte
// ledger. All connections of the device go through it, so they share the radio
// and its timers as a real modem does. A Link computes; it starts no goroutine
// and holds no timer of its own.
type Link struct {
	p      Profile
	clock  Clock
	ledger *Ledger
	start  time.Time

	mu       sync.Mutex
	rng      *rand.Rand
	radio    radio
	busy     [numDirections]time.Time // when the uplink and downlink are next free
	dialled  int
	conns    map[*Conn]struct{}
	sleepers []*Conn // readers holding downlink for a device asleep in PSM
}

// LinkOptions are a Link's collaborators; every field may be left zero.
type LinkOptions struct {
	// Clock defaults to RealClock.
	Clock Clock
	// Rand draws jitter, losses and paging phases. Pass a per-device generator
	// (rand.New(rand.NewPCG(seed, deviceIndex))) for runs that repeat; the
	// default is a fixed seed.
	Rand *rand.Rand
	// Ledger receives the device's bytes; the default is a new one.
	Ledger *Ledger
}

// NewLink validates p and returns a link for one device, powered on now: the
// device is attached AttachTime later.
func NewLink(p Profile, o LinkOptions) (*Link, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = RealClock()
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(0, 0))
	}
	if o.Ledger == nil {
		o.Ledger = NewLedger()
	}
	l := &Link{p: p, clock: o.Clock, ledger: o.Ledger, rng: o.Rand}
	l.radio.p = &l.p
	l.start = l.clock.Now()
	l.PowerOn()
	return l, nil
}

// Profile returns the link's profile.
func (l *Link) Profile() Profile { return l.p }

// Ledger returns the device's byte ledger.
func (l *Link) Ledger() *Ledger { return l.ledger }

// PowerOn switches the modem on; it attaches AttachTime later. Paging phases
// are drawn anew, as a fresh attach gets them from the network.
func (l *Link) PowerOn() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.radio.on {
		return
	}
	drx := time.Duration(l.rng.Int64N(int64(l.p.DRXCycle)))
	var edrx time.Duration
	if l.p.EDRXCycle > 0 {
		edrx = time.Duration(l.rng.Int64N(int64(l.p.EDRXCycle)))
	}
	l.radio.powerOn(l.clock.Now(), drx, edrx)
}

// PowerOff switches the modem off and closes the device's connections, as
// pulling the power would (the server sees them end).
func (l *Link) PowerOff() {
	l.mu.Lock()
	l.radio.powerOff(l.clock.Now())
	conns := make([]*Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Energy reports the device's radio time and charge from the link's creation
// until now.
func (l *Link) Energy() EnergyReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.radio.report(l.clock.Now(), l.start)
}

// ErrPoweredOff is returned when dialling a device whose modem is off.
var ErrPoweredOff = errors.New("the device's modem is powered off: power it on before dialling")

// oneWay draws a one-way latency: normal around RTT/2 with standard deviation
// RTTJitter/√2, floored at RTT/4.
func (l *Link) oneWay() time.Duration {
	mean := l.p.RTT / 2
	if l.p.RTTJitter <= 0 {
		return mean
	}
	sd := float64(l.p.RTTJitter) / math.Sqrt2
	d := time.Duration(float64(mean) + l.rng.NormFloat64()*sd)
	return max(d, l.p.RTT/4)
}

// serialise reserves direction d of the radio for ipBytes from ready on and
// returns when the burst starts and ends.
func (l *Link) serialise(d Direction, ready time.Time, ipBytes int) (start, end time.Time) {
	rate := l.p.UplinkBPS
	if d == Down {
		rate = l.p.DownlinkBPS
	}
	dur := time.Duration(float64(ipBytes) * 8 * float64(time.Second) / float64(rate))
	start = maxTime(ready, l.busy[d])
	end = start.Add(dur)
	l.busy[d] = end
	l.radio.activity(d, start, end)
	return start, end
}

// losses draws which of segs segments are lost. A lost segment is sent again
// after three duplicate ACKs (one RTT) when three or more segments follow it,
// else after the retransmission timeout; a retransmission may be lost again,
// doubling the timeout each time (at most five times). It returns how many
// segments were sent again and the delay the burst suffers.
func (l *Link) losses(segs int) (resent int, delay time.Duration) {
	if l.p.Loss <= 0 {
		return 0, 0
	}
	rto := max(l.p.RTOMin, l.p.RTT+4*l.p.RTTJitter)
	for i := range segs {
		if l.rng.Float64() >= l.p.Loss {
			continue
		}
		wait := rto
		if segs-1-i >= 3 {
			wait = l.p.RTT
		}
		resent++
		for try := 1; try <= 5 && l.rng.Float64() < l.p.Loss; try++ {
			resent++
			wait += rto << try
		}
		delay = max(delay, wait)
	}
	return resent, delay
}

// promote readies the radio to transmit at t and wakes readers that were
// holding downlink for a device asleep in PSM. l.mu must be held.
func (l *Link) promote(t time.Time) time.Time {
	wasIdle := !l.radio.connectedAt(t)
	ready := l.radio.promote(t)
	if wasIdle && len(l.sleepers) > 0 {
		for _, c := range l.sleepers {
			c.poke()
		}
		l.sleepers = l.sleepers[:0]
	}
	return ready
}

// burst is the model's verdict on one burst of stream bytes.
type burst struct {
	start, deliver time.Time
	segs           int
	resent         int // segments sent again
	resentBytes    int // their bytes, headers included
}

// sendUp schedules n stream bytes the device sends at now.
func (l *Link) sendUp(now time.Time, n int) burst {
	l.mu.Lock()
	defer l.mu.Unlock()
	ready := l.promote(now)
	return l.carry(Up, ready, n, l.oneWay())
}

// carry serialises a burst of n stream bytes in direction d from ready, adds
// the latency after it and the delay of its losses.
func (l *Link) carry(d Direction, ready time.Time, n int, latency time.Duration) burst {
	hdr, pay := l.p.segHeader(), l.p.segPayload()
	b := burst{segs: (n + pay - 1) / pay}
	var delay time.Duration
	b.resent, delay = l.losses(b.segs)
	b.resentBytes = b.resent * (hdr + min(pay, n))
	var end time.Time
	b.start, end = l.serialise(d, ready, n+b.segs*hdr+b.resentBytes)
	b.deliver = end.Add(latency + delay)
	return b
}

// arrival returns when downlink bytes the server sent at now reach the base
// station.
func (l *Link) arrival(now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Add(l.oneWay())
}

// reach says when downlink that reached the base station at te can be paged
// to the device, and whether the device is asleep in PSM until then; a sleeper
// is registered to be poked when an uplink wakes the device first.
func (l *Link) reach(te time.Time, c *Conn) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, asleep := l.radio.reach(te)
	if asleep {
		l.sleepers = append(l.sleepers, c)
	}
	return at, asleep
}

func (l *Link) forgetSleeper(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.sleepers {
		if s == c {
			l.sleepers = append(l.sleepers[:i], l.sleepers[i+1:]...)
			return
		}
	}
}

// sendDown schedules n downlink stream bytes that can be paged to the device
// at at (a paging occasion, or when they reach a connected device).
func (l *Link) sendDown(at time.Time, n int) burst {
	l.mu.Lock()
	defer l.mu.Unlock()
	ready := l.promote(at)
	return l.carry(Down, ready, n, 0)
}

// touch keeps the radio connected for control segments (FIN, ACK) sent at t.
func (l *Link) touch(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.radio.on {
		ready := l.promote(t)
		l.radio.activity(Up, ready, ready)
	}
}

// handshake models the three-way handshake of a connection dialled at now: it
// returns when the device has the SYN-ACK, how many SYNs were lost, and the
// reason the connection is charged to.
func (l *Link) handshake(now time.Time, reason ConnReason, given bool) (time.Time, int, ConnReason, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.radio.on {
		return time.Time{}, 0, 0, ErrPoweredOff
	}
	if !given {
		reason = ReasonInitial
		if l.dialled > 0 {
			reason = ReasonReconnect
		}
	}
	l.dialled++
	t := l.promote(now)
	lost := 0
	for lost < 5 && l.p.Loss > 0 && l.rng.Float64() < l.p.Loss {
		t = t.Add(l.p.RTOInitial << lost) // RFC 6298 §5.5: back off, doubling
		lost++
	}
	syn := l.p.ipHeader() + l.p.SYNOptions
	synack := l.p.ipHeader() + l.p.SYNACKOptions
	_, end := l.serialise(Up, t, (1+lost)*syn)
	te := end.Add(l.oneWay() + l.oneWay()) // to the server and back to the base station
	_, end = l.serialise(Down, maxTime(te, t), synack)
	return end, lost, reason, nil
}

func (l *Link) register(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns == nil {
		l.conns = make(map[*Conn]struct{})
	}
	l.conns[c] = struct{}{}
}

func (l *Link) unregister(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	for i, s := range l.sleepers {
		if s == c {
			l.sleepers = append(l.sleepers[:i], l.sleepers[i+1:]...)
			break
		}
	}
}

// sleepUntil waits on the link's clock until t or until ctx ends.
func (l *Link) sleepUntil(ctx context.Context, t time.Time) error {
	d := t.Sub(l.clock.Now())
	if d <= 0 {
		return ctx.Err()
	}
	ch := make(chan struct{})
	tm := l.clock.AfterFunc(d, func() { close(ch) })
	defer tm.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
