package reports

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/catmsim/catmsim/network"
)

// ReportDiff is what changed from run A to run B, group by group: bytes per
// device-day per layer, latency percentiles, counts, and threshold verdicts.
// It is what a CI job compares against a baseline.
type ReportDiff struct {
	A, B       RunRef
	Bytes      []ByteDelta
	Latency    []LatencyDelta
	Counts     []CountDelta
	Thresholds []ThresholdChange
}

// RunRef names one side of a diff.
type RunRef struct {
	RunID    string
	Scenario string
	Seed     uint64
	Started  time.Time
	Duration time.Duration
	Devices  int
}

// Presence says which runs a row of a diff is in.
type Presence uint8

const (
	InBoth Presence = iota
	OnlyA
	OnlyB
)

// ByteDelta is one group's average bytes per device-day at one layer
// (projections), in A and in B.
type ByteDelta struct {
	Group, Protocol, Layer string
	A, B                   float64
	In                     Presence
}

// Change is B − A.
func (d ByteDelta) Change() float64 { return d.B - d.A }

// Pct is the change as a percentage of A: +Inf when A is zero and B is not.
func (d ByteDelta) Pct() float64 { return pct(d.A, d.B) }

func pct(a, b float64) float64 {
	switch {
	case a == b:
		return 0
	case a == 0:
		return math.Inf(1)
	}
	return (b - a) / a * 100
}

// LatencyDelta is one latency percentile of a group, in milliseconds.
type LatencyDelta struct {
	Group, Protocol, Latency, Percentile string
	A, B                                 float64
	In                                   Presence
}

// CountDelta is one counter of a group.
type CountDelta struct {
	Group, Protocol, Count string
	A, B                   uint64
	In                     Presence
}

// ThresholdChange is one threshold's verdict in A and in B: "pass", "fail",
// "no data", or "absent" when the run did not set it.
type ThresholdChange struct {
	Threshold string
	A, B      string
	// ObservedA and ObservedB are the observations as written ("" when none).
	ObservedA, ObservedB string
}

// Diff compares two reports, usually of the same scenario: a baseline A and
// a new run B.
func Diff(a, b *Report) ReportDiff {
	d := ReportDiff{A: refOf(a), B: refOf(b)}
	type key struct{ group, protocol string }
	ga, gb := map[key]*Aggregate{}, map[key]*Aggregate{}
	var order []key
	for i := range a.Summary.Groups {
		g := &a.Summary.Groups[i]
		k := key{g.Group, g.Protocol}
		ga[k] = g
		order = append(order, k)
	}
	for i := range b.Summary.Groups {
		g := &b.Summary.Groups[i]
		k := key{g.Group, g.Protocol}
		gb[k] = g
		if ga[k] == nil {
			order = append(order, k)
		}
	}
	for _, k := range order {
		x, y := ga[k], gb[k]
		in := InBoth
		switch {
		case x == nil:
			in, x = OnlyB, &Aggregate{}
		case y == nil:
			in, y = OnlyA, &Aggregate{}
		}
		for _, l := range network.Layers() {
			d.Bytes = append(d.Bytes, ByteDelta{Group: k.group, Protocol: k.protocol, Layer: l.String(),
				A: x.Projected.BytesPerDeviceDay.at(l).Avg, B: y.Projected.BytesPerDeviceDay.at(l).Avg, In: in})
		}
		for _, name := range latencyNames {
			la, lb := latencyOf(x, name), latencyOf(y, name)
			if la == nil && lb == nil {
				continue
			}
			lin := in
			if la == nil {
				lin, la = OnlyB, &LatencyStats{}
			} else if lb == nil {
				lin, lb = OnlyA, &LatencyStats{}
			}
			for _, p := range []struct {
				name string
				a, b float64
			}{{"p50", la.P50, lb.P50}, {"p95", la.P95, lb.P95}, {"p99", la.P99, lb.P99}} {
				d.Latency = append(d.Latency, LatencyDelta{Group: k.group, Protocol: k.protocol, Latency: name, Percentile: p.name, A: p.a, B: p.b, In: lin})
			}
		}
		for c, name := range countNames {
			d.Counts = append(d.Counts, CountDelta{Group: k.group, Protocol: k.protocol, Count: name, A: x.Counts[c], B: y.Counts[c], In: in})
		}
		oa, ob := overBudget(x), overBudget(y)
		d.Counts = append(d.Counts, CountDelta{Group: k.group, Protocol: k.protocol, Count: "devices_over_budget", A: oa, B: ob, In: in})
	}

	ta := map[string]ThresholdResult{}
	var names []string
	for _, t := range a.Thresholds {
		n := t.Threshold.Key().String() + " " + t.Threshold.Source
		ta[n] = t
		names = append(names, n)
	}
	tb := map[string]ThresholdResult{}
	for _, t := range b.Thresholds {
		n := t.Threshold.Key().String() + " " + t.Threshold.Source
		tb[n] = t
		if _, ok := ta[n]; !ok {
			names = append(names, n)
		}
	}
	for _, n := range names {
		x, okA := ta[n]
		y, okB := tb[n]
		c := ThresholdChange{Threshold: n, A: "absent", B: "absent"}
		if okA {
			c.A, c.ObservedA = verdictOf(x)
		}
		if okB {
			c.B, c.ObservedB = verdictOf(y)
		}
		d.Thresholds = append(d.Thresholds, c)
	}
	return d
}

