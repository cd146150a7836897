package network

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Profile is everything the link model needs to know about one device's LTE-M
// link, its TCP/IP stack and its power draw. Defaults come from
// spec/catm-model.md §7; the key in brackets after each field names the source
// listed in §8 of that document, [E] marks an engineering estimate, [D] a figure
// derived there by arithmetic.
//
// A custom profile starts from a built-in (see [BuiltinProfile]) and overrides
// fields; [Profile.Validate] names every field that is out of range.
type Profile struct {
	// Name labels the profile in reports.
	Name string

	// DownlinkBPS and UplinkBPS are the application-visible rates in bits per
	// second, used for serialisation delay. Cat-M1 HD-FDD peaks at 300 kbit/s down
	// and 375 kbit/s up [RFWW-CAT], [PYCOM-LTE]; deep coverage falls to about
	// 1.4 and 0.25 kbit/s [LTEM-COV-WP].
	DownlinkBPS int64
	UplinkBPS   int64

	// RTT is the connected-mode round-trip time; one-way latency is RTT/2 plus
	// jitter. No public LTE-M ping figure exists: [E] anchored on the 10–15 ms
	// one-way claim [MBN-CELL] and 6.2 s in extreme coverage [LTEM-5G-WP].
	RTT time.Duration
	// RTTJitter is the standard deviation of the round-trip time [E]. Each
	// one-way delay is drawn from a normal distribution with mean RTT/2 and
	// standard deviation RTTJitter/√2 (so that a round trip has RTTJitter),
	// floored at RTT/4.
	RTTJitter time.Duration
	// Loss is the probability that one IP packet is lost (0.005 = 0.5 %) [E].
	// HARQ and RLC AM hide most radio loss; a lost TCP segment costs its bytes
	// again and a retransmission delay, the stream stays reliable.
	Loss float64

	// AttachTime is the cold attach including PDN set-up after power-up [E];
	// the Sequans modem alone takes about 6 s to boot [HIVEEYES].
	AttachTime time.Duration
	// RRCSetup is the promotion from RRC idle to connected, random access
	// included, paid by the first packet sent or paged from idle [E]; field
	// reports range from 2 s to 15 s in bad cases [CALIF-1843].
	RRCSetup time.Duration
	// RRCResume replaces RRCSetup when UseRRCResume is set (Rel-13
	// suspend/resume saves the security and bearer set-up) [RATASUK], [E].
	RRCResume    time.Duration
	UseRRCResume bool
	// RRCInactivity is how long the radio stays connected after the last packet
	// in either direction [LTE-TAIL], [TELECOMHALL-DIT].
	RRCInactivity time.Duration
	// DRXCycle is the idle-mode paging cycle: downlink for an idle device waits
	// for the next paging occasion [MONOGOTO], [UBLOX-TOBY].
	DRXCycle time.Duration

	// PSM enables power saving mode: after T3324 of idle the device sleeps,
	// unreachable, until it sends or its periodic TAU timer T3412 expires
	// [NCS-LOWPOWER], [RFWW-TIMERS], [QUECTEL-BG95].
	PSM   bool
	T3412 time.Duration
	T3324 time.Duration
	// EDRX enables extended DRX in idle: downlink waits for the next paging
	// time window of EDRXPTW every EDRXCycle [ZEPHYR-HL7800], [NRF9160-PS],
	// [NRF93M1]. With PSM it applies during the active time T3324.
	EDRX      bool
	EDRXCycle time.Duration
	EDRXPTW   time.Duration
	// NATIdleTimeout is how long the carrier NAT keeps an idle TCP mapping; a
	// connection silent for longer is dead to both ends [E], [NCS-AZURE]. Zero
	// disables the check.
	NATIdleTimeout time.Duration

	// MTU is the IP MTU the carrier gives the device [ATT-MTU], [SIMPLEX].
	MTU int
	// MSS is the TCP maximum segment size; zero derives it as MTU minus the IP
	// and TCP headers (40 bytes for IPv4, 60 for IPv6), i.e. MSS clamping at the
	// PGW, since the ESP32's default of 1436 [ESP32-DEFCONFIG] exceeds most
	// carrier MTUs.
	MSS int
	// IPv6 selects 40-byte IP headers instead of 20 (RFC 8200).
	IPv6 bool
	// TCPTimestamps adds the 12-byte timestamp option to every segment
	// (RFC 7323); lwIP leaves it off [E].
	TCPTimestamps bool
	// DelayedACK is how long the device's stack may hold an ACK hoping to
	// piggy-back it on data: lwIP acts on its 250 ms fast timer [ESP32-250MS];
	// RFC 1122 allows up to 500 ms. Zero acknowledges every segment at once.
	DelayedACK time.Duration
	// PeerDelayedACK is the same for the server's stack: 40 ms is Linux's
	// minimum delayed-ACK timeout [E].
	PeerDelayedACK time.Duration
	// RTOInitial is the retransmission timeout before an RTT is known, which is
	// what a lost SYN waits [ESP32-DEFCONFIG]. RTOMin floors the timeout for
	// data segments, which is RTT + 4·RTTJitter (RFC 6298 §2.4 recommends 1 s).
	RTOInitial time.Duration
	RTOMin     time.Duration
	// SYNOptions and SYNACKOptions are the TCP option bytes of the device's SYN
	// (lwIP sends MSS only: 4) and of the server's SYN-ACK (MSS, window scale,
	// SACK-permitted: 12) [D] spec §3.1. With TCPTimestamps each carries 12 more.
	SYNOptions    int
	SYNACKOptions int

	// SupplyVolts is the battery voltage; 3.7 V nominal LiPo [PYCOM-FIPY].
	SupplyVolts float64
	// Current is the draw of the modem and of the board in each radio state.
	Current Currents
	// TXDuty is the fraction of an uplink burst during which the radio
	// actually transmits; CE mode B repetitions keep it high [E].
	TXDuty float64
	// TAUEnergyMJ is the energy of one periodic tracking-area update from PSM,
	// in millijoules [NRF9160-PS].
	TAUEnergyMJ float64
}

