package reports

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestCompareTable(t *testing.T) {
	r := fixtureReport(t)
	c, err := CompareTable(r)
	if err != nil {
		t.Fatal(err)
	}
	var protos []string
	for _, row := range c.Rows {
		protos = append(protos, row.Protocol)
	}
	if strings.Join(protos, ",") != "mqtt,amqp,https" {
		t.Fatalf("rows %v, want the catalogue's protocol order", protos)
	}
	for _, row := range c.Rows {
		a := findProtocol(r, row.Protocol)
		if row.PerDeviceDay.IP != a.Projected.BytesPerDeviceDay.IP.Avg || row.Devices != a.Devices {
			t.Errorf("%s: row disagrees with the report's aggregate", row.Protocol)
		}
		if len(row.TopClasses) == 0 || len(row.TopClasses) > 3 {
			t.Errorf("%s: %d top classes", row.Protocol, len(row.TopClasses))
		}
		for i := 1; i < len(row.TopClasses); i++ {
			if row.TopClasses[i].PerDeviceDay.IP > row.TopClasses[i-1].PerDeviceDay.IP {
				t.Errorf("%s: top classes out of order", row.Protocol)
			}
		}
		if math.IsNaN(row.D2CP95) || row.MAhPerDay <= 0 {
			t.Errorf("%s: latency %v, energy %v", row.Protocol, row.D2CP95, row.MAhPerDay)
		}
	}
	if !strings.HasPrefix(c.Rows[1].Verdict, "OVER") || c.Rows[2].Verdict != "no data plan" {
		t.Fatalf("verdicts %q, %q", c.Rows[1].Verdict, c.Rows[2].Verdict)
	}

	var txt, page bytes.Buffer
	if err := c.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.txt", txt.Bytes())
	if err := c.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.html", page.Bytes())
}

func findProtocol(r *Report, p string) *Aggregate {
	for i := range r.Summary.Protocols {
		if r.Summary.Protocols[i].Protocol == p {
			return &r.Summary.Protocols[i]
		}
	}
	return nil
}

func TestCompareTableRefuses(t *testing.T) {
	r := fixtureReport(t)
	other := roundTrip(t, r)
	other.Meta.Scenario = "other"
	tests := []struct {
		name string
		in   []*Report
		err  string
	}{
		{"nothing", nil, "no reports given"},
		{"a protocol twice", []*Report{r, r}, "mqtt appears in run"},
		{"two scenarios", []*Report{r, other}, `scenario "other"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CompareTable(tt.in...); err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want it to contain %q", err, tt.err)
			}
		})
	}
}
