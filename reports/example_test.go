package reports_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/reports"
)

// A run's report holds its thresholds' verdicts; Check turns a breach into
// the one-line error sim exits 99 with.
func ExampleBuild() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := metrics.NewRun(func() time.Time { return start })
	for i, kb := range []int{90, 120, 200} {
		ledger := network.NewLedger()
		ledger.Add(network.LayerIP, network.Up, network.ClassTelemetry, kb<<10)
		run.Device(metrics.DeviceInfo{Index: i, ID: fmt.Sprint("dev-", i), Group: "field", Profile: "fipy", Protocol: "mqtt"}, ledger, nil)
	}
	th, _ := metricdef.Parse("ip_bytes_per_device_day{protocol:mqtt}", "p(95) < 150KB")
	r, err := reports.Build(reports.Input{Run: run, Meta: reports.Meta{
		Scenario: "example", Duration: 24 * time.Hour, Thresholds: reports.Thresholds{th},
		Profiles: []reports.ProfileMeta{{Name: "fipy", Protocol: "mqtt", DataPlan: 5 << 20, Billing: reports.Billing{Increment: 1024, Per: reports.PerSession}}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	g := r.Summary.Groups[0]
	fmt.Printf("%s: %.0f B per device-day, %d of %d devices over plan\n", g.Group, g.Projected.BytesPerDeviceDay.IP.Avg, g.Budget.OverBudget, g.Budget.Devices)
	err = r.Check()
	fmt.Println(errors.Is(err, reports.ErrThresholdsBreached))
	fmt.Println(err)
	// Output:
	// field: 139947 B per device-day, 1 of 3 devices over plan
	// true
	// 1 of 1 threshold breached: ip_bytes_per_device_day{protocol:mqtt} p(95) < 150KB (observed 192KB)
}
