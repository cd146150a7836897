package reports

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/catmsim/catmsim/network"
)

// halveSensors returns a copy of r whose sensors moved half the telemetry IP
// bytes, summarised again.
func halveSensors(t *testing.T, r *Report) *Report {
	t.Helper()
	b := roundTrip(t, r)
	b.Meta.RunID = "20260302T120000-fixture"
	for i := range b.Devices {
		d := &b.Devices[i]
		if d.Group == "sensors" {
			for dir := range d.Bytes[network.LayerIP] {
				d.Bytes[network.LayerIP][dir][network.ClassTelemetry] /= 2
			}
		}
	}
	if err := b.summarize(); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDiff(t *testing.T) {
	a := fixtureReport(t)
	b := halveSensors(t, a)
	d := Diff(a, b)
	var sensorsIP, metersIP *ByteDelta
	for i := range d.Bytes {
		x := &d.Bytes[i]
		if x.Layer == "ip" && x.Group == "sensors" {
			sensorsIP = x
		}
		if x.Layer == "ip" && x.Group == "meters" {
			metersIP = x
		}
	}
	if sensorsIP == nil || metersIP == nil {
		t.Fatalf("no ip rows for sensors and meters: %+v", d.Bytes)
	}
	if sensorsIP.Pct() >= -10 || sensorsIP.B >= sensorsIP.A || metersIP.Pct() != 0 {
		t.Fatalf("sensors ip %v → %v (%v%%), meters %v%%", sensorsIP.A, sensorsIP.B, sensorsIP.Pct(), metersIP.Pct())
	}
	if inc := d.Increases(0); len(inc) != 0 {
		t.Fatalf("bytes only fell, yet increases %+v", inc)
	}
	back := Diff(b, a)
	inc := back.Increases(10)
	if len(inc) != 1 || inc[0].Group != "sensors" || inc[0].Layer != "ip" {
		t.Fatalf("increases over 10%%: %+v", inc)
	}
	if len(back.Increases(inc[0].Pct())) != 0 {
		t.Fatal("a row grew by more than its own growth")
	}
	var changed *ThresholdChange
	for i := range d.Thresholds {
		if strings.HasPrefix(d.Thresholds[i].Threshold, "ip_bytes_per_device_day{protocol:mqtt}") {
			changed = &d.Thresholds[i]
		}
	}
	if changed == nil || changed.A != "fail" || changed.B != "pass" {
		t.Fatalf("mqtt byte threshold change %+v", changed)
	}

	var out bytes.Buffer
	if err := d.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	golden(t, "diff.txt", out.Bytes())
}

func TestDiffGroupsInOneRunOnly(t *testing.T) {
	a := smallReport(t)
	b := roundTrip(t, a)
	b.Devices = b.Devices[:2] // group b is gone
	if err := b.summarize(); err != nil {
		t.Fatal(err)
	}
	d := Diff(a, b)
	gone := 0
	for _, x := range d.Bytes {
		if x.Group == "b" {
			if x.In != OnlyA {
				t.Fatalf("group b row %+v is not marked as only in A", x)
			}
			gone++
		}
	}
	if gone != 4 {
		t.Fatalf("%d rows for the vanished group, want one per layer", gone)
	}
	if got := (ByteDelta{A: 0, B: 5}).Pct(); !math.IsInf(got, 1) {
		t.Fatalf("growth from zero is %v", got)
	}
}
