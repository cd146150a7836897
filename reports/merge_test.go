package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func jsonOf(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// roundTrip writes r as report.json and reads it back, as sim report merge
// does with the files shards wrote.
func roundTrip(t *testing.T, r *Report) *Report {
	t.Helper()
	back, err := Read(bytes.NewReader(jsonOf(t, r)))
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// The merge of a fleet's shard reports is the report of the whole fleet run
// in one process: devices, histograms, timeline, aggregates and thresholds.
func TestMergeEqualsWholeRun(t *testing.T) {
	const shards = 3
	devs := fixtureFleet(30, 7)
	whole, parts := fixtureRuns(devs, shards)
	want, err := Build(Input{Run: whole, Meta: fixtureMeta(t, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var files []*Report
	for i := shards - 1; i >= 0; i-- { // in no particular order
		r, err := Build(Input{Run: parts[i], Meta: fixtureMeta(t, i, shards)})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Devices) != 10 {
			t.Fatalf("shard %d holds %d devices, want 10", i, len(r.Devices))
		}
		files = append(files, roundTrip(t, r))
	}
	got, err := Merge(files...)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Meta.Complete() || got.Meta.Shards != shards || len(got.Meta.Merged) != shards {
		t.Fatalf("merged meta: shard %d of %d, merged %v", got.Meta.Shard, got.Meta.Shards, got.Meta.Merged)
	}
	if len(got.Latency) == 0 || len(got.Timeline.Points) == 0 || len(got.Thresholds) != len(want.Thresholds) {
		t.Fatalf("merged report lacks histograms, timeline or thresholds: %d, %d, %d", len(got.Latency), len(got.Timeline.Points), len(got.Thresholds))
	}
	// Only the shard bookkeeping may differ from a single-process run.
	got.Meta.Shards, got.Meta.Merged = 1, nil
	g, w := jsonOf(t, got), jsonOf(t, want)
	if !bytes.Equal(g, w) {
		t.Fatalf("merged report differs from the whole run's\n%s", firstDiff(g, w))
	}

	// A shard alone is not the whole: the comparison above can fail.
	one, err := Merge(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if one.Meta.Complete() {
		t.Fatal("a report of one shard in three says it is complete")
	}
	one.Meta.Shards, one.Meta.Merged = 1, nil
	if bytes.Equal(jsonOf(t, one), w) {
		t.Fatal("one shard's report equals the whole fleet's")
	}
}

// Shards that ran for slightly different times merge with the longest
// duration and their timelines add up point by point.
func TestMergeTimelines(t *testing.T) {
	a := &Report{Meta: Meta{Duration: 10 * time.Minute}, Timeline: Timeline{Bucket: 5 * time.Second}}
	b := &Report{Meta: Meta{Duration: 20 * time.Minute}, Timeline: Timeline{Bucket: 10 * time.Second}}
	for i := range 4 {
		p := TimelinePoint{D2CSent: uint64(i + 1)}
		p.States[2] = uint64(i)
		a.Timeline.Points = append(a.Timeline.Points, p)
	}
	b.Timeline.Points = []TimelinePoint{{D2CSent: 100}, {D2CSent: 200}, {D2CSent: 300}}
	got, err := mergeTimelines([]*Report{a, b}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// a widened to 10 s buckets: points 1 and 3 (the last of each pair), then
	// its last carried forward.
	want := []uint64{2 + 100, 4 + 200, 4 + 300}
	if got.Bucket != 10*time.Second || len(got.Points) != len(want) {
		t.Fatalf("bucket %v, %d points", got.Bucket, len(got.Points))
	}
	for i, w := range want {
		if got.Points[i].D2CSent != w {
			t.Errorf("point %d: d2c %d, want %d", i, got.Points[i].D2CSent, w)
		}
	}
	if got.Points[2].States[2] != 3 {
		t.Errorf("carried-forward state count %d, want 3", got.Points[2].States[2])
	}
	c := &Report{Timeline: Timeline{Bucket: 3 * time.Second, Points: []TimelinePoint{{}}}}
	if _, err := mergeTimelines([]*Report{a, c}, 10*time.Second); err == nil || !strings.Contains(err.Error(), "do not divide") {
		t.Fatalf("buckets of 3 s merged into 10 s: %v", err)
	}
}

func TestMergeRefuses(t *testing.T) {
	devs := fixtureFleet(6, 7)
	_, parts := fixtureRuns(devs, 2)
	build := func(shard int, edit func(m *Meta)) *Report {
		m := fixtureMeta(t, shard, 2)
		if edit != nil {
			edit(&m)
		}
		r, err := Build(Input{Run: parts[shard], Meta: m})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	s0, s1 := build(0, nil), build(1, nil)
	if _, err := Merge(s0, s1); err != nil {
		t.Fatalf("the two shards do not merge: %v", err)
	}
	dupDevice := build(1, nil)
	dupDevice.Devices[0].Index = s0.Devices[0].Index
	oldSchema := build(1, nil)
	oldSchema.SchemaVersion = 0
	tests := []struct {
		name string
		in   []*Report
		err  string
	}{
		{"nothing", nil, "no reports given"},
		{"other scenario", []*Report{s0, build(1, func(m *Meta) { m.Scenario = "other" })}, `scenario "other" is not "fixture"`},
		{"other seed", []*Report{s0, build(1, func(m *Meta) { m.Seed = 8 })}, "seed 8 is not 7"},
		{"other shard count", []*Report{s0, build(1, func(m *Meta) { m.Shards = 3 })}, "one of 3 shards, not 2"},
		{"same shard twice", []*Report{s0, s0}, "reports 1 and 2 both hold shard 0 of 2"},
		{"other thresholds", []*Report{s0, build(1, func(m *Meta) { m.Thresholds = m.Thresholds[:1] })}, "thresholds differ"},
		{"other profiles", []*Report{s0, build(1, func(m *Meta) { m.Profiles = m.Profiles[1:] })}, "profiles differ"},
		{"other target", []*Report{s0, build(1, func(m *Meta) { m.Target = "iothub" })}, `target "iothub"`},
		{"projection with real", []*Report{s0, build(1, func(m *Meta) { m.Projection = true })}, "projection"},
		{"device in two shards", []*Report{s0, dupDevice}, "appears in two reports"},
		{"schema version", []*Report{s0, oldSchema}, "schema version 0"},
		{"missing report", []*Report{s0, nil}, "report 2 is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Merge(tt.in...)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want it to contain %q", err, tt.err)
			}
		})
	}
}
