package reports

import (
	_ "embed"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/catmsim/catmsim/metrics"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// Chart ids in report.html; the browser test looks for each.
const (
	ChartBytes    = "chart-bytes"
	ChartClasses  = "chart-classes"
	ChartBudget   = "chart-budget"
	ChartLatency  = "chart-latency"
	ChartTimeline = "chart-timeline"
)

// ChartIDs lists the charts report.html holds.
func ChartIDs() []string {
	return []string{ChartBytes, ChartClasses, ChartBudget, ChartLatency, ChartTimeline}
}

type htmlPage struct {
	Title    string
	Heading  string
	Subtitle string
	Lead     string
	Facts    [][2]string
	Notes    []string
	Verdict  string
	Failed   bool
	Sections []htmlSection
	ChartIDs []string
}

type htmlSection struct {
	ID, Title, Note string
	Chart           template.HTML
	Table           *htmlTable
	After           []string
}

type htmlTable struct {
	Head []htmlCell
	Rows [][]htmlCell
}

type htmlCell struct {
	Text  string
	Class string
}

func tableOf(v view) *htmlTable {
	if len(v.rows) == 0 {
		return nil
	}
	t := &htmlTable{}
	class := func(i int, text string) string {
		var cs []string
		if i < len(v.numeric) && v.numeric[i] {
			cs = append(cs, "num")
		}
		if strings.HasPrefix(text, "FAIL") || strings.HasPrefix(text, "OVER") {
			cs = append(cs, "bad")
		}
		return strings.Join(cs, " ")
	}
	for i, h := range v.head {
		t.Head = append(t.Head, htmlCell{h, class(i, "")})
	}
	for _, row := range v.rows {
		cells := make([]htmlCell, len(row))
		for i, c := range row {
			cells[i] = htmlCell{c, class(i, c)}
		}
		t.Rows = append(t.Rows, cells)
	}
	return t
}

// WriteHTML writes report.html: one self-contained page — charts inlined as
// SVG, styles inline, a few lines of script that only check the charts
// rendered — that works offline and from a CI artifact.
func WriteHTML(w io.Writer, r *Report) error {
	m := &r.Meta
	p := htmlPage{
		Title:    m.Scenario + " — catmsim report",
		Heading:  m.Scenario,
		Subtitle: "catmsim report",
		Lead:     m.Description,
		Facts: [][2]string{
			{"run", m.RunID}, {"seed", u(m.Seed)}, {"shards", shardText(m)},
			{"started", m.Started.UTC().Format(time.RFC3339)}, {"measured", fmtDuration(m.Duration)},
			{"target", m.Target}, {"devices", itoa(r.Summary.Devices)},
		},
		Notes:    []string{capitalise(r.Summary.Projection) + "."},
		Verdict:  capitalise(r.headline()),
		Failed:   r.Summary.ThresholdsBreached > 0,
		ChartIDs: ChartIDs(),
	}
	if m.Projection {
		p.Notes = append(p.Notes, "This run is itself a projection: per-operation costs measured in a short real run, replayed over virtual time.")
	}
	views := map[string]view{}
	for _, v := range r.views() {
		views[v.id] = v
	}
	section := func(id string, chart template.HTML) htmlSection {
		v := views[id]
		return htmlSection{ID: id, Title: v.title, Note: v.note, Chart: chart, Table: tableOf(v), After: v.after}
	}
	p.Sections = []htmlSection{
		section("bytes", r.bytesChart()),
		section("groups", ""),
		section("classes", r.classesChart()),
		section("budget", r.budgetChart()),
		section("latency", r.latencyChart()),
		{ID: "timeline", Title: "Devices over time", Note: "Devices by state, as sampled during the run.", Chart: r.timelineChart()},
		section("energy", ""),
		section("counts", ""),
		section("thresholds", ""),
	}
	return htmlTemplate.Execute(w, p)
}

// The charts' SVG is built from escaped text only (see svg.go), so it is
// marked safe for the template.

func (r *Report) bytesChart() template.HTML {
	legend := []string{"payload", "protocol framing", "TLS", "TCP/IP"}
	colors := []string{palette[2], palette[0], palette[1], palette[7]}
	var rows []hbarRow
	for i := range r.Summary.Protocols {
		a := &r.Summary.Protocols[i]
		l := &a.Projected.BytesPerDeviceDay
		parts := []float64{l.Payload.Avg, l.Protocol.Avg - l.Payload.Avg, l.TLS.Avg - l.Protocol.Avg, l.IP.Avg - l.TLS.Avg}
		row := hbarRow{label: a.Protocol, note: fmtBytes(l.IP.Avg) + " IP"}
		for j, v := range parts {
			row.segs = append(row.segs, bar{value: v, color: colors[j], tip: legend[j] + ": " + fmtBytes(v) + " per device-day"})
		}
		rows = append(rows, row)
	}
	return template.HTML(stackedBars(ChartBytes, "Bytes per device per day by protocol and layer (projected)", rows, legend, colors, fmtBytes, niceBytes))
}

func (r *Report) classesChart() template.HTML {
	classes := r.classesUsed()
	var rows []hbarRow
	for i := range r.Summary.Protocols {
		a := &r.Summary.Protocols[i]
		row := hbarRow{label: a.Protocol, note: fmtBytes(a.Projected.BytesPerDeviceDay.IP.Avg) + " IP"}
		for j, name := range classes {
			for _, cb := range a.Projected.Classes {
				if cb.Class == name {
					row.segs = append(row.segs, bar{value: cb.PerDeviceDay.IP, color: palette[j%len(palette)],
						tip: name + ": " + fmtBytes(cb.PerDeviceDay.IP) + " per device-day (" + fmtPct(cb.IPShare) + ")"})
				}
			}
		}
		rows = append(rows, row)
	}
	return template.HTML(stackedBars(ChartClasses, "IP bytes per device per day by operation (projected)", rows, classes, palette, fmtBytes, niceBytes))
}

func (r *Report) budgetChart() template.HTML {
	var rows []budgetRow
	for i := range r.Summary.Groups {
		a := &r.Summary.Groups[i]
		row := budgetRow{label: groupLabel(a)}
		if b := a.Budget; b != nil {
			row.hasPlan, row.avg, row.max, row.over = true, b.Use.Avg, b.Use.Max, b.OverBudget > 0
			row.note = "avg " + fmtPct(b.Use.Avg) + " of " + planText(b)
			if b.OverBudget > 0 {
				row.note += " · " + itoa(b.OverBudget) + " of " + itoa(b.Devices) + " over"
			}
		} else {
			row.note = "no data plan: " + fmtBytes(a.Projected.IPBytesPerMonth.Avg) + " IP per device-month"
		}
		rows = append(rows, row)
	}
	return template.HTML(budgetBars(ChartBudget, "Budget burn per group: projected monthly use against the data plan", rows))
}

func (r *Report) latencyChart() template.HTML {
	legend := []string{"p50", "p90", "p95", "p99"}
	var rows []groupedRow
	for i := range r.Summary.Groups {
		a := &r.Summary.Groups[i]
		for _, l := range a.Latency {
			vals := []float64{l.P50, l.P90, l.P95, l.P99}
			tips := make([]string, len(vals))
			for j, v := range vals {
				tips[j] = legend[j] + " " + fmtMS(v) + " (" + itoa(int(l.Count)) + " samples)"
			}
			rows = append(rows, groupedRow{label: groupLabel(a) + " · " + l.Latency, values: vals, tips: tips})
		}
	}
	return template.HTML(groupedBars(ChartLatency, "Latency percentiles per group, protocol and operation", rows, legend, fmtMS))
}

func (r *Report) timelineChart() template.HTML {
	t := r.Timeline
	xs := make([]float64, len(t.Points))
	end := r.Meta.Duration.Seconds()
	for i := range t.Points {
		xs[i] = math.Min(float64(i+1)*t.Bucket.Seconds(), end)
	}
	var series []lineSeries
	for _, st := range metrics.States() {
		ys := make([]float64, len(t.Points))
		any := false
		for i, p := range t.Points {
			ys[i] = float64(p.States[st])
			any = any || ys[i] > 0
		}
		if !any && st != metrics.StateConnected {
			continue
		}
		w := 1.5
		if st == metrics.StateConnected {
			w = 3
		}
		series = append(series, lineSeries{name: st.String(), ys: ys, width: w})
	}
	return template.HTML(lineChart(ChartTimeline, "Devices connected over time", xs, series, fmtNum))
}

func itoa(n int) string { return u(uint64(max(n, 0))) }
