package reports

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// view is one table of the human-readable report. The Markdown and HTML
// writers render the same views, so the two never disagree.
type view struct {
	id    string
	title string
	note  string
	head  []string
	rows  [][]string
	// numeric marks columns to align right.
	numeric []bool
	// after are lines written below the table.
	after []string
}

func (v *view) add(cells ...string) { v.rows = append(v.rows, cells) }

func numericFrom(n, from int) []bool {
	out := make([]bool, n)
	for i := from; i < n; i++ {
		out[i] = true
	}
	return out
}

// groupLabel names an aggregate in a table row or chart.
func groupLabel(a *Aggregate) string {
	if a.Group == "" {
		return a.Protocol
	}
	return a.Group + " · " + a.Protocol
}

// verdict is an aggregate's budget verdict in a few words.
func verdict(a *Aggregate) string {
	b := a.Budget
	switch {
	case b == nil:
		return "no data plan"
	case b.OverBudget > 0:
		return fmt.Sprintf("OVER: %d of %d devices over plan", b.OverBudget, b.Devices)
	}
	return "within plan"
}

func useMax(a *Aggregate) string {
	if a.Budget == nil {
		return "-"
	}
	return fmtPct(a.Budget.Use.Max)
}

func planText(b *Budget) string {
	if b.PlanBytesPerMonth == 0 {
		return "mixed"
	}
	return fmtBytes(float64(b.PlanBytesPerMonth)) + "/month"
}

func billingText(b Billing) string {
	if b.Increment <= 0 {
		return "by the byte"
	}
	per := b.Per
	if per == "" {
		per = PerMonth
	}
	return fmtBytes(float64(b.Increment)) + " per " + per
}

// shardText says which shards a report holds.
func shardText(m *Meta) string {
	idx := m.ShardIndices()
	if m.Shards <= 1 {
		return "whole fleet"
	}
	if len(idx) == 1 {
		return fmt.Sprintf("shard %d of %d", idx[0], m.Shards)
	}
	parts := make([]string, len(idx))
	for i, s := range idx {
		parts[i] = strconv.Itoa(s)
	}
	s := fmt.Sprintf("merged shards %s of %d", strings.Join(parts, ", "), m.Shards)
	if len(idx) == m.Shards {
		s = fmt.Sprintf("all %d shards, merged", m.Shards)
	} else {
		s += " (incomplete)"
	}
	return s
}

// maxNamed bounds how many over-budget devices the human report names; the
// JSON and CSV name them all.
const maxNamed = 20

