package reports

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// The charts are small hand-written SVGs inlined in the HTML: no script, no
// font and no file is fetched, text stays text, and the same report gives the
// same bytes (golden-tested).

// palette is Okabe and Ito's, which colour-blind readers can tell apart.
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999", "#000000"}

const (
	chartWidth  = 960
	labelWidth  = 220 // left margin for row labels
	rightMargin = 90
	rowHeight   = 26
	legendH     = 28
)

type svg struct{ b strings.Builder }

func (s *svg) f(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// num writes a coordinate with at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

func (s *svg) open(id, title string, h int) {
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="chart" role="img" aria-labelledby="%s-title" viewBox="0 0 %d %d" width="%d" height="%d" font-family="system-ui, sans-serif" font-size="12">`,
		id, id, chartWidth, h, chartWidth, h)
	s.f(`<title id="%s-title">%s</title>`, id, esc(title))
}

func (s *svg) close() string {
	s.b.WriteString("</svg>")
	return s.b.String()
}

func (s *svg) legend(y int, names []string, colors []string) {
	x := float64(labelWidth)
	for i, n := range names {
		s.f(`<rect x="%s" y="%d" width="12" height="12" fill="%s"/>`, num(x), y, colors[i%len(colors)])
		s.f(`<text x="%s" y="%d">%s</text>`, num(x+16), y+10, esc(n))
		x += 16 + 7.2*float64(len(n)) + 18
	}
}

// noData draws the chart's frame with a message instead of data, so that a
// report without, say, latencies still shows where they would be.
func noData(id, title, msg string) string {
	var s svg
	s.open(id, title, 60)
	s.f(`<text class="no-data" x="%d" y="34" fill="#666">%s</text>`, chartWidth/2, esc(msg))
	return s.close()
}

// niceMax picks an axis over [0, v]: a step of 1, 2, 2.5 or 5 times a power
// of ten giving about four ticks, and the top as a whole number of steps.
func niceMax(v float64) (float64, float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0.25
	}
	raw := v / 4
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * p
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	return math.Ceil(v/step-1e-9) * step, step
}

// niceBytes is niceMax in 1024-based units, so byte axes read 256KB, 512KB.
func niceBytes(v float64) (float64, float64) {
	unit := 1.0
	for v/unit >= 1024 {
		unit *= 1024
	}
	top, step := niceMax(v / unit)
	return top * unit, step * unit
}

// xAxis draws vertical grid lines and tick labels over [0, top].
func (s *svg) xAxis(top, step float64, y0, y1 int, format func(float64) string) {
	plotW := float64(chartWidth - labelWidth - rightMargin)
	for v := 0.0; v <= top*1.0000001; v += step {
		x := float64(labelWidth) + v/top*plotW
		s.f(`<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#ddd"/>`, num(x), y0, num(x), y1)
		s.f(`<text x="%s" y="%d" text-anchor="middle" fill="#555">%s</text>`, num(x), y1+14, esc(format(v)))
	}
}

// bar is one segment of a horizontal bar.
type bar struct {
	value float64
	color string
	tip   string
}

// hbarRow is one labelled row of bars: segments stack left to right.
type hbarRow struct {
	label string
	segs  []bar
	note  string // written after the bar
}

// stackedBars draws one horizontal stacked bar per row.
func stackedBars(id, title string, rows []hbarRow, legend, colors []string, format func(float64) string, axis func(float64) (float64, float64)) string {
	if len(rows) == 0 {
		return noData(id, title, "no data")
	}
	top := 0.0
	for _, r := range rows {
		t := 0.0
		for _, sg := range r.segs {
			t += math.Max(sg.value, 0)
		}
		top = math.Max(top, t)
	}
	top, step := axis(top)
	h := legendH + len(rows)*rowHeight + 30
	var s svg
	s.open(id, title, h)
	s.legend(6, legend, colors)
	y0, y1 := legendH, legendH+len(rows)*rowHeight
	s.xAxis(top, step, y0, y1, format)
	plotW := float64(chartWidth - labelWidth - rightMargin)
	for i, r := range rows {
		y := float64(y0 + i*rowHeight + 4)
		s.f(`<text x="%d" y="%s" text-anchor="end">%s</text>`, labelWidth-8, num(y+13), esc(r.label))
		x := float64(labelWidth)
		for _, sg := range r.segs {
			if sg.value <= 0 {
				continue
			}
			w := sg.value / top * plotW
			s.f(`<rect class="bar" x="%s" y="%s" width="%s" height="%d" fill="%s"><title>%s</title></rect>`,
				num(x), num(y), num(w), rowHeight-8, sg.color, esc(sg.tip))
			x += w
		}
		if r.note != "" {
			s.f(`<text x="%s" y="%s" fill="#333">%s</text>`, num(x+6), num(y+13), esc(r.note))
		}
	}
	return s.close()
}

