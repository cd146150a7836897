package network

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testRadio(t *testing.T, modify func(p *Profile)) *radio {
	t.Helper()
	p, _ := BuiltinProfile("typical")
	if modify != nil {
		modify(&p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &radio{p: &p}
	r.powerOn(t0, 300*time.Millisecond, 10*time.Second)
	return r
}

func TestRadioPromotion(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		modify func(p *Profile)
		sendAt time.Duration // after power-on
		want   time.Duration // when the radio can transmit, after power-on
	}{
		{"waits for the attach", nil, 1 * s, 6 * s},
		{"connected after attach", nil, 10 * s, 10 * s},
		{"still connected at the inactivity timer", nil, 16 * s, 16 * s},
		{"idle after the inactivity timer: RRC set-up", nil, 17 * s, 17*s + 300*time.Millisecond},
		{"resume instead of set-up", func(p *Profile) { p.UseRRCResume = true }, 17 * s, 17*s + 200*time.Millisecond},
		{"asleep in PSM: woken by uplink", func(p *Profile) { p.PSM = true }, time.Hour, time.Hour + 300*time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testRadio(t, tc.modify)
			got := r.promote(t0.Add(tc.sendAt)).Sub(t0)
			if got != tc.want {
				t.Fatalf("ready after %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRadioActivityKeepsConnected(t *testing.T) {
	r := testRadio(t, nil)
	s := time.Second
	ready := r.promote(t0.Add(100 * s))
	r.activity(Up, ready, ready.Add(2*s))
	if !r.connectedAt(ready.Add(12 * s)) {
		t.Error("not connected 10 s after the burst ended")
	}
	if r.connectedAt(ready.Add(12*s + time.Millisecond)) {
		t.Error("still connected after the inactivity timer")
	}
	// Downlink activity restarts the timer too.
	r.activity(Down, ready.Add(11*s), ready.Add(11*s))
	if !r.connectedAt(ready.Add(21 * s)) {
		t.Error("downlink did not restart the inactivity timer")
	}
}

func TestRadioReach(t *testing.T) {
	s := time.Second
	ms := time.Millisecond
	// Power-on at t0; attached at 6 s, connected until 16 s. DRX 1.28 s with
	// phase 300 ms: paging occasions at 0.3 + k·1.28 s. eDRX 81.92 s with a
	// paging window of 2.56 s opening at 10 + k·81.92 s.
	tests := []struct {
		name       string
		modify     func(p *Profile)
		at         time.Duration
		want       time.Duration
		wantAsleep bool
	}{
		{"connected: at once", nil, 10 * s, 10 * s, false},
		{"idle DRX: next paging occasion", nil, 20 * s, 300*ms + 16*1280*ms, false},
		{"idle DRX: on a paging occasion", nil, 300*ms + 16*1280*ms, 300*ms + 16*1280*ms, false},
		{"eDRX: next window", func(p *Profile) { p.EDRX = true }, 20 * s, 10*s + 81920*ms, false},
		{"eDRX: inside a window, next occasion in it", func(p *Profile) { p.EDRX = true }, 10*s + 81920*ms + 100*ms, 10*s + 81920*ms + 1280*ms, false},
		{"eDRX: window's last occasion passed", func(p *Profile) { p.EDRX = true }, 10*s + 81920*ms + 2600*ms - 1, 10*s + 2*81920*ms, false},
		{"PSM active time: paged", func(p *Profile) { p.PSM = true }, 20 * s, 300*ms + 16*1280*ms, false},
		{"PSM asleep: next TAU", func(p *Profile) { p.PSM = true }, 40 * s, 16*s + 2*time.Hour, true},
		{"PSM second period asleep", func(p *Profile) { p.PSM = true }, 16*s + 2*time.Hour + 20*s, 16*s + 4*time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testRadio(t, tc.modify)
			got, asleep := r.reach(t0.Add(tc.at))
			if got.Sub(t0) != tc.want || asleep != tc.wantAsleep {
				t.Fatalf("reach = %v asleep=%v, want %v asleep=%v", got.Sub(t0), asleep, tc.want, tc.wantAsleep)
			}
		})
	}
}

func TestEnergyTimeInStates(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		modify func(p *Profile)
		until  time.Duration
		want   map[RadioState]time.Duration
		taus   int
	}{
		{"DRX after attach", nil, time.Hour, map[RadioState]time.Duration{
			StateAttaching: 6 * s, StateConnectedIdle: 10 * s, StateIdleDRX: time.Hour - 16*s,
		}, 0},
		{"eDRX", func(p *Profile) { p.EDRX = true }, time.Hour, map[RadioState]time.Duration{
			StateAttaching: 6 * s, StateConnectedIdle: 10 * s, StateIdleEDRX: time.Hour - 16*s,
		}, 0},
		{"PSM: active time every T3412, TAUs", func(p *Profile) { p.PSM = true }, 16*s + 5*time.Hour, map[RadioState]time.Duration{
			StateAttaching: 6 * s, StateConnectedIdle: 10 * s,
			StateIdleDRX: 3 * 16 * s, StatePSM: 5*time.Hour - 3*16*s,
		}, 2},
		{"during the attach", nil, 2 * s, map[RadioState]time.Duration{StateAttaching: 2 * s}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testRadio(t, tc.modify)
			rep := r.report(t0.Add(tc.until), t0)
			var sum time.Duration
			for _, st := range RadioStates() {
				if got := rep.Time(st); got != tc.want[st] {
					t.Errorf("%s: %v, want %v", st, got, tc.want[st])
				}
				sum += rep.Time(st)
			}
			if sum != rep.Elapsed || rep.Elapsed != tc.until {
				t.Errorf("states sum to %v, elapsed %v, want %v", sum, rep.Elapsed, tc.until)
			}
			if rep.TAUs != tc.taus {
				t.Errorf("TAUs = %d, want %d", rep.TAUs, tc.taus)
			}
		})
	}
}

func TestEnergyCharge(t *testing.T) {
	s := time.Second
	r := testRadio(t, nil) // typical: TX duty 0.3
	// One uplink burst of 2 s and one downlink burst of 1 s at 100 s.
	ready := r.promote(t0.Add(100 * s))
	r.activity(Up, ready, ready.Add(2*s))
	r.activity(Down, ready.Add(2*s), ready.Add(3*s))
	rep := r.report(t0.Add(24*time.Hour), t0)
	p := r.p
	if got, want := rep.Time(StateTX), 600*time.Millisecond; got != want {
		t.Errorf("TX %v, want %v (2 s × duty 0.3)", got, want)
	}
	if got, want := rep.Time(StateRX), 2400*time.Millisecond; got != want {
		t.Errorf("RX %v, want %v (1 s down + 1.4 s of the uplink burst)", got, want)
	}
	// Connected: 10 s after attach, then 0.3 s set-up + 3 s of bursts + 10 s tail.
	connected := 10*s + 300*time.Millisecond + 3*s + 10*s
	if got := rep.Time(StateTX) + rep.Time(StateRX) + rep.Time(StateConnectedIdle); got != connected {
		t.Errorf("connected %v, want %v", got, connected)
	}
	idle := 24*time.Hour - 6*s - connected
	if got := rep.Time(StateIdleDRX); got != idle {
		t.Errorf("idle %v, want %v", got, idle)
	}
	board := p.Current.BoardActive
	want := (6*s+connected-3*s).Hours()*(p.Current.ModemConnected+board) +
		(2400*time.Millisecond).Hours()*(p.Current.ModemConnected+board) +
		(600*time.Millisecond).Hours()*(p.Current.ModemTX+board) +
		idle.Hours()*(p.Current.ModemIdleDRX+board)
	if math.Abs(rep.ChargeMAh-want) > 1e-9 {
		t.Errorf("charge %.6f mAh, want %.6f", rep.ChargeMAh, want)
	}
	if got := rep.ChargePerDayMAh(); math.Abs(got-want) > 1e-9 {
		t.Errorf("per day %.6f, want %.6f over exactly one day", got, want)
	}
	life := rep.BatteryLife(2000)
	if want := time.Duration(2000 / want * 24 * float64(time.Hour)); life < want-time.Second || life > want+time.Second {
		t.Errorf("battery life %v, want %v", life, want)
	}
}

func TestEnergyPSMTAUCharge(t *testing.T) {
	r := testRadio(t, func(p *Profile) { p.PSM = true })
	rep := r.report(t0.Add(16*time.Second+4*time.Hour), t0)
	if rep.TAUs != 2 {
		t.Fatalf("TAUs = %d, want 2", rep.TAUs)
	}
	var states float64
	for _, st := range RadioStates() {
		states += stateCurrent(r.p, st) * rep.Time(st).Hours()
	}
	tau := 2 * r.p.TAUEnergyMJ / r.p.SupplyVolts / 3600
	if math.Abs(rep.ChargeMAh-(states+tau)) > 1e-12 {
		t.Fatalf("charge %.9f, want states %.9f + TAUs %.9f", rep.ChargeMAh, states, tau)
	}
	// In PSM the board sleeps too: far below an always-on DRX device.
	drx := testRadio(t, nil).report(t0.Add(16*time.Second+4*time.Hour), t0)
	if rep.AverageCurrentMA() > drx.AverageCurrentMA()/10 {
		t.Errorf("PSM average %.3f mA is not far below DRX %.3f mA", rep.AverageCurrentMA(), drx.AverageCurrentMA())
	}
}

func TestEnergyPowerOff(t *testing.T) {
	r := testRadio(t, nil)
	r.powerOff(t0.Add(time.Minute))
	rep := r.report(t0.Add(time.Hour), t0)
	if got := rep.Time(StateOff); got != 59*time.Minute {
		t.Fatalf("off for %v, want 59m", got)
	}
	r.powerOn(t0.Add(time.Hour), 0, 0)
	rep = r.report(t0.Add(time.Hour+time.Second), t0)
	if got := rep.Time(StateAttaching); got != 6*time.Second+time.Second {
		t.Fatalf("attaching %v, want the first 6 s and 1 s of the second attach", got)
	}
}

func TestBatteryLifeWithoutDraw(t *testing.T) {
	var rep EnergyReport
	if rep.BatteryLife(1000) != time.Duration(math.MaxInt64) {
		t.Fatal("no draw should last forever")
	}
}
