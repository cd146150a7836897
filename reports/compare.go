package reports

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Comparison is one scenario run once per protocol, side by side: what
// `sim compare` prints and renders.
type Comparison struct {
	Scenario string
	Seed     uint64
	// Duration is the longest measured duration of the runs compared.
	Duration time.Duration
	Rows     []CompareRow
}

// CompareRow is one protocol's cost. Byte, energy and budget figures are
// projections from the run's measured duration.
type CompareRow struct {
	Protocol string
	RunID    string
	Devices  int
	// PerDeviceDay is the average bytes per device-day at each layer.
	PerDeviceDay LayerValues
	// TopClasses are the operations that cost the most IP bytes, at most three.
	TopClasses []ClassBytes
	// ConnectBytes is the IP bytes of setting up one connection (0: none seen).
	ConnectBytes float64
	// D2CP95 is the 95th percentile of device-to-cloud latency in
	// milliseconds; NaN when none was measured.
	D2CP95          float64
	MAhPerDay       float64 // 0: not measured
	BatteryLifeDays float64
	IPBytesPerMonth float64
	// Budget is nil when no device on the protocol has a data plan.
	Budget  *Budget
	Verdict string
}

// CompareTable lines up the protocols of several reports of one scenario
// (usually one report per protocol) in one table.
func CompareTable(reports ...*Report) (*Comparison, error) {
	if len(reports) == 0 {
		return nil, errors.New("comparing protocols: no reports given")
	}
	first := reports[0]
	c := &Comparison{Scenario: first.Meta.Scenario, Seed: first.Meta.Seed}
	seen := map[string]string{}
	for i, r := range reports {
		if r == nil {
			return nil, fmt.Errorf("comparing protocols: report %d is missing", i+1)
		}
		if r.Meta.Scenario != first.Meta.Scenario {
			return nil, fmt.Errorf("comparing protocols: report %d is of scenario %q, report 1 of %q; compare runs of one scenario", i+1, r.Meta.Scenario, first.Meta.Scenario)
		}
		c.Duration = max(c.Duration, r.Meta.Duration)
		for j := range r.Summary.Protocols {
			a := &r.Summary.Protocols[j]
			if run, dup := seen[a.Protocol]; dup {
				return nil, fmt.Errorf("comparing protocols: %s appears in run %s and in run %s; compare each protocol once", a.Protocol, run, r.Meta.RunID)
			}
			seen[a.Protocol] = r.Meta.RunID
			c.Rows = append(c.Rows, compareRow(r, a))
		}
	}
	slices.SortStableFunc(c.Rows, func(x, y CompareRow) int { return cmpProtocol(x.Protocol, y.Protocol) })
	return c, nil
}

func compareRow(r *Report, a *Aggregate) CompareRow {
	l := &a.Projected.BytesPerDeviceDay
	row := CompareRow{
		Protocol: a.Protocol, RunID: r.Meta.RunID, Devices: a.Devices,
		PerDeviceDay: LayerValues{Payload: l.Payload.Avg, Protocol: l.Protocol.Avg, TLS: l.TLS.Avg, IP: l.IP.Avg},
		ConnectBytes: a.Projected.ConnectIPPerConn, D2CP95: math.NaN(),
		IPBytesPerMonth: a.Projected.IPBytesPerMonth.Avg, Budget: a.Budget, Verdict: budgetVerdict(a),
	}
	top := slices.Clone(a.Projected.Classes)
	slices.SortStableFunc(top, func(x, y ClassBytes) int {
		switch {
		case x.PerDeviceDay.IP > y.PerDeviceDay.IP:
			return -1
		case x.PerDeviceDay.IP < y.PerDeviceDay.IP:
			return 1
		}
		return 0
	})
	for _, cb := range top {
		if len(row.TopClasses) == 3 || cb.PerDeviceDay.IP <= 0 {
			break
		}
		row.TopClasses = append(row.TopClasses, cb)
	}
	if s := latencyOf(a, "d2c"); s != nil {
		row.D2CP95 = s.P95
	}
	if e := a.Energy; e != nil {
		row.MAhPerDay, row.BatteryLifeDays = e.MAhPerDay.Avg, e.BatteryLifeDays
	}
	return row
}

// budgetVerdict is the comparison's budget column: the plan and whether the
// protocol's devices fit it.
func budgetVerdict(a *Aggregate) string {
	b := a.Budget
	if b == nil {
		return "no data plan"
	}
	plan := planText(b)
	if b.OverBudget > 0 {
		return fmt.Sprintf("OVER %s: %d of %d devices (max %s)", plan, b.OverBudget, b.Devices, fmtPct(b.Use.Max))
	}
	return fmt.Sprintf("within %s (max %s)", plan, fmtPct(b.Use.Max))
}

