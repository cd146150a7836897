package scenarios

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/catmsim/catmsim/network"
)

// Link is a device's LTE-M link: a built-in network profile, or one with
// overrides. Profile is always fully built.
type Link struct {
	Base    string
	Custom  bool // the file overrode fields of Base
	Profile network.Profile
}

// linkBases are the names a link may start from; "urban" is the spec's name
// for "typical".
func linkBases() []string { return append(network.BuiltinProfiles(), "urban") }

func builtinLink(name string) Link {
	p, err := network.BuiltinProfile(name)
	if err != nil {
		panic("scenarios: built-in link " + name + ": " + err.Error())
	}
	return Link{Base: name, Profile: p}
}

// linkSpec is network.Profile as a scenario writes it: snake_case names and
// units. Decoding a link mapping fills it from the base profile first, so an
// override changes only what it names.
type linkSpec struct {
	Base           string       `json:"base" enum:"good,typical,poor,urban" doc:"Built-in profile to start from: good, typical (urban) or poor."`
	Downlink       BitRate      `json:"downlink" doc:"Downlink rate, e.g. 200kbps."`
	Uplink         BitRate      `json:"uplink" doc:"Uplink rate, e.g. 150kbps."`
	RTT            Duration     `json:"rtt" doc:"Connected-mode round-trip time."`
	RTTJitter      Duration     `json:"rtt_jitter" doc:"Standard deviation of the round-trip time."`
	Loss           Percent      `json:"loss" doc:"Probability that one IP packet is lost."`
	AttachTime     Duration     `json:"attach_time" doc:"Cold attach including PDN set-up."`
	RRCSetup       Duration     `json:"rrc_setup" doc:"RRC idle → connected promotion."`
	RRCResume      Duration     `json:"rrc_resume" doc:"RRC resume time, used when use_rrc_resume is set."`
	UseRRCResume   bool         `json:"use_rrc_resume" doc:"Use Rel-13 RRC suspend/resume instead of set-up."`
	RRCInactivity  Duration     `json:"rrc_inactivity" doc:"Time the radio stays connected after the last packet."`
	DRXCycle       Duration     `json:"drx_cycle" doc:"Idle-mode paging cycle."`
	PSM            bool         `json:"psm" doc:"Power saving mode."`
	T3412          Duration     `json:"t3412" doc:"Periodic TAU timer (PSM)."`
	T3324          Duration     `json:"t3324" doc:"Active time before PSM."`
	EDRX           bool         `json:"edrx" doc:"Extended DRX in idle."`
	EDRXCycle      Duration     `json:"edrx_cycle" doc:"eDRX cycle, e.g. 81.92s."`
	EDRXPTW        Duration     `json:"edrx_ptw" doc:"eDRX paging time window."`
	NATIdleTimeout Duration     `json:"nat_idle_timeout" doc:"Carrier NAT idle time-out; 0 disables it."`
	MTU            int          `json:"mtu" doc:"IP MTU."`
	MSS            int          `json:"mss" doc:"TCP MSS; 0 derives it from the MTU."`
	IPv6           bool         `json:"ipv6" doc:"IPv6 (40-byte IP headers)."`
	TCPTimestamps  bool         `json:"tcp_timestamps" doc:"TCP timestamp option on every segment."`
	DelayedACK     Duration     `json:"delayed_ack" doc:"Device's delayed-ACK time."`
	PeerDelayedACK Duration     `json:"peer_delayed_ack" doc:"Server's delayed-ACK time."`
	RTOInitial     Duration     `json:"rto_initial" doc:"Initial TCP retransmission time-out."`
	RTOMin         Duration     `json:"rto_min" doc:"Minimum TCP retransmission time-out."`
	SYNOptions     int          `json:"syn_options" doc:"TCP option bytes of the device's SYN."`
	SYNACKOptions  int          `json:"synack_options" doc:"TCP option bytes of the server's SYN-ACK."`
	SupplyVolts    float64      `json:"supply_volts" doc:"Battery voltage."`
	Current        linkCurrents `json:"current" doc:"Current draw per radio state, in mA."`
	TXDuty         float64      `json:"tx_duty" doc:"Fraction of an uplink burst spent transmitting."`
	TAUEnergyMJ    float64      `json:"tau_energy_mj" doc:"Energy of one periodic TAU from PSM, in mJ."`
}

type linkCurrents struct {
	ModemPSM       float64 `json:"modem_psm" doc:"Modem in PSM, mA."`
	ModemIdleDRX   float64 `json:"modem_idle_drx" doc:"Modem idle with DRX, mA."`
	ModemEDRX      float64 `json:"modem_edrx" doc:"Modem idle with eDRX, mA."`
	ModemConnected float64 `json:"modem_connected" doc:"Modem connected, not transmitting, mA."`
	ModemTX        float64 `json:"modem_tx" doc:"Modem transmitting, mA."`
	BoardActive    float64 `json:"board_active" doc:"Board running, mA."`
	BoardSleep     float64 `json:"board_sleep" doc:"Board in deep sleep, mA."`
}

