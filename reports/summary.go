package reports

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/catmsim/catmsim/internal/metricdef"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// Projection constants: a day is 24 hours, a month 30 days (as data plans count).
const (
	day          = 24 * time.Hour
	daysPerMonth = 30
)

// Summary is what the raw measurements add up to. Every per-day and per-month
// figure in it is a projection from the measured duration (see Projection).
type Summary struct {
	Devices int `json:"devices"`
	// Projection says how per-day and per-month figures were projected.
	Projection string      `json:"projection"`
	Totals     Totals      `json:"totals"`
	Protocols  []Aggregate `json:"protocols"`
	Groups     []Aggregate `json:"groups"`
	// ThresholdsBreached counts thresholds that failed, "no data" included.
	ThresholdsBreached int `json:"thresholds_breached"`
}

// Totals are the run's raw sums over every device.
type Totals struct {
	Bytes       LayerDirections   `json:"bytes"`
	Connections ConnTable         `json:"connections"`
	Counts      CountTable        `json:"counts"`
	Errors      map[string]uint64 `json:"errors,omitempty"`
}

// LayerDirections is bytes per layer, up and down.
type LayerDirections struct {
	Payload  UpDown `json:"payload"`
	Protocol UpDown `json:"protocol"`
	TLS      UpDown `json:"tls"`
	IP       UpDown `json:"ip"`
}

// UpDown is a pair of byte counts, device to cloud and cloud to device.
type UpDown struct {
	Up   uint64 `json:"up"`
	Down uint64 `json:"down"`
}

func (l *LayerDirections) at(layer network.Layer) *UpDown {
	return [...]*UpDown{&l.Payload, &l.Protocol, &l.TLS, &l.IP}[layer]
}

// Aggregate summarises the devices of one group on one protocol, or (Group
// empty) of every group on a protocol.
type Aggregate struct {
	Group    string `json:"group,omitempty"`
	Profile  string `json:"profile,omitempty"`
	Protocol string `json:"protocol"`
	Devices  int    `json:"devices"`
	// Projected holds the byte figures scaled to a device-day and a month.
	Projected Projected `json:"projected"`
	// Budget is present when some device of the aggregate has a data plan.
	Budget      *Budget           `json:"budget,omitempty"`
	Latency     []LatencyStats    `json:"latency,omitempty"`
	Energy      *EnergyStats      `json:"energy,omitempty"`
	Connections ConnTable         `json:"connections"`
	Counts      CountTable        `json:"counts"`
	Errors      map[string]uint64 `json:"errors,omitempty"`
}

// Projected is bytes per device-day and per device-month: projections.
type Projected struct {
	BytesPerDeviceDay LayerStats `json:"bytes_per_device_day"`
	// IPUpPerDeviceDay and IPDownPerDeviceDay split the IP average by direction.
	IPUpPerDeviceDay   float64 `json:"ip_up_per_device_day"`
	IPDownPerDeviceDay float64 `json:"ip_down_per_device_day"`
	// Classes are the operation classes that moved any bytes, in class order:
	// average bytes per device-day per layer, and the class's share of IP bytes.
	Classes          []ClassBytes `json:"classes"`
	IPBytesPerMonth  Stat         `json:"ip_bytes_per_device_month"`
	BilledPerMonth   Stat         `json:"billed_bytes_per_device_month"`
	ConnectIPPerConn float64      `json:"connect_ip_bytes_per_connection,omitempty"`
}

// LayerStats is a Stat per layer.
type LayerStats struct {
	Payload  Stat `json:"payload"`
	Protocol Stat `json:"protocol"`
	TLS      Stat `json:"tls"`
	IP       Stat `json:"ip"`
}

func (l *LayerStats) at(layer network.Layer) *Stat {
	return [...]*Stat{&l.Payload, &l.Protocol, &l.TLS, &l.IP}[layer]
}