func refOf(r *Report) RunRef {
	return RunRef{RunID: r.Meta.RunID, Scenario: r.Meta.Scenario, Seed: r.Meta.Seed, Started: r.Meta.Started, Duration: r.Meta.Duration, Devices: r.Summary.Devices}
}

func latencyOf(a *Aggregate, name string) *LatencyStats {
	for i := range a.Latency {
		if a.Latency[i].Latency == name {
			return &a.Latency[i]
		}
	}
	return nil
}

func overBudget(a *Aggregate) uint64 {
	if a.Budget == nil {
		return 0
	}
	return uint64(a.Budget.OverBudget)
}

func verdictOf(t ThresholdResult) (string, string) {
	switch {
	case t.NoData:
		return "no data", ""
	case t.Pass:
		return "pass", observedText(t)
	}
	return "fail", observedText(t)
}

func observedText(t ThresholdResult) string {
	if m, ok := lookupMetric(t.Threshold.Metric); ok {
		return formatValue(m, t.Threshold.Agg, t.Observed)
	}
	return fmtNum(t.Observed)
}

// Increases lists the byte rows present in both runs that grew by more than
// pct percent.
func (d ReportDiff) Increases(pct float64) []ByteDelta {
	var out []ByteDelta
	for _, b := range d.Bytes {
		if b.In == InBoth && b.Pct() > pct {
			out = append(out, b)
		}
	}
	return out
}

// WriteText writes the diff for a terminal or a CI log: every byte row,
// latency percentiles, the counts that changed, and threshold verdicts.
func (d ReportDiff) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Report diff: %s\n", d.B.Scenario)
	for _, s := range []struct {
		name string
		r    RunRef
	}{{"a", d.A}, {"b", d.B}} {
		fmt.Fprintf(bw, "  %s: run %s, scenario %s, seed %d, %d devices, measured %s from %s\n", s.name, s.r.RunID, s.r.Scenario, s.r.Seed,
			s.r.Devices, fmtDuration(s.r.Duration), s.r.Started.UTC().Format(time.RFC3339))
	}
	if d.A.Scenario != d.B.Scenario {
		fmt.Fprintf(bw, "  note: the runs are of different scenarios\n")
	}

	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(bw, "\nBytes per device per day, average (projected)\n")
	fmt.Fprintf(tw, "group\tprotocol\tlayer\ta\tb\tchange\t\n")
	for _, b := range d.Bytes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", b.Group, b.Protocol, b.Layer, side(b.In, OnlyB, fmtBytes(b.A)), side(b.In, OnlyA, fmtBytes(b.B)), byteChange(b))
	}
	tw.Flush()

	if len(d.Latency) > 0 {
		fmt.Fprintf(bw, "\nLatency\n")
		tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "group\tprotocol\toperation\tpercentile\ta\tb\tchange\t\n")
		for _, l := range d.Latency {
			change := "-"
			if l.In == InBoth && l.A == l.B {
				change = "0"
			} else if l.In == InBoth {
				change = signed(fmtMS(math.Abs(l.B-l.A)), l.B-l.A) + pctText(pct(l.A, l.B))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Group, l.Protocol, l.Latency, l.Percentile, side(l.In, OnlyB, fmtMS(l.A)), side(l.In, OnlyA, fmtMS(l.B)), change)
		}
		tw.Flush()
	}

	fmt.Fprintf(bw, "\nCounts that changed\n")
	tw = tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	changed := 0
	for _, c := range d.Counts {
		if c.A == c.B && c.In == InBoth {
			continue
		}
		if changed == 0 {
			fmt.Fprintf(tw, "group\tprotocol\tcount\ta\tb\tchange\t\n")
		}
		changed++
		diff := float64(c.B) - float64(c.A)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Group, c.Protocol, c.Count, side(c.In, OnlyB, u(c.A)), side(c.In, OnlyA, u(c.B)), signed(fmtNum(math.Abs(diff)), diff))
	}
	tw.Flush()
	if changed == 0 {
		fmt.Fprintf(bw, "  (none)\n")
	}

	fmt.Fprintf(bw, "\nThresholds\n")
	if len(d.Thresholds) == 0 {
		fmt.Fprintf(bw, "  (none set)\n")
	}
	for _, t := range d.Thresholds {
		mark := "  "
		if t.A != t.B {
			mark = "! "
		}
		fmt.Fprintf(bw, "%s%s: %s → %s", mark, t.Threshold, strings.ToUpper(t.A), strings.ToUpper(t.B))
		if t.ObservedA != "" || t.ObservedB != "" {
			fmt.Fprintf(bw, " (observed %s → %s)", dash(t.ObservedA), dash(t.ObservedB))
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func side(in, missing Presence, s string) string {
	if in == missing {
		return "-"
	}
	return s
}

func byteChange(b ByteDelta) string {
	switch b.In {
	case OnlyA:
		return "gone"
	case OnlyB:
		return "new"
	}
	if b.A == b.B {
		return "0"
	}
	return signed(fmtBytes(math.Abs(b.Change())), b.Change()) + pctText(b.Pct())
}

func signed(s string, v float64) string {
	if v < 0 {
		return "-" + s
	}
	return "+" + s
}

func pctText(p float64) string {
	switch {
	case math.IsInf(p, 1):
		return " (from 0)"
	case p == 0:
		return ""
	}
	return fmt.Sprintf(" (%+.1f%%)", p)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