// Currents are in milliamperes. Modem and board currents are summed.
type Currents struct {
	// ModemPSM is the modem asleep in PSM, or off: 1 µA (GM02S) to 9 µA
	// (SIM7000) [MCHP-GM02S], [BOTLETICS].
	ModemPSM float64
	// ModemIdleDRX is the average in idle with DRX, modem allowed to sleep
	// between paging occasions [MONOGOTO], [QUECTEL-PWR], [BOTLETICS].
	ModemIdleDRX float64
	// ModemEDRX is the average in idle with eDRX at the default cycle
	// [NRF9160-PS]; Sequans light sleep is about 200 µA [MCHP-GM02S].
	ModemEDRX float64
	// ModemConnected is RRC connected while not transmitting: receiving, or
	// waiting for the inactivity timer [MCHP-GM02S].
	ModemConnected float64
	// ModemTX is transmitting at the profile's power [NRF9160-PS], [BOTLETICS].
	ModemTX float64
	// BoardActive is the ESP32 running, drawn whenever the modem is not asleep
	// in PSM or off [PYCOM-FORUM-DS], [E].
	BoardActive float64
	// BoardSleep is the FiPy board in deep sleep with LTE de-initialised
	// [PYCOM-FORUM-DS], [PYCOM-FORUM-ROOT].
	BoardSleep float64
}

// base holds what the three built-in profiles share (spec §7 gives one value for
// all three).
func base(name string) Profile {
	return Profile{
		Name:           name,
		NATIdleTimeout: 1800 * time.Second,
		MTU:            1430,
		DelayedACK:     250 * time.Millisecond,
		PeerDelayedACK: 40 * time.Millisecond,
		RTOInitial:     3 * time.Second,
		RTOMin:         time.Second,
		SYNOptions:     4,
		SYNACKOptions:  12,
		T3412:          2 * time.Hour,
		T3324:          16 * time.Second,
		EDRXCycle:      81920 * time.Millisecond,
		EDRXPTW:        2560 * time.Millisecond,
		SupplyVolts:    3.7,
		Current: Currents{
			ModemPSM:    0.005,
			BoardActive: 40,
			BoardSleep:  0.020,
		},
	}
}

