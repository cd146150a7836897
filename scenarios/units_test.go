package scenarios

import (
	"strings"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		text string // String(); "" means the input itself
		bad  bool
	}{
		{in: "90s", want: 90 * time.Second, text: "1m30s"},
		{in: "2m", want: 2 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1.5h", want: 90 * time.Minute, text: "1h30m"},
		{in: "81.92s", want: 81920 * time.Millisecond},
		{in: "10min", want: 10 * time.Minute, text: "10m"},
		{in: "1 m 30 s", want: 90 * time.Second, text: "1m30s"},
		{in: "0", want: 0, text: "0s"},
		{in: "-5ms", want: -5 * time.Millisecond},
		{in: "1500us", want: 1500 * time.Microsecond, text: "1.5ms"},
		{in: "90", bad: true},
		{in: "5MB", bad: true},
		{in: "s", bad: true},
		{in: "", bad: true},
		{in: "-", bad: true},
		{in: "1h-5m", bad: true},
		{in: "2mins", bad: true},
		{in: "300000000d", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tt.in))
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted as %v", d.D())
				}
				if !strings.Contains(err.Error(), "must be a duration such as 90s") {
					t.Errorf("error %v", err)
				}
				return
			}
			if err != nil || d.D() != tt.want {
				t.Fatalf("got %v, %v; want %v", d.D(), err, tt.want)
			}
			want := tt.text
			if want == "" {
				want = tt.in
			}
			if d.String() != want {
				t.Errorf("String() = %q, want %q", d.String(), want)
			}
			var back Duration
			if err := back.UnmarshalText([]byte(d.String())); err != nil || back != d {
				t.Errorf("%q does not read back: %v, %v", d.String(), back.D(), err)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		text string
		bad  bool
	}{
		{in: "120B", want: 120},
		{in: "1KB", want: 1024},
		{in: "5MB", want: 5 << 20},
		{in: "1GB", want: 1 << 30},
		{in: "1.5KB", want: 1536, text: "1536B"},
		{in: "64kb", want: 65536, text: "64KB"},
		{in: "2 MiB", want: 2 << 20, text: "2MB"},
		{in: "0", want: 0, text: "0B"},
		{in: "-1KB", want: -1024},
		{in: "64", bad: true},
		{in: "0.3KB", bad: true},
		{in: "10s", bad: true},
		{in: "5MB/month", bad: true},
		{in: "99999999999GB", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b ByteSize
			err := b.UnmarshalText([]byte(tt.in))
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted as %d", b)
				}
				return
			}
			if err != nil || int64(b) != tt.want {
				t.Fatalf("got %d, %v; want %d", b, err, tt.want)
			}
			want := tt.text
			if want == "" {
				want = tt.in
			}
			if b.String() != want {
				t.Errorf("String() = %q, want %q", b.String(), want)
			}
			var back ByteSize
			if err := back.UnmarshalText([]byte(b.String())); err != nil || back != b {
				t.Errorf("%q does not read back", b.String())
			}
		})
	}
}

func TestRatesPercentsPlansBitRates(t *testing.T) {
	tests := []struct {
		name    string
		u       unitValue
		in      string
		text    string
		measure float64 // quantity(u)
		bad     bool
	}{
		{"rate per minute", new(Rate), "2/min", "2/min", 2.0 / 60, false},
		{"rate per ten minutes", new(Rate), "1/10min", "1/10min", 1.0 / 600, false},
		{"rate per ninety minutes", new(Rate), "1/1h30m", "1/1h30min", 1.0 / 5400, false},
		{"rate per 250ms", new(Rate), "1/250ms", "1/250ms", 4, false},
		{"rate per second", new(Rate), "5/s", "5/s", 5, false},
		{"rate per hour", new(Rate), "1/h", "1/h", 1.0 / 3600, false},
		{"rate per day", new(Rate), "3/day", "3/d", 3.0 / 86400, false},
		{"rate with blanks", new(Rate), " 0.5 / s ", "0.5/s", 0.5, false},
		{"rate zero", new(Rate), "0/s", "0/s", 0, false},
		{"rate without period", new(Rate), "5", "", 0, true},
		{"rate bad period", new(Rate), "5/fortnight", "", 0, true},
		{"rate negative period", new(Rate), "5/-1s", "", 0, true},
		{"percent", new(Percent), "10%", "10%", 10, false},
		{"percent fraction", new(Percent), "0.5 %", "0.5%", 0.5, false},
		{"percent bare", new(Percent), "0.1", "", 0, true},
		{"percent twice", new(Percent), "10%%", "", 0, true},
		{"plan per month", new(DataPlan), "5MB/month", "5MB/month", 5 << 20, false},
		{"plan per day", new(DataPlan), "200KB/day", "200KB/day", 200 << 10 * 30, false},
		{"plan per year", new(DataPlan), "365MB/year", "365MB/year", 30 << 20, false},
		{"plan without period", new(DataPlan), "5MB", "", 0, true},
		{"plan per week", new(DataPlan), "5MB/week", "", 0, true},
		{"kbps", new(BitRate), "2kbps", "2kbps", 2000, false},
		{"Mbps", new(BitRate), "1Mbps", "1Mbps", 1e6, false},
		{"bps", new(BitRate), "1500bps", "1500bps", 1500, false},
		{"decimal kbps", new(BitRate), "1.4kbps", "1400bps", 1400, false},
		{"bit rate as size", new(BitRate), "2kb", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.u.parse(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %q", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q := quantity(tt.u); q < tt.measure*(1-1e-12) || q > tt.measure*(1+1e-12) {
				t.Errorf("quantity %v, want %v", q, tt.measure)
			}
			text := tt.u.(interface{ MarshalText() ([]byte, error) })
			b, _ := text.MarshalText()
			if string(b) != tt.text {
				t.Errorf("text %q, want %q", b, tt.text)
			}
		})
	}
}

func TestRateInterval(t *testing.T) {
	r := Rate{N: 1, Per: Duration(10 * time.Minute)}
	if r.Interval() != 10*time.Minute || (Rate{}).Interval() != 0 || (Rate{}).PerSecond() != 0 {
		t.Errorf("interval %v", r.Interval())
	}
}

func TestDescribe(t *testing.T) {
	for in, want := range map[string]string{
		"5MB": "a size", "90s": "a duration", "2/min": "a rate", "10%": "a percentage",
		"5MB/month": "a data plan", "2kbps": "a bit rate", "ten": "", "0": "",
	} {
		if got := describe(in); got != want {
			t.Errorf("describe(%q) = %q, want %q", in, got, want)
		}
	}
}