// groupedRow is one labelled row of side-by-side bars (one per series).
type groupedRow struct {
	label  string
	values []float64 // NaN: no bar
	tips   []string
}

// groupedBars draws, per row, one thin bar per series.
func groupedBars(id, title string, rows []groupedRow, legend []string, format func(float64) string) string {
	if len(rows) == 0 {
		return noData(id, title, "no latencies were recorded")
	}
	top := 0.0
	for _, r := range rows {
		for _, v := range r.values {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	top, step := niceMax(top)
	n := len(legend)
	rowH := 8*n + 10
	h := legendH + len(rows)*rowH + 30
	var s svg
	s.open(id, title, h)
	s.legend(6, legend, palette)
	y0, y1 := legendH, legendH+len(rows)*rowH
	s.xAxis(top, step, y0, y1, format)
	plotW := float64(chartWidth - labelWidth - rightMargin)
	for i, r := range rows {
		y := float64(y0 + i*rowH + 5)
		s.f(`<text x="%d" y="%s" text-anchor="end">%s</text>`, labelWidth-8, num(y+float64(4*n)+4), esc(r.label))
		for j, v := range r.values {
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			s.f(`<rect class="bar" x="%d" y="%s" width="%s" height="7" fill="%s"><title>%s</title></rect>`,
				labelWidth, num(y+float64(8*j)), num(v/top*plotW), palette[j%len(palette)], esc(r.tips[j]))
		}
		if last := r.values[n-1]; !math.IsNaN(last) {
			s.f(`<text x="%s" y="%s" fill="#333">%s</text>`, num(float64(labelWidth)+last/top*plotW+6), num(y+float64(8*n)-1), esc(format(last)))
		}
	}
	return s.close()
}

// budgetRow is a group's use of its plan: the average and the largest
// device's use, as fractions of the plan.
type budgetRow struct {
	label    string
	avg, max float64
	hasPlan  bool
	note     string
	over     bool
}

// budgetBars draws each group's average use as a bar and its largest device
// as a tick, against the plan drawn as a line at 100 %.
func budgetBars(id, title string, rows []budgetRow) string {
	if len(rows) == 0 {
		return noData(id, title, "no devices")
	}
	top := 1.25
	for _, r := range rows {
		if r.hasPlan {
			top = math.Max(top, r.max*1.1)
		}
	}
	top, step := niceMax(top)
	h := legendH + len(rows)*rowHeight + 30
	var s svg
	s.open(id, title, h)
	s.legend(6, []string{"average device, within plan", "average device, over plan", "largest device"}, []string{"#0072B2", "#D55E00", "#000000"})
	y0, y1 := legendH, legendH+len(rows)*rowHeight
	s.xAxis(top, step, y0, y1, fmtPct)
	plotW := float64(chartWidth - labelWidth - rightMargin)
	planX := float64(labelWidth) + 1/top*plotW
	for i, r := range rows {
		y := float64(y0 + i*rowHeight + 4)
		s.f(`<text x="%d" y="%s" text-anchor="end">%s</text>`, labelWidth-8, num(y+13), esc(r.label))
		if !r.hasPlan {
			s.f(`<text x="%d" y="%s" fill="#666">%s</text>`, labelWidth+6, num(y+13), esc(r.note))
			continue
		}
		color := "#0072B2"
		if r.avg > 1 {
			color = "#D55E00"
		}
		s.f(`<rect class="bar" x="%d" y="%s" width="%s" height="%d" fill="%s"><title>%s</title></rect>`,
			labelWidth, num(y), num(r.avg/top*plotW), rowHeight-8, color, esc("average "+fmtPct(r.avg)+" of plan"))
		mx := float64(labelWidth) + r.max/top*plotW
		s.f(`<line class="max" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#000" stroke-width="2"><title>%s</title></line>`,
			num(mx), num(y-2), num(mx), num(y+float64(rowHeight-6)), esc("largest device "+fmtPct(r.max)+" of plan"))
		s.f(`<line class="plan" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#444" stroke-width="1.5" stroke-dasharray="5 3"/>`,
			num(planX), num(y-4), num(planX), num(y+float64(rowHeight-4)))
		fill := "#333"
		if r.over {
			fill = "#D55E00"
		}
		// The note goes right of the bar, or inside it when it would run
		// off the chart.
		avgEnd := float64(labelWidth) + r.avg/top*plotW
		x, anchor := math.Max(mx, avgEnd)+6, "start"
		if w := textWidth(r.note); x+w > chartWidth-4 {
			x, anchor = chartWidth-4, "end"
			if avgEnd-float64(labelWidth) > w+12 {
				x, fill = avgEnd-6, "#fff"
			}
		}
		s.f(`<text x="%s" y="%s" fill="%s" text-anchor="%s">%s</text>`, num(x), num(y+13), fill, anchor, esc(r.note))
	}
	s.f(`<text x="%s" y="%d" text-anchor="middle" fill="#444">plan</text>`, num(planX), y1+26)
	return s.close()
}

// textWidth estimates the width of text at the charts' 12px font.
func textWidth(s string) float64 { return 6.8 * float64(len([]rune(s))) }

// lineSeries is one line of a line chart.
type lineSeries struct {
	name  string
	ys    []float64
	width float64
}

// lineChart draws series over x (seconds from the start).
func lineChart(id, title string, xs []float64, series []lineSeries, yFormat func(float64) string) string {
	if len(xs) == 0 {
		return noData(id, title, "no samples were taken")
	}
	top := 0.0
	for _, l := range series {
		for _, y := range l.ys {
			top = math.Max(top, y)
		}
	}
	top, step := niceMax(top)
	xTop := xs[len(xs)-1]
	if xTop <= 0 {
		xTop = 1
	}
	const plotH = 240
	left, right := 70, chartWidth-30
	y0 := legendH + 10
	h := y0 + plotH + 40
	var s svg
	s.open(id, title, h)
	names := make([]string, len(series))
	for i, l := range series {
		names[i] = l.name
	}
	s.legendAt(left, 6, names)
	yOf := func(v float64) float64 { return float64(y0+plotH) - v/top*plotH }
	xOf := func(v float64) float64 { return float64(left) + v/xTop*float64(right-left) }
	for v := 0.0; v <= top*1.0000001; v += step {
		s.f(`<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#ddd"/>`, left, num(yOf(v)), right, num(yOf(v)))
		s.f(`<text x="%d" y="%s" text-anchor="end" fill="#555">%s</text>`, left-6, num(yOf(v)+4), esc(yFormat(v)))
	}
	xStep := niceStep(xTop)
	for v := 0.0; v <= xTop*1.0000001; v += xStep {
		s.f(`<text x="%s" y="%d" text-anchor="middle" fill="#555">%s</text>`, num(xOf(v)), y0+plotH+16, esc(fmtSeconds(v)))
	}
	s.f(`<text x="%d" y="%d" text-anchor="middle" fill="#555">time since start</text>`, (left+right)/2, y0+plotH+34)
	for i, l := range series {
		var pts []string
		for j, y := range l.ys {
			pts = append(pts, num(xOf(xs[j]))+","+num(yOf(y)))
		}
		w := l.width
		if w == 0 {
			w = 1.5
		}
		s.f(`<polyline class="line" fill="none" stroke="%s" stroke-width="%s" points="%s"><title>%s</title></polyline>`,
			palette[i%len(palette)], num(w), strings.Join(pts, " "), esc(l.name))
	}
	return s.close()
}

func (s *svg) legendAt(x, y int, names []string) {
	fx := float64(x)
	for i, n := range names {
		s.f(`<rect x="%s" y="%d" width="12" height="12" fill="%s"/>`, num(fx), y, palette[i%len(palette)])
		s.f(`<text x="%s" y="%d">%s</text>`, num(fx+16), y+10, esc(n))
		fx += 16 + 7.2*float64(len(n)) + 18
	}
}

// niceStep picks a time-axis step giving four to ten ticks.
func niceStep(top float64) float64 {
	for _, st := range []float64{1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400} {
		if top/st <= 10 {
			return st
		}
	}
	return top / 8
}

func fmtSeconds(v float64) string {
	switch {
	case v >= 3600 && math.Mod(v, 3600) == 0:
		return strconv.FormatFloat(v/3600, 'f', -1, 64) + "h"
	case v >= 60 && math.Mod(v, 60) == 0:
		return strconv.FormatFloat(v/60, 'f', -1, 64) + "m"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "s"
}