func specOf(base string, p network.Profile) linkSpec {
	return linkSpec{
		Base: base, Downlink: BitRate(p.DownlinkBPS), Uplink: BitRate(p.UplinkBPS),
		RTT: Duration(p.RTT), RTTJitter: Duration(p.RTTJitter),
		// Rounded so that 0.005 reads back as 0.5%, not 0.5000000000000001%.
		Loss:       Percent(math.Round(p.Loss*100*1e9) / 1e9),
		AttachTime: Duration(p.AttachTime), RRCSetup: Duration(p.RRCSetup), RRCResume: Duration(p.RRCResume),
		UseRRCResume: p.UseRRCResume, RRCInactivity: Duration(p.RRCInactivity), DRXCycle: Duration(p.DRXCycle),
		PSM: p.PSM, T3412: Duration(p.T3412), T3324: Duration(p.T3324),
		EDRX: p.EDRX, EDRXCycle: Duration(p.EDRXCycle), EDRXPTW: Duration(p.EDRXPTW),
		NATIdleTimeout: Duration(p.NATIdleTimeout), MTU: p.MTU, MSS: p.MSS, IPv6: p.IPv6,
		TCPTimestamps: p.TCPTimestamps, DelayedACK: Duration(p.DelayedACK), PeerDelayedACK: Duration(p.PeerDelayedACK),
		RTOInitial: Duration(p.RTOInitial), RTOMin: Duration(p.RTOMin),
		SYNOptions: p.SYNOptions, SYNACKOptions: p.SYNACKOptions, SupplyVolts: p.SupplyVolts,
		Current: linkCurrents{
			ModemPSM: p.Current.ModemPSM, ModemIdleDRX: p.Current.ModemIdleDRX, ModemEDRX: p.Current.ModemEDRX,
			ModemConnected: p.Current.ModemConnected, ModemTX: p.Current.ModemTX,
			BoardActive: p.Current.BoardActive, BoardSleep: p.Current.BoardSleep,
		},
		TXDuty: p.TXDuty, TAUEnergyMJ: p.TAUEnergyMJ,
	}
}

func (s linkSpec) profile(name string) network.Profile {
	return network.Profile{
		Name: name, DownlinkBPS: int64(s.Downlink), UplinkBPS: int64(s.Uplink),
		RTT: s.RTT.D(), RTTJitter: s.RTTJitter.D(), Loss: s.Loss.Fraction(),
		AttachTime: s.AttachTime.D(), RRCSetup: s.RRCSetup.D(), RRCResume: s.RRCResume.D(),
		UseRRCResume: s.UseRRCResume, RRCInactivity: s.RRCInactivity.D(), DRXCycle: s.DRXCycle.D(),
		PSM: s.PSM, T3412: s.T3412.D(), T3324: s.T3324.D(),
		EDRX: s.EDRX, EDRXCycle: s.EDRXCycle.D(), EDRXPTW: s.EDRXPTW.D(),
		NATIdleTimeout: s.NATIdleTimeout.D(), MTU: s.MTU, MSS: s.MSS, IPv6: s.IPv6,
		TCPTimestamps: s.TCPTimestamps, DelayedACK: s.DelayedACK.D(), PeerDelayedACK: s.PeerDelayedACK.D(),
		RTOInitial: s.RTOInitial.D(), RTOMin: s.RTOMin.D(),
		SYNOptions: s.SYNOptions, SYNACKOptions: s.SYNACKOptions, SupplyVolts: s.SupplyVolts,
		Current: network.Currents{
			ModemPSM: s.Current.ModemPSM, ModemIdleDRX: s.Current.ModemIdleDRX, ModemEDRX: s.Current.ModemEDRX,
			ModemConnected: s.Current.ModemConnected, ModemTX: s.Current.ModemTX,
			BoardActive: s.Current.BoardActive, BoardSleep: s.Current.BoardSleep,
		},
		TXDuty: s.TXDuty, TAUEnergyMJ: s.TAUEnergyMJ,
	}
}

// linkFieldNames maps network.Profile.Validate's field names to the keys a
// scenario writes, where they differ.
var linkFieldNames = map[string]string{"downlink_bps": "downlink", "uplink_bps": "uplink"}

func (l *Link) decodeNode(d *decoder, n *yaml.Node, path string) {
	bases := linkBases()
	switch n.Kind {
	case yaml.ScalarNode:
		if !slices.Contains(bases, n.Value) {
			d.errorf(n, path, "must be a built-in link profile, %s, or a mapping with base and overrides (got %s)%s",
				orList(bases), got(n), suggestion(n.Value, bases))
			return
		}
		*l = builtinLink(n.Value)
	case yaml.MappingNode:
		base := "typical"
		for _, p := range d.pairs(n, path) {
			if p.k.Value == "base" {
				if v := d.resolve(p.v); v != nil && v.Kind == yaml.ScalarNode {
					base = v.Value
				}
			}
		}
		if !slices.Contains(bases, base) {
			// Reported when the mapping is decoded below.
			base = "typical"
		}
		b := builtinLink(base)
		spec := specOf(base, b.Profile)
		// Fields that fail to decode keep the base's value, so the link model
		// still checks the others.
		d.structure(n, path, reflect.ValueOf(&spec).Elem())
		if !slices.Contains(bases, spec.Base) {
			spec.Base = base
		}
		l.Base, l.Custom = spec.Base, true
		l.Profile = spec.profile(b.Profile.Name + " (custom)")
	default:
		d.errorf(n, path, "must be %s, or a mapping with base and overrides (got %s)", orList(bases), got(n))
	}
}

// MarshalJSON writes the fully built link the way a scenario would write it.
func (l Link) MarshalJSON() ([]byte, error) {
	return json.Marshal(specOf(l.Base, l.Profile))
}

// linkFieldPath turns a field name from network.Profile.Validate into the
// path of the scenario key.
func linkFieldPath(path, field string) string {
	if k, ok := linkFieldNames[field]; ok {
		field = k
	}
	for _, part := range strings.Split(field, ".") {
		path = join(path, part)
	}
	return path
}
