package reports

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ShardIndices lists the shards the report holds.
func (m *Meta) ShardIndices() []int {
	if len(m.Merged) > 0 {
		return slices.Clone(m.Merged)
	}
	return []int{m.Shard}
}

// Complete reports whether the report holds every shard of its run.
func (m *Meta) Complete() bool { return len(m.ShardIndices()) == max(m.Shards, 1) }

// Merge combines shard reports of one run into one report, equal to the report
// a single process running every shard would have written: devices are joined,
// latency histograms merged bucket by bucket, timelines added point by point,
// and the result summarised and its thresholds evaluated afresh. The reports
// must be of the same scenario, seed, shard count, profiles and thresholds, and
// hold disjoint shards. The inputs are not changed.
func Merge(reports ...*Report) (*Report, error) {
	if len(reports) == 0 {
		return nil, errors.New("merging reports: no reports given")
	}
	first := reports[0]
	seen := map[int]int{} // shard → which report holds it
	for i, r := range reports {
		if r == nil {
			return nil, fmt.Errorf("merging reports: report %d is missing", i+1)
		}
		if r.SchemaVersion != SchemaVersion {
			return nil, fmt.Errorf("merging reports: report %d (run %s) has schema version %d; this sim reads version %d", i+1, r.Meta.RunID, r.SchemaVersion, SchemaVersion)
		}
		if err := sameRun(first, r); err != nil {
			return nil, fmt.Errorf("merging reports: report %d (run %s, shard %d) is not of the same run as report 1 (run %s, shard %d): %w",
				i+1, r.Meta.RunID, r.Meta.Shard, first.Meta.RunID, first.Meta.Shard, err)
		}
		for _, s := range r.Meta.ShardIndices() {
			if s < 0 || s >= max(r.Meta.Shards, 1) {
				return nil, fmt.Errorf("merging reports: report %d holds shard %d, but the run has shards 0 to %d", i+1, s, max(r.Meta.Shards, 1)-1)
			}
			if j, dup := seen[s]; dup {
				return nil, fmt.Errorf("merging reports: reports %d and %d both hold shard %d of %d; give each shard once", j+1, i+1, s, r.Meta.Shards)
			}
			seen[s] = i
		}
	}

	out := &Report{SchemaVersion: SchemaVersion, Meta: first.Meta}
	m := &out.Meta
	m.Profiles = slices.Clone(first.Meta.Profiles)
	m.Thresholds = slices.Clone(first.Meta.Thresholds)
	m.Merged = nil
	for s := range seen {
		m.Merged = append(m.Merged, s)
	}
	slices.Sort(m.Merged)
	m.Shard = m.Merged[0]
	if len(m.Merged) == 1 {
		m.Merged = nil
	}
	n := 0
	for _, r := range reports {
		n += len(r.Devices)
		if r.Meta.Started.Before(m.Started) {
			m.Started = r.Meta.Started
		}
		m.Duration = max(m.Duration, r.Meta.Duration)
		if r.Meta.RunID != first.Meta.RunID {
			m.RunID = first.Meta.RunID + "-merged"
		}
		if m.Description == "" {
			m.Description = r.Meta.Description
		}
	}

	out.Devices = make([]DeviceRow, 0, n)
	for _, r := range reports {
		out.Devices = append(out.Devices, r.Devices...)
	}
	slices.SortFunc(out.Devices, func(a, b DeviceRow) int { return a.Index - b.Index })
	for i := 1; i < len(out.Devices); i++ {
		if out.Devices[i].Index == out.Devices[i-1].Index {
			return nil, fmt.Errorf("merging reports: device index %d (%s) appears in two reports; shards hold disjoint devices", out.Devices[i].Index, out.Devices[i].ID)
		}
	}

	var err error
	if out.Latency, err = mergeLatency(reports); err != nil {
		return nil, fmt.Errorf("merging reports: %w", err)
	}
	if out.Timeline, err = mergeTimelines(reports, bucketWidth(m.Duration)); err != nil {
		return nil, fmt.Errorf("merging reports: %w", err)
	}
	if err := out.summarize(); err != nil {
		return nil, fmt.Errorf("merging reports: %w", err)
	}
	return out, nil
}