func (row *CompareRow) topText() string {
	parts := make([]string, len(row.TopClasses))
	for i, c := range row.TopClasses {
		parts[i] = c.Class + " " + fmtPct(c.IPShare)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func (c *Comparison) view() view {
	v := view{id: "compare", title: "Protocols compared",
		head: []string{"protocol", "devices", "payload", "protocol", "TLS", "IP", "top operations (share of IP)", "connect bytes", "d2c p95", "mAh/day", "battery life", "IP/month", "budget"}}
	v.numeric = []bool{false, true, true, true, true, true, false, true, true, true, true, true, false}
	for i := range c.Rows {
		r := &c.Rows[i]
		connect, energy := "-", "-"
		if r.ConnectBytes > 0 {
			connect = fmtBytes(r.ConnectBytes)
		}
		if r.MAhPerDay > 0 {
			energy = fmtNum(round3(r.MAhPerDay))
		}
		v.add(r.Protocol, itoa(r.Devices), fmtBytes(r.PerDeviceDay.Payload), fmtBytes(r.PerDeviceDay.Protocol), fmtBytes(r.PerDeviceDay.TLS),
			fmtBytes(r.PerDeviceDay.IP), r.topText(), connect, fmtMS(r.D2CP95), energy, fmtDays(r.BatteryLifeDays), fmtBytes(r.IPBytesPerMonth), r.Verdict)
	}
	return v
}

func (c *Comparison) note() string {
	return fmt.Sprintf("Bytes are per device per day and, for IP/month, per 30-day month: projections from runs measured over %s. "+
		"Connect bytes are the IP bytes of setting up one connection; battery life is at the average draw.", fmtDuration(c.Duration))
}

// WriteText writes the comparison as one table with aligned columns.
func (c *Comparison) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s — protocols compared (seed %d)\n%s\n\n", c.Scenario, c.Seed, c.note())
	v := c.view()
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(v.head, "\t"))
	for _, row := range v.rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if line := c.cheapest(); line != "" {
		fmt.Fprintf(bw, "\n%s\n", line)
	}
	return bw.Flush()
}

// cheapest names the protocols with the fewest and the most IP bytes.
func (c *Comparison) cheapest() string {
	if len(c.Rows) < 2 {
		return ""
	}
	lo, hi := c.Rows[0], c.Rows[0]
	for _, r := range c.Rows[1:] {
		if r.PerDeviceDay.IP < lo.PerDeviceDay.IP {
			lo = r
		}
		if r.PerDeviceDay.IP > hi.PerDeviceDay.IP {
			hi = r
		}
	}
	if lo.PerDeviceDay.IP <= 0 {
		return fmt.Sprintf("Most IP bytes per device-day: %s (%s).", hi.Protocol, fmtBytes(hi.PerDeviceDay.IP))
	}
	return fmt.Sprintf("Fewest IP bytes per device-day: %s (%s); most: %s (%s, %.1f×).", lo.Protocol, fmtBytes(lo.PerDeviceDay.IP),
		hi.Protocol, fmtBytes(hi.PerDeviceDay.IP), hi.PerDeviceDay.IP/lo.PerDeviceDay.IP)
}

// WriteHTML writes the comparison as a self-contained page: the table and
// the charts of bytes by layer and by operation.
func (c *Comparison) WriteHTML(w io.Writer) error {
	// The charts are drawn from a summary holding one aggregate per row.
	r := &Report{}
	for i := range c.Rows {
		row := &c.Rows[i]
		a := Aggregate{Protocol: row.Protocol, Devices: row.Devices}
		a.Projected.BytesPerDeviceDay = LayerStats{Payload: Stat{Avg: row.PerDeviceDay.Payload}, Protocol: Stat{Avg: row.PerDeviceDay.Protocol},
			TLS: Stat{Avg: row.PerDeviceDay.TLS}, IP: Stat{Avg: row.PerDeviceDay.IP}}
		a.Projected.Classes = row.TopClasses
		r.Summary.Protocols = append(r.Summary.Protocols, a)
		r.Summary.Groups = append(r.Summary.Groups, a)
	}
	v := c.view()
	p := htmlPage{
		Title:    c.Scenario + " — protocols compared",
		Heading:  c.Scenario,
		Subtitle: "protocols compared",
		Lead:     "The same fleet behaviour, run once per protocol.",
		Facts:    [][2]string{{"seed", u(c.Seed)}, {"measured", fmtDuration(c.Duration)}, {"protocols", itoa(len(c.Rows))}},
		Notes:    []string{c.note()},
		Verdict:  c.cheapest(),
		ChartIDs: []string{ChartBytes, ChartClasses},
		Sections: []htmlSection{
			{ID: "compare", Title: v.title, Table: tableOf(v)},
			{ID: "bytes", Title: "Bytes per device per day by layer (projected)", Chart: r.bytesChart()},
			{ID: "classes", Title: "IP bytes per device per day by operation (projected; top three per protocol)", Chart: r.classesChart()},
		},
	}
	if p.Verdict == "" {
		p.Verdict = "One protocol: nothing to compare it with."
	}
	return htmlTemplate.Execute(w, p)
}
