package reports

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
)

// Input is what a report is built from: the run's measurements and what the
// run was.
type Input struct {
	Run  *metrics.Run
	Meta Meta
}

// Build makes the report of a finished run. It reads each device's ledger
// once, keeps the raw measurements a merge needs, and summarises them; a
// threshold that names a metric the catalogue lacks is an error.
func Build(in Input) (*Report, error) {
	if in.Run == nil {
		return nil, errors.New("building a report: no run to report on")
	}
	meta := in.Meta
	if meta.Shards == 0 {
		meta.Shards = 1
	}
	if meta.Shard < 0 || meta.Shard >= meta.Shards {
		return nil, fmt.Errorf("building a report: shard %d of %d does not exist; shards count from 0", meta.Shard, meta.Shards)
	}
	if meta.Duration <= 0 {
		return nil, fmt.Errorf("building a report: the measured duration is %v; a report needs a positive one to scale bytes to a day", meta.Duration)
	}
	if meta.Started.IsZero() {
		meta.Started = in.Run.Start()
	}
	meta.Merged = nil
	meta.Profiles = slices.Clone(meta.Profiles)
	slices.SortFunc(meta.Profiles, func(a, b ProfileMeta) int { return cmpString(a.Name, b.Name) })

	r := &Report{SchemaVersion: SchemaVersion, Meta: meta}
	devs := in.Run.Devices()
	r.Devices = make([]DeviceRow, len(devs))
	end := meta.Started.Add(meta.Duration)
	for i, d := range devs {
		elapsed := meta.Duration
		// A device measured from its arrival (the fleet records it) covers
		// less than the run when it arrived late, and nothing when it never
		// arrived: it then has no bytes per day, rather than zero.
		if in.Run.TracksArrivals() {
			elapsed = min(d.ActiveFor(end), elapsed)
		}
		deviceRow(&r.Devices[i], d, elapsed)
	}
	slices.SortFunc(r.Devices, func(a, b DeviceRow) int { return a.Index - b.Index })

	for _, g := range in.Run.Groups() {
		for _, l := range metrics.Latencies() {
			h := g.Histogram(l)
			if h.TotalCount() == 0 {
				continue
			}
			r.Latency = append(r.Latency, LatencyHist{Group: g.Name, Protocol: g.Protocol, Latency: l.String(), Histogram: exportHist(h)})
		}
	}
	sortLatency(r.Latency)
	r.Timeline = bucketTimeline(in.Run.Timeline(), bucketWidth(meta.Duration))
	if err := r.summarize(); err != nil {
		return nil, fmt.Errorf("building a report: %w", err)
	}
	return r, nil
}

// deviceRow fills row from d, taking one snapshot of its ledger.
func deviceRow(row *DeviceRow, d *metrics.Device, elapsed time.Duration) {
	row.Index, row.ID, row.Group, row.Profile, row.Protocol = d.Info.Index, d.Info.ID, d.Info.Group, d.Info.Profile, d.Info.Protocol
	row.DataPlan = d.Info.DataPlan
	row.State = d.State().String()
	row.Elapsed = elapsed
	if l := d.Ledger(); l != nil {
		snap := l.Snapshot()
		for li := range row.Bytes {
			for di := range row.Bytes[li] {
				for ci := range row.Bytes[li][di] {
					row.Bytes[li][di][ci] = snap.Bytes(network.Layer(li), network.Direction(di), network.Class(ci))
				}
			}
		}
		for ri := range row.Connections {
			row.Connections[ri] = snap.Conns(network.ConnReason(ri))
		}
	}
	if setup, ok := d.Setup(); ok {
		row.Setup = &CountTable{}
		copy(row.Setup[:], setup[:])
	}
	for _, c := range metrics.Counts() {
		row.Counts[c] = d.Get(c)
	}
	errs, last := d.Errors()
	if len(errs) > 0 {
		row.Errors = errs
	}
	row.LastError = last
	row.LastAcked = d.LastAcked()
	if e := d.Energy(); e.Elapsed > 0 {
		en := &Energy{Elapsed: e.Elapsed, ChargeMAh: e.ChargeMAh, TAUs: e.TAUs}
		for _, s := range network.RadioStates() {
			en.States[s] = uint64(e.Time(s))
		}
		row.Energy = en
	}
}

func sortLatency(ls []LatencyHist) {
	order := func(name string) int { return slices.Index(latencyNames, name) }
	slices.SortFunc(ls, func(a, b LatencyHist) int {
		if c := cmpString(a.Group, b.Group); c != 0 {
			return c
		}
		if c := cmpString(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		return order(a.Latency) - order(b.Latency)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// bucketLadder are the timeline bucket widths; each divides the next, so a
// timeline re-bucketed to a wider width stays exact.
var bucketLadder = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// maxTimelinePoints bounds a report's timeline.
const maxTimelinePoints = 120

// bucketWidth is the narrowest ladder width that covers d in at most
// maxTimelinePoints buckets.
func bucketWidth(d time.Duration) time.Duration {
	for _, w := range bucketLadder {
		if d/w < maxTimelinePoints {
			return w
		}
	}
	w := bucketLadder[len(bucketLadder)-1]
	for d/w >= maxTimelinePoints {
		w *= 2
	}
	return w
}

// bucketTimeline puts samples into buckets of width w: each bucket holds its
// last sample, and a bucket without one repeats the bucket before.
func bucketTimeline(samples []metrics.Sample, w time.Duration) Timeline {
	t := Timeline{Bucket: w}
	for _, s := range samples {
		if s.Elapsed < 0 {
			continue
		}
		i := int(s.Elapsed / w)
		p := TimelinePoint{D2CSent: s.D2CSent, IPBytes: s.IPBytes}
		for _, st := range metrics.States() {
			p.States[st] = uint64(s.Count(st))
		}
		for len(t.Points) < i {
			t.Points = append(t.Points, lastPoint(t.Points))
		}
		if len(t.Points) == i {
			t.Points = append(t.Points, p)
		} else {
			t.Points[i] = p
		}
	}
	return t
}

func lastPoint(ps []TimelinePoint) TimelinePoint {
	if len(ps) == 0 {
		return TimelinePoint{}
	}
	return ps[len(ps)-1]
}

// rebucket widens t to width w, a multiple of its own, and pads it to n
// points by repeating its last.
func (t Timeline) rebucket(w time.Duration, n int) []TimelinePoint {
	out := make([]TimelinePoint, 0, n)
	if len(t.Points) == 0 {
		return append(out, make([]TimelinePoint, n)...)
	}
	r := int(w / t.Bucket)
	for k := 0; k < n; k++ {
		i := min((k+1)*r-1, len(t.Points)-1)
		out = append(out, t.Points[i])
	}
	return out
}

// points is how many points t has once widened to w.
func (t Timeline) points(w time.Duration) int {
	if len(t.Points) == 0 {
		return 0
	}
	r := int(w / t.Bucket)
	return (len(t.Points) + r - 1) / r
}
