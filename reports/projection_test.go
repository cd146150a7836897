package reports

import (
	"math"
	"testing"
	"time"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// TestFirstConnectionIsNotScaled checks the projection's one rule beyond
// scaling: a device's first connection is a one-off, counted once a month,
// while connections that recur (one per HTTPS request) scale with time.
func TestFirstConnectionIsNotScaled(t *testing.T) {
	tests := []struct {
		name           string
		initial        uint64
		connect, other uint64
		wantPerDay     float64
	}{
		{"stays connected", 1, 6000, 1000, 1000*12 + 6000.0/30},
		{"a connection per request", 10, 60000, 1000, (1000+60000-6000)*12 + 6000.0/30},
		{"no connection counted", 0, 6000, 1000, 7000 * 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &DeviceRow{Elapsed: 2 * time.Hour}
			d.Connections[network.ReasonInitial] = tt.initial
			d.Bytes[network.LayerIP][network.Up][network.ClassConnect] = tt.connect
			d.Bytes[network.LayerIP][network.Up][network.ClassTelemetry] = tt.other
			project(d, nil, nil)
			if got := d.Projected.BytesPerDay.IP; math.Abs(got-tt.wantPerDay) > 1e-6 {
				t.Fatalf("IP bytes per day %.1f, want %.1f", got, tt.wantPerDay)
			}
			if got := d.Projected.IPBytesPerMonth; math.Abs(got-tt.wantPerDay*30) > 1e-3 {
				t.Fatalf("IP bytes per month %.1f, want %.1f", got, tt.wantPerDay*30)
			}
		})
	}
}

// TestScheduledOperationsAreReplayed checks that an operation the run caught
// only a few times is projected at the scenario's rate, not the run's.
func TestScheduledOperationsAreReplayed(t *testing.T) {
	d := &DeviceRow{Elapsed: 2 * time.Minute}
	d.Connections[network.ReasonInitial] = 1
	d.Bytes[network.LayerIP][network.Up][network.ClassConnect] = 6000
	d.Bytes[network.LayerIP][network.Up][network.ClassTelemetry] = 2 * 300 // two sends of 300 B
	d.Bytes[network.LayerIP][network.Up][network.ClassKeepAlive] = 100
	d.Counts[metrics.D2CSent] = 2
	project(d, nil, &Schedule{Telemetry: 288}) // every 5 minutes
	want := 300*288 + 100*720 + 6000.0/30
	if got := d.Projected.BytesPerDay.IP; math.Abs(got-want) > 1e-6 {
		t.Fatalf("IP bytes per day %.1f, want %.1f", got, want)
	}
	if got := projectedCell(d, network.LayerIP, network.Up, network.ClassTelemetry); got != 300*288 {
		t.Fatalf("telemetry per day %.1f", got)
	}
}

func TestConnectionsPerRequestRecur(t *testing.T) {
	d := &DeviceRow{Elapsed: time.Minute}
	d.Connections[network.ReasonInitial] = 1
	d.Bytes[network.LayerIP][network.Up][network.ClassConnect] = 5000
	d.Counts[metrics.D2CSent] = 1
	d.Bytes[network.LayerIP][network.Up][network.ClassTelemetry] = 700
	project(d, nil, &Schedule{Telemetry: 144, Connections: 144})
	if got, want := d.Projected.BytesPerDay.IP, float64(144*(5000+700)); got != want {
		t.Fatalf("IP bytes per day %.0f, want %.0f", got, want)
	}
}

// TestFirmwareTrafficScalesWithTime checks that the telemetry and twin bytes
// of firmware devices, whose pace no schedule states, scale with the measured
// time even when the cloud drivers schedule twin updates, while scheduled C2D
// is still replayed at its rate.
func TestFirmwareTrafficScalesWithTime(t *testing.T) {
	d := &DeviceRow{Elapsed: 10 * time.Minute} // a day is 144 times as long
	d.Connections[network.ReasonInitial] = 1
	d.Bytes[network.LayerIP][network.Up][network.ClassTelemetry] = 20 * 250
	d.Bytes[network.LayerIP][network.Up][network.ClassTwin] = 3 * 200
	d.Bytes[network.LayerIP][network.Down][network.ClassC2D] = 2 * 150
	d.Counts[metrics.D2CSent] = 20
	d.Counts[metrics.TwinOps] = 3
	d.Counts[metrics.C2DReceived] = 2
	project(d, nil, &Schedule{Firmware: true, Twin: 24, C2D: 48})
	cell := func(dir network.Direction, c network.Class) float64 { return projectedCell(d, network.LayerIP, dir, c) }
	if got, want := cell(network.Up, network.ClassTelemetry), 20*250*144.0; got != want {
		t.Errorf("telemetry per day %.0f, want %.0f (time-scaled)", got, want)
	}
	if got, want := cell(network.Up, network.ClassTwin), 3*200*144.0; got != want {
		t.Errorf("twin per day %.0f, want %.0f (time-scaled, not the desired schedule)", got, want)
	}
	if got, want := cell(network.Down, network.ClassC2D), 150*48.0; got != want {
		t.Errorf("C2D per day %.0f, want %.0f (replayed at the schedule)", got, want)
	}
}

// TestSetupOperationsAreCountedOnce checks that the operations a device set
// apart as its start-up (a firmware's boot report) take their share of their
// class's bytes once a month, and only the rest is scaled with time.
func TestSetupOperationsAreCountedOnce(t *testing.T) {
	d := &DeviceRow{Elapsed: 10 * time.Minute} // a day is 144 times as long
	d.Connections[network.ReasonInitial] = 1
	d.Bytes[network.LayerIP][network.Up][network.ClassTwin] = 4 * 200
	d.Counts[metrics.TwinOps] = 4
	d.Setup = &CountTable{}
	d.Setup[metrics.TwinOps] = 1 // the boot report
	project(d, nil, &Schedule{Firmware: true})
	if got, want := projectedCell(d, network.LayerIP, network.Up, network.ClassTwin), 200.0/30+3*200*144; math.Abs(got-want) > 1e-9 {
		t.Fatalf("twin per day %.2f, want %.2f: the boot report once a month, the rest scaled", got, want)
	}
}

// A start-up operation still in flight when the run ended has bytes and no
// count yet: its class's bytes are all start-up.
func TestSetupInFlightIsCountedOnce(t *testing.T) {
	d := &DeviceRow{Elapsed: 2 * time.Second}
	d.Connections[network.ReasonInitial] = 1
	d.Bytes[network.LayerIP][network.Up][network.ClassTwin] = 167
	d.Setup = &CountTable{}
	d.Setup[metrics.TwinOps] = 1
	project(d, nil, &Schedule{Firmware: true})
	if got, want := projectedCell(d, network.LayerIP, network.Up, network.ClassTwin), 167.0/30; math.Abs(got-want) > 1e-9 {
		t.Fatalf("twin per day %.2f, want %.2f", got, want)
	}
}
