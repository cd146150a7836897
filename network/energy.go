package network

import (
	"math"
	"time"
)

// EnergyReport is one device's radio time and charge since its link was
// created. Charge is Σ time in state × (modem current + board current), plus
// the energy of every periodic TAU from PSM, at the profile's supply voltage
// (spec §2.4: modem and ESP32 currents summed).
//
// The board draws Current.BoardActive whenever the modem is not asleep in PSM
// or off: a FiPy that keeps a TCP connection open cannot deep-sleep its ESP32.
type EnergyReport struct {
	Elapsed   time.Duration
	TAUs      int
	ChargeMAh float64
	time      [numRadioStates]time.Duration
}

// Time returns the time spent in state s.
func (r EnergyReport) Time(s RadioState) time.Duration {
	if s < numRadioStates {
		return r.time[s]
	}
	return 0
}

// AverageCurrentMA is the mean current over the elapsed time.
func (r EnergyReport) AverageCurrentMA() float64 {
	h := r.Elapsed.Hours()
	if h <= 0 {
		return 0
	}
	return r.ChargeMAh / h
}

// ChargePerDayMAh projects the charge over 24 hours at the mean current.
func (r EnergyReport) ChargePerDayMAh() float64 {
	return r.AverageCurrentMA() * 24
}

// BatteryLife projects how long a battery of capacityMAh lasts at the mean
// current; it is the largest Duration when nothing was drawn.
func (r EnergyReport) BatteryLife(capacityMAh float64) time.Duration {
	i := r.AverageCurrentMA()
	if i <= 0 {
		return time.Duration(math.MaxInt64)
	}
	h := capacityMAh / i
	if h*float64(time.Hour) >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(h * float64(time.Hour))
}

// stateCurrent is the modem plus board current in state s, in mA.
func stateCurrent(p *Profile, s RadioState) float64 {
	c := p.Current
	switch s {
	case StateOff, StatePSM:
		return c.ModemPSM + c.BoardSleep
	case StateTX:
		return c.ModemTX + c.BoardActive
	case StateAttaching, StateRX, StateConnectedIdle:
		return c.ModemConnected + c.BoardActive
	case StateIdleDRX:
		return c.ModemIdleDRX + c.BoardActive
	case StateIdleEDRX:
		return c.ModemEDRX + c.BoardActive
	}
	return 0
}

func (r EnergyReport) charge(p *Profile) float64 {
	var mAh float64
	for s, d := range r.time {
		mAh += stateCurrent(p, RadioState(s)) * d.Hours()
	}
	// mJ / V = mC = mA·s; /3600 gives mAh.
	mAh += float64(r.TAUs) * p.TAUEnergyMJ / p.SupplyVolts / 3600
	return mAh
}