// sameRun checks that b can be merged with a.
func sameRun(a, b *Report) error {
	x, y := &a.Meta, &b.Meta
	switch {
	case x.Scenario != y.Scenario:
		return fmt.Errorf("scenario %q is not %q", y.Scenario, x.Scenario)
	case x.Seed != y.Seed:
		return fmt.Errorf("seed %d is not %d", y.Seed, x.Seed)
	case max(x.Shards, 1) != max(y.Shards, 1):
		return fmt.Errorf("it is one of %d shards, not %d", y.Shards, x.Shards)
	case x.Target != y.Target:
		return fmt.Errorf("target %q is not %q", y.Target, x.Target)
	case x.Projection != y.Projection:
		return errors.New("one is a projection and the other a real-time run")
	case !reflect.DeepEqual(x.Profiles, y.Profiles):
		return errors.New("its profiles differ (data plan, billing, link or protocol)")
	case !sameThresholds(x.Thresholds, y.Thresholds):
		return errors.New("its thresholds differ")
	}
	return nil
}

func sameThresholds(a, b Thresholds) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

func mergeLatency(reports []*Report) ([]LatencyHist, error) {
	type key struct{ group, protocol, latency string }
	hists := map[key]*hdrhistogram.Histogram{}
	geo := map[key]HistSnapshot{}
	var order []key
	for _, r := range reports {
		for _, l := range r.Latency {
			k := key{l.Group, l.Protocol, l.Latency}
			h, err := importHist(l.Histogram)
			if err != nil {
				return nil, fmt.Errorf("latency %s of group %s on %s: %w", l.Latency, l.Group, l.Protocol, err)
			}
			cur, ok := hists[k]
			if !ok {
				hists[k], geo[k] = h, l.Histogram
				order = append(order, k)
				continue
			}
			g := geo[k]
			if !g.sameGeometry(&l.Histogram) {
				return nil, fmt.Errorf("latency %s of group %s on %s: histograms of different ranges cannot be merged exactly", l.Latency, l.Group, l.Protocol)
			}
			cur.Merge(h)
		}
	}
	out := make([]LatencyHist, 0, len(order))
	for _, k := range order {
		out = append(out, LatencyHist{Group: k.group, Protocol: k.protocol, Latency: k.latency, Histogram: exportHist(hists[k])})
	}
	sortLatency(out)
	return out, nil
}

// mergeTimelines adds the shards' timelines point by point, at width w or
// the widest of theirs; every width must divide it.
func mergeTimelines(reports []*Report, w time.Duration) (Timeline, error) {
	for _, r := range reports {
		if r.Timeline.Bucket > w {
			w = r.Timeline.Bucket
		}
	}
	n := 0
	for _, r := range reports {
		t := r.Timeline
		if len(t.Points) == 0 {
			continue
		}
		if t.Bucket <= 0 || w%t.Bucket != 0 {
			return Timeline{}, fmt.Errorf("timeline buckets of %v (run %s, shard %d) do not divide %v; the reports were not written by the same sim", t.Bucket, r.Meta.RunID, r.Meta.Shard, w)
		}
		n = max(n, t.points(w))
	}
	out := Timeline{Bucket: w, Points: make([]TimelinePoint, n)}
	for _, r := range reports {
		if len(r.Timeline.Points) == 0 {
			continue
		}
		for i, p := range r.Timeline.rebucket(w, n) {
			q := &out.Points[i]
			for s := range q.States {
				q.States[s] += p.States[s]
			}
			q.D2CSent += p.D2CSent
			q.IPBytes += p.IPBytes
		}
	}
	return out, nil
}