func (r *Report) views() []view {
	var out []view
	s := &r.Summary

	bp := view{id: "bytes", title: "Bytes per device per day, by protocol (projected)",
		head: []string{"protocol", "devices", "payload", "protocol", "TLS", "IP", "IP up", "IP down", "plan use max", "budget"}}
	bp.numeric = numericFrom(9, 1)
	bp.numeric = append(bp.numeric, false)
	for i := range s.Protocols {
		a := &s.Protocols[i]
		l := &a.Projected.BytesPerDeviceDay
		bp.add(a.Protocol, strconv.Itoa(a.Devices), fmtBytes(l.Payload.Avg), fmtBytes(l.Protocol.Avg), fmtBytes(l.TLS.Avg),
			fmtBytes(l.IP.Avg), fmtBytes(a.Projected.IPUpPerDeviceDay), fmtBytes(a.Projected.IPDownPerDeviceDay), useMax(a), verdict(a))
	}
	out = append(out, bp)

	g := view{id: "groups", title: "Bytes per device per day, by group (projected)",
		head: []string{"group", "protocol", "profile", "devices", "payload", "protocol", "TLS", "IP avg", "IP p50", "IP p95", "IP max"}}
	g.numeric = numericFrom(11, 3)
	for i := range s.Groups {
		a := &s.Groups[i]
		l := &a.Projected.BytesPerDeviceDay
		g.add(a.Group, a.Protocol, a.Profile, strconv.Itoa(a.Devices), fmtBytes(l.Payload.Avg), fmtBytes(l.Protocol.Avg),
			fmtBytes(l.TLS.Avg), fmtBytes(l.IP.Avg), fmtBytes(l.IP.P50), fmtBytes(l.IP.P95), fmtBytes(l.IP.Max))
	}
	out = append(out, g)

	classes := r.classesUsed()
	c := view{id: "classes", title: "IP bytes per device per day, by operation (projected)",
		note: "What each operation costs on the bill, averaged over the group's devices; the share is of the group's IP bytes."}
	c.head = append([]string{"group", "protocol"}, classes...)
	c.head = append(c.head, "connect bytes per connection")
	c.numeric = numericFrom(len(c.head), 2)
	for i := range s.Groups {
		a := &s.Groups[i]
		row := []string{a.Group, a.Protocol}
		for _, name := range classes {
			cell := "-"
			for _, cb := range a.Projected.Classes {
				if cb.Class == name {
					cell = fmtBytes(cb.PerDeviceDay.IP) + " (" + fmtPct(cb.IPShare) + ")"
				}
			}
			row = append(row, cell)
		}
		cpc := "-"
		if a.Projected.ConnectIPPerConn > 0 {
			cpc = fmtBytes(a.Projected.ConnectIPPerConn)
		}
		c.add(append(row, cpc)...)
	}
	out = append(out, c)

	b := view{id: "budget", title: "Data budget per device (projected to a 30-day month)",
		note: "IP bytes in both directions, as carriers bill them, rounded to the billing increment; a per-session increment is charged once per day's session.",
		head: []string{"group", "protocol", "plan", "billing", "IP/month avg", "billed avg", "use avg", "use max", "verdict"}}
	b.numeric = numericFrom(8, 4)
	b.numeric = append(b.numeric, false)
	for i := range s.Groups {
		a := &s.Groups[i]
		pj := &a.Projected
		if a.Budget == nil {
			b.add(a.Group, a.Protocol, "none", "-", fmtBytes(pj.IPBytesPerMonth.Avg), fmtBytes(pj.BilledPerMonth.Avg), "-", "-", verdict(a))
			continue
		}
		bu := a.Budget
		b.add(a.Group, a.Protocol, planText(bu), billingText(bu.Billing), fmtBytes(pj.IPBytesPerMonth.Avg),
			fmtBytes(pj.BilledPerMonth.Avg), fmtPct(bu.Use.Avg), fmtPct(bu.Use.Max), verdict(a))
		if bu.OverBudget > 0 {
			names := bu.OverBudgetDevices
			more := ""
			if len(names) > maxNamed {
				more = fmt.Sprintf(" and %d more (all in devices.csv)", len(names)-maxNamed)
				names = names[:maxNamed]
			}
			b.after = append(b.after, fmt.Sprintf("Over budget in %s: %s%s", groupLabel(a), strings.Join(names, ", "), more))
		}
	}
	out = append(out, b)

	lat := view{id: "latency", title: "Latency",
		head: []string{"group", "protocol", "operation", "count", "p50", "p90", "p95", "p99", "max"}}
	lat.numeric = numericFrom(9, 3)
	for i := range s.Groups {
		a := &s.Groups[i]
		for _, l := range a.Latency {
			lat.add(a.Group, a.Protocol, l.Latency, strconv.FormatInt(l.Count, 10), fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P95), fmtMS(l.P99), fmtMS(l.Max))
		}
	}
	out = append(out, lat)

	e := view{id: "energy", title: "Energy per device (projected)",
		head: []string{"group", "protocol", "mAh/day avg", "mAh/day max", "battery", "life at avg draw", "shortest life"}}
	e.numeric = numericFrom(7, 2)
	for i := range s.Groups {
		a := &s.Groups[i]
		if a.Energy == nil {
			e.add(a.Group, a.Protocol, "-", "-", "-", "-", "-")
			continue
		}
		en := a.Energy
		bat := "mixed"
		if en.BatteryMAh > 0 {
			bat = fmtNum(en.BatteryMAh) + " mAh"
		}
		e.add(a.Group, a.Protocol, fmtNum(round3(en.MAhPerDay.Avg)), fmtNum(round3(en.MAhPerDay.Max)), bat, fmtDays(en.BatteryLifeDays), fmtDays(en.BatteryLifeDaysMin))
	}
	out = append(out, e)

	cnt := view{id: "counts", title: "Messages and connections (measured)",
		head: []string{"group", "protocol", "d2c sent", "d2c failed", "c2d received", "methods", "twin ops", "connections", "connect failures", "reconnects", "errors"}}
	cnt.numeric = numericFrom(10, 2)
	cnt.numeric = append(cnt.numeric, false)
	for i := range s.Groups {
		a := &s.Groups[i]
		k := &a.Counts
		cnt.add(a.Group, a.Protocol, u(k.Get(metrics.D2CSent)), u(k.Get(metrics.D2CFailed)), u(k.Get(metrics.C2DReceived)),
			u(k.Get(metrics.MethodCalls)), u(k.Get(metrics.TwinOps)), u(k.Get(metrics.Connects)), u(k.Get(metrics.ConnectFailures)),
			u(k.Get(metrics.Reconnects)), errorsText(a.Errors))
	}
	out = append(out, cnt)

	th := view{id: "thresholds", title: "Thresholds", head: []string{"result", "threshold", "observed", "samples"}}
	th.numeric = []bool{false, false, true, true}
	for _, t := range r.Thresholds {
		res, obs := "pass", ""
		if !t.Pass {
			res = "FAIL"
		}
		if t.NoData {
			res, obs = "FAIL (no data)", "no data"
		} else if m, ok := lookupMetric(t.Threshold.Metric); ok {
			obs = formatValue(m, t.Threshold.Agg, t.Observed)
		}
		th.add(res, t.Threshold.Key().String()+" "+t.Threshold.Source, obs, strconv.Itoa(t.Samples))
	}
	if len(r.Thresholds) == 0 {
		th.note = "The scenario sets no thresholds."
	}
	out = append(out, th)
	return out
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func round3(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return f
}

func errorsText(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// classesUsed lists the classes any group spent bytes on, in class order.
func (r *Report) classesUsed() []string {
	used := map[string]bool{}
	for _, a := range r.Summary.Groups {
		for _, c := range a.Projected.Classes {
			if c.PerDeviceDay.IP > 0 {
				used[c.Class] = true
			}
		}
	}
	var out []string
	for _, c := range network.Classes() {
		if used[c.String()] {
			out = append(out, c.String())
		}
	}
	return out
}

// headline is the report's verdict on its thresholds in one line.
func (r *Report) headline() string {
	if line := BreachLine(r.Thresholds); line != "" {
		return line
	}
	switch n := len(r.Thresholds); n {
	case 0:
		return "no thresholds set"
	case 1:
		return "the threshold held"
	default:
		return fmt.Sprintf("all %d thresholds held", n)
	}
}