// builtinProfiles is the one table of built-in profiles: "good" (strong signal,
// CE level 0), "typical" (the spec's "urban" default, CE mode A) and "poor" (deep
// indoor or cell edge, CE mode B).
var builtinProfiles = []func() Profile{
	func() Profile {
		p := base("good")
		p.DownlinkBPS, p.UplinkBPS = 300_000, 375_000
		p.RTT, p.RTTJitter = 70*time.Millisecond, 10*time.Millisecond
		p.Loss = 0.001
		p.AttachTime = 3 * time.Second
		p.RRCSetup, p.RRCResume = 150*time.Millisecond, 100*time.Millisecond
		p.RRCInactivity = 10 * time.Second
		p.DRXCycle = 1280 * time.Millisecond
		p.Current.ModemIdleDRX, p.Current.ModemEDRX = 1.3, 0.018
		p.Current.ModemConnected, p.Current.ModemTX = 30, 60
		p.TXDuty, p.TAUEnergyMJ = 0.2, 80
		return p
	},
	func() Profile {
		p := base("typical")
		p.DownlinkBPS, p.UplinkBPS = 200_000, 150_000
		p.RTT, p.RTTJitter = 120*time.Millisecond, 30*time.Millisecond
		p.Loss = 0.005
		p.AttachTime = 6 * time.Second
		p.RRCSetup, p.RRCResume = 300*time.Millisecond, 200*time.Millisecond
		p.RRCInactivity = 10 * time.Second
		p.DRXCycle = 1280 * time.Millisecond
		p.Current.ModemIdleDRX, p.Current.ModemEDRX = 1.5, 0.030
		p.Current.ModemConnected, p.Current.ModemTX = 30, 120
		p.TXDuty, p.TAUEnergyMJ = 0.3, 105
		return p
	},
	func() Profile {
		p := base("poor")
		p.DownlinkBPS, p.UplinkBPS = 5_000, 1_000
		p.RTT, p.RTTJitter = 1500*time.Millisecond, 500*time.Millisecond
		p.Loss = 0.03
		p.AttachTime = 20 * time.Second
		p.RRCSetup, p.RRCResume = 2*time.Second, 1500*time.Millisecond
		p.RRCInactivity = 20 * time.Second
		p.DRXCycle = 2560 * time.Millisecond
		p.Current.ModemIdleDRX, p.Current.ModemEDRX = 2.5, 0.060
		p.Current.ModemConnected, p.Current.ModemTX = 40, 200
		p.TXDuty, p.TAUEnergyMJ = 0.8, 500
		return p
	},
}

// profileAliases maps the spec's names to ours.
var profileAliases = map[string]string{"urban": "typical"}

// BuiltinProfiles lists the names of the built-in profiles.
func BuiltinProfiles() []string {
	out := make([]string, len(builtinProfiles))
	for i, f := range builtinProfiles {
		out[i] = f().Name
	}
	return out
}

