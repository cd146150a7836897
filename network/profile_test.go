package network

import (
	"strings"
	"testing"
	"time"
)

func TestBuiltinProfiles(t *testing.T) {
	names := BuiltinProfiles()
	if strings.Join(names, ",") != "good,typical,poor" {
		t.Fatalf("BuiltinProfiles() = %v", names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p, err := BuiltinProfile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("built-in profile does not validate: %v", err)
			}
			if p.Name != name {
				t.Errorf("Name = %q", p.Name)
			}
			// Every built-in is HD-FDD Cat-M1: at most 300 kbit/s down, 375 up.
			if p.DownlinkBPS > 300_000 || p.UplinkBPS > 375_000 {
				t.Errorf("rates %d/%d exceed the HD-FDD ceiling", p.DownlinkBPS, p.UplinkBPS)
			}
			if got := p.mss(); got != p.MTU-40 {
				t.Errorf("derived MSS = %d, want MTU-40 = %d", got, p.MTU-40)
			}
		})
	}
	// The spec's table, in order good < typical < poor for delays and loss.
	g, _ := BuiltinProfile("good")
	ty, _ := BuiltinProfile("typical")
	po, _ := BuiltinProfile("poor")
	for _, f := range []struct {
		name          string
		good, ty, poo float64
	}{
		{"rtt", float64(g.RTT), float64(ty.RTT), float64(po.RTT)},
		{"loss", g.Loss, ty.Loss, po.Loss},
		{"rrc_setup", float64(g.RRCSetup), float64(ty.RRCSetup), float64(po.RRCSetup)},
		{"attach", float64(g.AttachTime), float64(ty.AttachTime), float64(po.AttachTime)},
		{"tx current", g.Current.ModemTX, ty.Current.ModemTX, po.Current.ModemTX},
	} {
		if !(f.good < f.ty && f.ty < f.poo) {
			t.Errorf("%s not ordered good < typical < poor: %v %v %v", f.name, f.good, f.ty, f.poo)
		}
	}
}

func TestBuiltinProfileLookup(t *testing.T) {
	tests := []struct {
		name, want, err string
	}{
		{name: "typical", want: "typical"},
		{name: "urban", want: "typical"},
		{name: "poor", want: "poor"},
		{name: "excellent", err: `unknown link profile "excellent": try one of [good typical poor]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := BuiltinProfile(tc.name)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || p.Name != tc.want {
				t.Fatalf("got %q, %v; want %q", p.Name, err, tc.want)
			}
		})
	}
}

func TestBuiltinProfileIsACopy(t *testing.T) {
	p, _ := BuiltinProfile("typical")
	p.RTT = time.Hour
	q, _ := BuiltinProfile("typical")
	if q.RTT == time.Hour {
		t.Fatal("changing a returned profile changed the built-in")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(p *Profile)
		want   []string // every one must appear in the error
	}{
		{"custom override is fine", func(p *Profile) { p.RTT = 300 * time.Millisecond; p.MTU = 1280 }, nil},
		{"negative latency", func(p *Profile) { p.RTT = -5 * time.Millisecond }, []string{"rtt: must be >= 0 (got -5ms)"}},
		{"negative jitter", func(p *Profile) { p.RTTJitter = -time.Millisecond }, []string{"rtt_jitter: must be >= 0 (got -1ms)"}},
		{"zero rate", func(p *Profile) { p.UplinkBPS = 0 }, []string{"uplink_bps: must be > 0 (got 0)"}},
		{"loss of one", func(p *Profile) { p.Loss = 1 }, []string{"loss: must be in [0, 1) (got 1)"}},
		{"tiny mtu", func(p *Profile) { p.MTU = 100 }, []string{"mtu: must be in [576, 65535] (got 100)"}},
		{"ipv6 needs 1280", func(p *Profile) { p.IPv6 = true; p.MTU = 1000 }, []string{"mtu: must be in [1280, 65535] (got 1000)"}},
		{"mss above mtu", func(p *Profile) { p.MSS = 1500 }, []string{"mss: must be 0 (derived) or in [64, mtu-40] (got 1500)"}},
		{"psm active time", func(p *Profile) { p.PSM = true; p.T3324 = 3 * time.Hour }, []string{"t3324: must be in [0, t3412) with psm (got 3h0m0s)"}},
		{"edrx window", func(p *Profile) { p.EDRX = true; p.EDRXPTW = 100 * time.Second }, []string{"edrx_ptw: must be in (0, edrx_cycle] with edrx (got 1m40s)"}},
		{"several at once", func(p *Profile) { p.RTT = -1; p.TXDuty = 2; p.Current.ModemTX = -1 }, []string{
			"rtt: must be >= 0", "tx_duty: must be in [0, 1] (got 2)", "current.modem_tx: must be >= 0 mA (got -1)",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := BuiltinProfile("typical")
			tc.modify(&p)
			err := p.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), `link profile "typical" is invalid: `) {
				t.Errorf("error %q does not name the profile", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSegmentGeometry(t *testing.T) {
	tests := []struct {
		name                 string
		ipv6, ts             bool
		mtu, mss             int
		wantHdr, wantPayload int
	}{
		{"ipv4", false, false, 1430, 0, 40, 1390},
		{"ipv4 timestamps", false, true, 1430, 0, 52, 1378},
		{"ipv6", true, false, 1430, 0, 60, 1370},
		{"ipv6 timestamps", true, true, 1280, 0, 72, 1208},
		{"explicit mss", false, false, 1500, 1300, 40, 1300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Profile{IPv6: tc.ipv6, TCPTimestamps: tc.ts, MTU: tc.mtu, MSS: tc.mss}
			if h := p.segHeader(); h != tc.wantHdr {
				t.Errorf("segment header %d, want %d", h, tc.wantHdr)
			}
			if n := p.segPayload(); n != tc.wantPayload {
				t.Errorf("segment payload %d, want %d", n, tc.wantPayload)
			}
		})
	}
}