// Stat summarises one value per device: mean, median, 95th percentile, most.
type Stat struct {
	Avg float64 `json:"avg"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// ClassBytes is an operation class's average bytes per device-day.
type ClassBytes struct {
	Class        string      `json:"class"`
	PerDeviceDay LayerValues `json:"per_device_day"`
	// IPShare is the class's fraction of the aggregate's IP bytes.
	IPShare float64 `json:"ip_share"`
}

// Budget compares projected monthly use with the data plan.
type Budget struct {
	// PlanBytesPerMonth is the plan when every device has the same one, else 0.
	PlanBytesPerMonth int64   `json:"plan_bytes_per_month"`
	Billing           Billing `json:"billing"`
	// Devices counts the devices with a plan; Use is over them only.
	Devices           int      `json:"devices"`
	Use               Stat     `json:"use"`
	OverBudget        int      `json:"over_budget"`
	OverBudgetDevices []string `json:"over_budget_devices,omitempty"`
}

// LatencyStats are one latency's percentiles, in milliseconds.
type LatencyStats struct {
	Latency string  `json:"latency"`
	Count   int64   `json:"count"`
	Mean    float64 `json:"mean_ms"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// EnergyStats are charge per device-day and battery life: projections.
type EnergyStats struct {
	Devices   int  `json:"devices"`
	MAhPerDay Stat `json:"mah_per_day"`
	// BatteryMAh is the capacity life is projected for when the devices share
	// one, else 0.
	BatteryMAh float64 `json:"battery_mah"`
	// BatteryLifeDays is the life at the aggregate's average draw;
	// BatteryLifeDaysMin the shortest of any device.
	BatteryLifeDays    float64 `json:"battery_life_days"`
	BatteryLifeDaysMin float64 `json:"battery_life_days_min"`
}

// summarize derives Projected for every device, the Summary and the threshold
// results from the raw measurements. Build and Merge both end here, so a
// merged report is summarised exactly as a single one.
func (r *Report) summarize() error {
	// Empty lists are written as [], never null, however the report was made.
	r.Devices, r.Latency, r.Timeline.Points = nonNil(r.Devices), nonNil(r.Latency), nonNil(r.Timeline.Points)
	r.Meta.Profiles, r.Meta.Thresholds = nonNil(r.Meta.Profiles), nonNil(r.Meta.Thresholds)
	profiles := map[string]*ProfileMeta{}
	for i := range r.Meta.Profiles {
		profiles[r.Meta.Profiles[i].Name] = &r.Meta.Profiles[i]
	}
	schedules := map[string]*Schedule{}
	for i := range r.Meta.Groups {
		schedules[r.Meta.Groups[i].Name] = &r.Meta.Groups[i].Schedule
	}
	for i := range r.Devices {
		project(&r.Devices[i], profiles[r.Devices[i].Profile], schedules[r.Devices[i].Group])
	}

	firmware := false
	for _, g := range r.Meta.Groups {
		firmware = firmware || g.Schedule.Firmware
	}
	s := Summary{Devices: len(r.Devices), Projection: projectionNote(r.Meta.Duration, len(r.Meta.Groups) > 0, firmware)}
	for i := range r.Devices {
		d := &r.Devices[i]
		for _, l := range network.Layers() {
			ud := s.Totals.Bytes.at(l)
			for c := range d.Bytes[l][network.Up] {
				ud.Up += d.Bytes[l][network.Up][c]
				ud.Down += d.Bytes[l][network.Down][c]
			}
		}
		for j := range d.Connections {
			s.Totals.Connections[j] += d.Connections[j]
		}
		for j := range d.Counts {
			s.Totals.Counts[j] += d.Counts[j]
		}
		s.Totals.Errors = addErrors(s.Totals.Errors, d.Errors)
	}

	hists, err := r.histograms()
	if err != nil {
		return err
	}
	type key struct{ group, protocol string }
	byGroup := map[key][]int{}
	byProto := map[string][]int{}
	for i := range r.Devices {
		d := &r.Devices[i]
		k := key{d.Group, d.Protocol}
		byGroup[k] = append(byGroup[k], i)
		byProto[d.Protocol] = append(byProto[d.Protocol], i)
	}
	// Groups with latencies but no devices still appear, so no measurement
	// is lost from the summary.
	for _, h := range r.Latency {
		k := key{h.Group, h.Protocol}
		if _, ok := byGroup[k]; !ok {
			byGroup[k] = nil
		}
		if _, ok := byProto[h.Protocol]; !ok {
			byProto[h.Protocol] = nil
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(byGroup), func(a, b key) int {
		if c := cmpString(a.group, b.group); c != 0 {
			return c
		}
		return cmpString(a.protocol, b.protocol)
	}) {
		a := r.aggregate(byGroup[k], profiles, func(g, p string) bool { return g == k.group && p == k.protocol }, hists)
		a.Group, a.Protocol = k.group, k.protocol
		s.Groups = append(s.Groups, a)
	}
	for _, p := range slices.SortedFunc(maps.Keys(byProto), cmpProtocol) {
		a := r.aggregate(byProto[p], profiles, func(_, q string) bool { return q == p }, hists)
		a.Protocol = p
		s.Protocols = append(s.Protocols, a)
	}
	r.Summary = s
	res, err := Evaluate(r)
	if err != nil {
		return err
	}
	r.Thresholds = res
	for _, t := range res {
		if !t.Pass {
			r.Summary.ThresholdsBreached++
		}
	}
	return nil
}

func projectionNote(d time.Duration, scheduled, firmware bool) string {
	if scheduled {
		timed := "keep-alives and reconnects scale with time"
		if firmware {
			timed = "keep-alives, reconnects and the telemetry and twin traffic of devices running firmware (whose pace the scenario does not state) scale with time"
		}
		return fmt.Sprintf("per-day and per-month figures are projections: the cost of each operation measured over %s, replayed at the scenario's schedule over 24 hours and 30-day months; %s, and each device's first connection is counted once a month", fmtDuration(d), timed)
	}
	return fmt.Sprintf("per-day and per-month figures are projections: bytes measured over %s, scaled to 24 hours and to 30-day months, except each device's first connection, which is counted once a month rather than scaled", fmtDuration(d))
}

// projectedCell is one cell of a device's byte table — a layer, direction and
// class — per day, as project computed it.
func projectedCell(d *DeviceRow, l network.Layer, dir network.Direction, c network.Class) float64 {
	if d.Projected.cells == nil {
		return 0
	}
	return d.Projected.cells[l][dir][c]
}

// projectCells fills d's projected bytes per day for every cell. The rules,
// in order:
//
//   - A device that opens connections as part of its work (HTTPS without
//     keep-alive, one per request) pays its measured cost per connection at
//     the schedule's rate of connections.
//   - Otherwise the set-up of a device's first connection is a one-off: a
//     device that stays connected pays it once, so it is counted once a
//     month, not scaled with time (scaling a two-minute run's connect to a
//     day would charge it 720 times). Connect bytes of further initial
//     connections recur and are treated as below.
//   - Where the scenario schedules an operation (telemetry, C2D and polls,
//     methods, twin updates, MQTT token renewals) and the run measured it,
//     its measured cost per operation is replayed at the scheduled rate: a
//     short run that caught one send of a device that sends every 5 minutes
//     projects 288 sends a day, not one per run length.
//   - Keep-alives, reconnects after drops and outages and unscheduled token
//     renewals scale with the measured time; so does everything when the
//     report has no schedule (but the first connection), and the telemetry
//     and twin traffic of devices that run firmware, whose pace only the
//     firmware knows (beyond what it sent from its init, below, one-off
//     reports are then over-projected from a short run: run several of its
//     intervals).
//   - The bytes of an operation class the run never performed (the link
//     attach and credit of a twin or method link that carried no request, a
//     subscription) are set-up, treated as the first connection's.
//   - The operations the device set apart as its start-up (DeviceRow.Setup:
//     what a firmware sent from its init) take their share of their class's
//     bytes, counted once a month; the rules above apply to the rest.
func projectCells(d *DeviceRow, s *Schedule) {
	var cells [numLayers][numDirections][numClasses]float64
	d.Projected.cells = &cells
	if d.Elapsed <= 0 {
		return
	}
	f := float64(day) / float64(d.Elapsed)
	var sched Schedule
	if s != nil {
		sched = *s
	}
	rate := func(c network.Class) (ops, perDay float64) {
		n := func(x metrics.Count) float64 { return float64(d.Counts.Get(x)) }
		switch c {
		case network.ClassTelemetry:
			return n(metrics.D2CSent), sched.Telemetry
		case network.ClassC2D:
			return n(metrics.C2DReceived) + n(metrics.C2DPolls), sched.C2D + sched.C2DPolls
		case network.ClassMethod:
			return n(metrics.MethodCalls) - n(metrics.MethodFailures), sched.Methods
		case network.ClassTwin:
			return n(metrics.TwinOps) + n(metrics.DesiredUpdates), sched.Twin
		case network.ClassTokenRenewal:
			return float64(d.Connections[network.ReasonTokenRenewal]), sched.TokenRenewals
		}
		return 0, 0
	}
	initial := float64(d.Connections[network.ReasonInitial])
	for l := range numLayers {
		for dir := range numDirections {
			for c := range numClasses {
				v := float64(d.Bytes[l][dir][c])
				cl := network.Class(c)
				ops, perDay := rate(cl)
				if share := setupShare(d, cl); share > 0 {
					cells[l][dir][c] = v * share / daysPerMonth
					v -= v * share
					ops -= ops * share
				}
				switch {
				case v == 0:
				case sched.Firmware && (cl == network.ClassTelemetry || cl == network.ClassTwin):
					cells[l][dir][c] += v * f
				case ops > 0 && perDay > 0:
					cells[l][dir][c] += v / ops * perDay
				case timeScaled(cl) || initial == 0 || s == nil && cl != network.ClassConnect:
					cells[l][dir][c] += v * f
				case sched.Connections > 0:
					// Connections are part of the work: replay each at the
					// schedule's rate.
					cells[l][dir][c] += v / initial * sched.Connections
				default:
					// Set-up bytes (connect, and the link and subscription
					// traffic of operations the run never performed): one
					// connection's worth is a one-off, the rest recurs.
					oneOff := v / initial
					cells[l][dir][c] += (v-oneOff)*f + oneOff/daysPerMonth
				}
			}
		}
	}
}

// setupShare is the fraction of a class's bytes that the device's start-up
// spent: its share of the class's operations.
func setupShare(d *DeviceRow, c network.Class) float64 {
	if d.Setup == nil {
		return 0
	}
	var setup, all uint64
	switch c {
	case network.ClassTelemetry:
		setup, all = d.Setup.Get(metrics.D2CSent), d.Counts.Get(metrics.D2CSent)
	case network.ClassTwin:
		setup, all = d.Setup.Get(metrics.TwinOps), d.Counts.Get(metrics.TwinOps)+d.Counts.Get(metrics.DesiredUpdates)
	}
	switch {
	case setup == 0:
		return 0
	case all == 0:
		return 1 // the start-up's operations were still in flight at the end
	}
	return min(1, float64(setup)/float64(all))
}

// timeScaled reports the classes whose bytes recur with time rather than with
// operations: keep-alives, reconnects after drops and outages, and token
// renewals (unless scheduled). Bytes no decoder could place are mostly those of
// a handshake still under way when the run ended, and count as set-up.
func timeScaled(c network.Class) bool {
	switch c {
	case network.ClassKeepAlive, network.ClassReconnect, network.ClassTokenRenewal:
		return true
	}
	return false
}

// projectedLayer is a device's bytes of one layer per day (see projectedCell).
func projectedLayer(d *DeviceRow, l network.Layer) float64 {
	var n float64
	for dir := network.Direction(0); dir < numDirections; dir++ {
		for c := network.Class(0); c < numClasses; c++ {
			n += projectedCell(d, l, dir, c)
		}
	}
	return n
}

// cmpProtocol orders protocols as the catalogue lists them, unknown ones last
// by name.
func cmpProtocol(a, b string) int {
	order := metricdef.TagValues(metricdef.TagProtocol)
	ia, ib := slices.Index(order, a), slices.Index(order, b)
	if ia < 0 {
		ia = len(order)
	}
	if ib < 0 {
		ib = len(order)
	}
	if ia != ib {
		return ia - ib
	}
	return cmpString(a, b)
}

func addErrors(to, from map[string]uint64) map[string]uint64 {
	for k, v := range from {
		if to == nil {
			to = map[string]uint64{}
		}
		to[k] += v
	}
	return to
}

const minMAhPerDay = 1e-9

// project fills d.Projected from d's raw counts; p may be nil (a profile the
// report's meta does not describe: no billing, default battery).
func project(d *DeviceRow, p *ProfileMeta, s *Schedule) {
	var pr DeviceProjection
	d.Projected = pr
	projectCells(d, s)
	pr.cells = d.Projected.cells
	if d.Elapsed > 0 {
		f := float64(day) / float64(d.Elapsed)
		pr.BytesPerDay = LayerValues{
			Payload:  projectedLayer(d, network.LayerPayload),
			Protocol: projectedLayer(d, network.LayerProtocol),
			TLS:      projectedLayer(d, network.LayerTLS),
			IP:       projectedLayer(d, network.LayerIP),
		}
		pr.IPBytesPerMonth = pr.BytesPerDay.IP * daysPerMonth
		var b Billing
		if p != nil {
			b = p.Billing
		}
		pr.BilledPerMonth = billed(pr.IPBytesPerMonth, billingUnits(b, d, f), b.Increment)
	}
	if plan := planOf(d, p); plan > 0 {
		pr.BudgetUse = pr.BilledPerMonth / float64(plan)
		pr.OverBudget = pr.BilledPerMonth > float64(plan)
	}
	if e := d.Energy; e != nil && e.Elapsed > 0 {
		// Below a nano-mAh a day a device draws nothing worth a battery life
		// (and its life would not be a finite number).
		if perDay := e.ChargeMAh * float64(day) / float64(e.Elapsed); perDay >= minMAhPerDay {
			pr.MAhPerDay = perDay
			pr.BatteryLifeDays = batteryOf(p) / perDay
		}
	}
	d.Projected = pr
}

func planOf(d *DeviceRow, p *ProfileMeta) int64 {
	if d.DataPlan > 0 {
		return d.DataPlan
	}
	if p != nil {
		return p.DataPlan
	}
	return 0
}

func batteryOf(p *ProfileMeta) float64 {
	if p != nil && p.BatteryMAh > 0 {
		return p.BatteryMAh
	}
	return DefaultBatteryMAh
}

// billingUnits is how many times a month the carrier rounds up. A data
// session is rated at least once a day (carriers close long sessions after 24
// hours), so per-session billing rounds 30 times a month; per-message billing
// rounds once per message the device sent or received, projected to the
// month; per-month billing once.
func billingUnits(b Billing, d *DeviceRow, perDay float64) float64 {
	switch b.Per {
	case PerSession:
		return daysPerMonth
	case PerMessage:
		n := d.Counts.Get(metrics.D2CSent) + d.Counts.Get(metrics.D2CFailed) + d.Counts.Get(metrics.C2DReceived) +
			d.Counts.Get(metrics.MethodCalls) + d.Counts.Get(metrics.TwinOps) + d.Counts.Get(metrics.DesiredUpdates)
		if u := float64(n) * perDay * daysPerMonth; u >= 1 {
			return u
		}
	}
	return 1
}

// billed is what a carrier bills for bytes used in units rounding units of
// increment each: every unit is rounded up to the increment (bytes spread
// evenly over the units).
func billed(bytes, units float64, increment int64) float64 {
	if bytes <= 0 {
		return 0
	}
	if increment <= 0 || units <= 0 {
		return math.Ceil(bytes)
	}
	inc := float64(increment)
	return units * math.Ceil(bytes/units/inc) * inc
}

// histograms imports every latency histogram once.
func (r *Report) histograms() ([]*hdrhistogram.Histogram, error) {
	out := make([]*hdrhistogram.Histogram, len(r.Latency))
	for i, l := range r.Latency {
		if !slices.Contains(latencyNames, l.Latency) {
			return nil, fmt.Errorf("unknown latency %q in group %s", l.Latency, l.Group)
		}
		h, err := importHist(l.Histogram)
		if err != nil {
			return nil, fmt.Errorf("latency %s of group %s on %s: %w", l.Latency, l.Group, l.Protocol, err)
		}
		out[i] = h
	}
	return out, nil
}

// mergedLatency merges the histograms of one latency over the groups match
// accepts; nil when none recorded anything.
func (r *Report) mergedLatency(hists []*hdrhistogram.Histogram, latency string, match func(group, protocol string) bool) *hdrhistogram.Histogram {
	var out *hdrhistogram.Histogram
	for i, l := range r.Latency {
		if l.Latency != latency || !match(l.Group, l.Protocol) {
			continue
		}
		if out == nil {
			out = hists[i].Clone()
			continue
		}
		out.Merge(hists[i])
	}
	return out
}

func (r *Report) aggregate(idx []int, profiles map[string]*ProfileMeta, match func(group, protocol string) bool, hists []*hdrhistogram.Histogram) Aggregate {
	a := Aggregate{Devices: len(idx)}
	vals := make([]float64, len(idx))
	devs := func(yield func(int, *DeviceRow) bool) {
		for n, i := range idx {
			if !yield(n, &r.Devices[i]) {
				return
			}
		}
	}
	profileSet := map[string]bool{}
	for _, d := range devs {
		profileSet[d.Profile] = true
		for j := range d.Connections {
			a.Connections[j] += d.Connections[j]
		}
		for j := range d.Counts {
			a.Counts[j] += d.Counts[j]
		}
		a.Errors = addErrors(a.Errors, d.Errors)
	}
	if len(profileSet) == 1 {
		for p := range profileSet {
			a.Profile = p
		}
	}

	// Per-device distributions cover the devices the run measured; one that
	// never arrived has no bytes per day, not zero of them.
	measured := func(yield func(int, *DeviceRow) bool) {
		n := 0
		for _, d := range devs {
			if d.Elapsed <= 0 {
				continue
			}
			if !yield(n, d) {
				return
			}
			n++
		}
	}
	nMeasured := 0
	for range measured {
		nMeasured++
	}
	vals = vals[:nMeasured]
	pj := &a.Projected
	for _, l := range network.Layers() {
		for n, d := range measured {
			vals[n] = layerValue(&d.Projected.BytesPerDay, l)
		}
		*pj.BytesPerDeviceDay.at(l) = statOf(vals)
	}
	var ipUp, ipDown, ipAll, connectIP float64
	classTotals := make([]LayerValues, numClasses)
	for _, d := range devs {
		if d.Elapsed <= 0 {
			continue
		}
		both := func(l network.Layer, c network.Class) float64 {
			return projectedCell(d, l, network.Up, c) + projectedCell(d, l, network.Down, c)
		}
		for c := range numClasses {
			cl := network.Class(c)
			ipUp += projectedCell(d, network.LayerIP, network.Up, cl)
			ipDown += projectedCell(d, network.LayerIP, network.Down, cl)
			ct := &classTotals[c]
			ct.Payload += both(network.LayerPayload, cl)
			ct.Protocol += both(network.LayerProtocol, cl)
			ct.TLS += both(network.LayerTLS, cl)
			ct.IP += both(network.LayerIP, cl)
		}
		for _, c := range connectClasses {
			connectIP += float64(d.Bytes.classTotal(network.LayerIP, int(c)))
		}
	}
	pj.Classes = []ClassBytes{}
	if n := float64(nMeasured); n > 0 {
		pj.IPUpPerDeviceDay, pj.IPDownPerDeviceDay = ipUp/n, ipDown/n
		ipAll = ipUp + ipDown
		for c, ct := range classTotals {
			if ct == (LayerValues{}) {
				continue
			}
			cb := ClassBytes{Class: classNames[c], PerDeviceDay: LayerValues{ct.Payload / n, ct.Protocol / n, ct.TLS / n, ct.IP / n}}
			if ipAll > 0 {
				cb.IPShare = ct.IP / ipAll
			}
			pj.Classes = append(pj.Classes, cb)
		}
	}
	// The dialer counts connections in the ledger; runs without one (or
	// reports of them) have the fleet's own count.
	conns := a.Connections.Total()
	if conns == 0 {
		conns = a.Counts.Get(metrics.Connects)
	}
	if conns > 0 {
		pj.ConnectIPPerConn = connectIP / float64(conns)
	}
	for n, d := range measured {
		vals[n] = d.Projected.IPBytesPerMonth
	}
	pj.IPBytesPerMonth = statOf(vals)
	for n, d := range measured {
		vals[n] = d.Projected.BilledPerMonth
	}
	pj.BilledPerMonth = statOf(vals)

	a.Budget = budgetOf(measured, profiles)
	a.Energy = energyOf(measured, profiles)

	for _, name := range latencyNames {
		h := r.mergedLatency(hists, name, match)
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		ms := func(us int64) float64 { return float64(us) / 1000 }
		a.Latency = append(a.Latency, LatencyStats{
			Latency: name, Count: h.TotalCount(), Mean: h.Mean() / 1000,
			P50: ms(h.ValueAtPercentile(50)), P90: ms(h.ValueAtPercentile(90)), P95: ms(h.ValueAtPercentile(95)),
			P99: ms(h.ValueAtPercentile(99)), Max: ms(h.Max()),
		})
	}
	return a
}

// connectClasses are the classes whose bytes set connections up.
var connectClasses = []network.Class{network.ClassConnect, network.ClassReconnect, network.ClassTokenRenewal}

func (t *ByteTable) classTotal(l network.Layer, c int) uint64 {
	return t[l][network.Up][c] + t[l][network.Down][c]
}

func sumRow(r *[numClasses]uint64) uint64 {
	var n uint64
	for _, v := range r {
		n += v
	}
	return n
}

func layerValue(v *LayerValues, l network.Layer) float64 {
	switch l {
	case network.LayerPayload:
		return v.Payload
	case network.LayerProtocol:
		return v.Protocol
	case network.LayerTLS:
		return v.TLS
	}
	return v.IP
}

func budgetOf(devs func(func(int, *DeviceRow) bool), profiles map[string]*ProfileMeta) *Budget {
	var b Budget
	var use []float64
	plans := map[int64]bool{}
	billings := map[Billing]bool{}
	for _, d := range devs {
		p := profiles[d.Profile]
		plan := planOf(d, p)
		if plan <= 0 {
			continue
		}
		b.Devices++
		plans[plan] = true
		if p != nil {
			billings[p.Billing] = true
		} else {
			billings[Billing{}] = true
		}
		use = append(use, d.Projected.BudgetUse)
		if d.Projected.OverBudget {
			b.OverBudget++
			b.OverBudgetDevices = append(b.OverBudgetDevices, d.ID)
		}
	}
	if b.Devices == 0 {
		return nil
	}
	if len(plans) == 1 {
		for p := range plans {
			b.PlanBytesPerMonth = p
		}
	}
	if len(billings) == 1 {
		for x := range billings {
			b.Billing = x
		}
	}
	b.Use = statOf(use)
	return &b
}

func energyOf(devs func(func(int, *DeviceRow) bool), profiles map[string]*ProfileMeta) *EnergyStats {
	var e EnergyStats
	var draw []float64
	batteries := map[float64]bool{}
	minLife := math.Inf(1)
	for _, d := range devs {
		if d.Projected.MAhPerDay <= 0 {
			continue
		}
		e.Devices++
		draw = append(draw, d.Projected.MAhPerDay)
		batteries[batteryOf(profiles[d.Profile])] = true
		minLife = min(minLife, d.Projected.BatteryLifeDays)
	}
	if e.Devices == 0 {
		return nil
	}
	e.MAhPerDay = statOf(draw)
	if len(batteries) == 1 {
		for c := range batteries {
			e.BatteryMAh = c
		}
		e.BatteryLifeDays = e.BatteryMAh / e.MAhPerDay.Avg
	} else {
		// Mixed batteries: the mean of each device's own life.
		var sum float64
		for _, d := range devs {
			sum += d.Projected.BatteryLifeDays
		}
		e.BatteryLifeDays = sum / float64(e.Devices)
	}
	e.BatteryLifeDaysMin = minLife
	return &e
}

// statOf summarises vals (and sorts them); zero for no values.
func statOf(vals []float64) Stat {
	if len(vals) == 0 {
		return Stat{}
	}
	var sum float64
	for _, v := range vals {
		sum += v
	}
	avg := sum / float64(len(vals))
	slices.Sort(vals)
	return Stat{Avg: avg, P50: percentile(vals, 50), P95: percentile(vals, 95), Max: vals[len(vals)-1]}
}

// percentile of sorted values by linear interpolation between the closest
// ranks, as k6 computes a trend's p(N).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	x := p / 100 * float64(len(sorted)-1)
	lo, hi := int(math.Floor(x)), int(math.Ceil(x))
	return sorted[lo] + (sorted[hi]-sorted[lo])*(x-float64(lo))
}