// BuiltinProfile returns a copy of the named built-in profile; "urban" is an
// alias of "typical".
func BuiltinProfile(name string) (Profile, error) {
	if alias, ok := profileAliases[name]; ok {
		name = alias
	}
	for _, f := range builtinProfiles {
		if p := f(); p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown link profile %q: try one of %v", name, BuiltinProfiles())
}

// Validate reports every field that is out of range, each as
// "field: must be ... (got ...)", joined.
func (p Profile) Validate() error {
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: must be %s (got %v)", field, rule, got))
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"rtt", p.RTT}, {"rtt_jitter", p.RTTJitter}, {"attach_time", p.AttachTime},
		{"rrc_setup", p.RRCSetup}, {"rrc_resume", p.RRCResume},
		{"nat_idle_timeout", p.NATIdleTimeout}, {"delayed_ack", p.DelayedACK},
		{"peer_delayed_ack", p.PeerDelayedACK},
	} {
		if f.v < 0 {
			bad(f.name, ">= 0", f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"rrc_inactivity", p.RRCInactivity}, {"drx_cycle", p.DRXCycle},
		{"rto_initial", p.RTOInitial}, {"rto_min", p.RTOMin},
	} {
		if f.v <= 0 {
			bad(f.name, "> 0", f.v)
		}
	}
	if p.DownlinkBPS <= 0 {
		bad("downlink_bps", "> 0", p.DownlinkBPS)
	}
	if p.UplinkBPS <= 0 {
		bad("uplink_bps", "> 0", p.UplinkBPS)
	}
	if !(p.Loss >= 0 && p.Loss < 1) {
		bad("loss", "in [0, 1)", p.Loss)
	}
	ipHdr := 40
	if p.IPv6 {
		ipHdr = 60
	}
	minMTU := 576
	if p.IPv6 {
		minMTU = 1280 // RFC 8200 §5
	}
	if p.MTU < minMTU || p.MTU > 65535 {
		bad("mtu", fmt.Sprintf("in [%d, 65535]", minMTU), p.MTU)
	}
	if p.MSS != 0 && (p.MSS < 64 || p.MSS > p.MTU-ipHdr) {
		bad("mss", fmt.Sprintf("0 (derived) or in [64, mtu-%d]", ipHdr), p.MSS)
	}
	if p.SYNOptions < 0 || p.SYNOptions > 40 || p.SYNOptions%4 != 0 {
		bad("syn_options", "a multiple of 4 in [0, 40]", p.SYNOptions)
	}
	if p.SYNACKOptions < 0 || p.SYNACKOptions > 40 || p.SYNACKOptions%4 != 0 {
		bad("synack_options", "a multiple of 4 in [0, 40]", p.SYNACKOptions)
	}
	if p.PSM {
		if p.T3412 <= 0 {
			bad("t3412", "> 0 with psm", p.T3412)
		}
		if p.T3324 < 0 || p.T3324 >= p.T3412 {
			bad("t3324", "in [0, t3412) with psm", p.T3324)
		}
	}
	if p.EDRX {
		if p.EDRXCycle <= 0 {
			bad("edrx_cycle", "> 0 with edrx", p.EDRXCycle)
		}
		if p.EDRXPTW <= 0 || p.EDRXPTW > p.EDRXCycle {
			bad("edrx_ptw", "in (0, edrx_cycle] with edrx", p.EDRXPTW)
		}
	}
	if !(p.SupplyVolts > 0) {
		bad("supply_volts", "> 0", p.SupplyVolts)
	}
	if !(p.TXDuty >= 0 && p.TXDuty <= 1) {
		bad("tx_duty", "in [0, 1]", p.TXDuty)
	}
	if !(p.TAUEnergyMJ >= 0) || math.IsInf(p.TAUEnergyMJ, 0) {
		bad("tau_energy_mj", ">= 0", p.TAUEnergyMJ)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"current.modem_psm", p.Current.ModemPSM}, {"current.modem_idle_drx", p.Current.ModemIdleDRX},
		{"current.modem_edrx", p.Current.ModemEDRX}, {"current.modem_connected", p.Current.ModemConnected},
		{"current.modem_tx", p.Current.ModemTX}, {"current.board_active", p.Current.BoardActive},
		{"current.board_sleep", p.Current.BoardSleep},
	} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			bad(f.name, ">= 0 mA", f.v)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	name := p.Name
	if name == "" {
		name = "custom"
	}
	return fmt.Errorf("link profile %q is invalid: %w", name, errors.Join(errs...))
}

// ipHeader is the IP header plus the TCP header without options.
func (p *Profile) ipHeader() int {
	if p.IPv6 {
		return 60
	}
	return 40
}

// segHeader is the per-segment header of an established connection: IP, TCP
// and the timestamp option if enabled.
func (p *Profile) segHeader() int {
	h := p.ipHeader()
	if p.TCPTimestamps {
		h += 12
	}
	return h
}

// mss is the negotiated maximum segment size.
func (p *Profile) mss() int {
	if p.MSS > 0 {
		return p.MSS
	}
	return p.MTU - p.ipHeader()
}

// segPayload is how many stream bytes one full segment carries: the MSS less the
// timestamp option, as Linux and lwIP both account it.
func (p *Profile) segPayload() int {
	n := p.mss()
	if p.TCPTimestamps {
		n -= 12
	}
	return max(n, 1)
}
