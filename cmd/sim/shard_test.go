package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/network"
	"github.com/catmsim/catmsim/reports"
)

// shardScenario is two groups on two protocols whose telemetry counts do not
// depend on timing: no jitter, so a device sends at arrival+0s, +2s, +4s …
// and the run ends half an interval after its last send. Group "early"
// arrives at 0s and sends at 0, 2 and 4s; group "late" arrives at 2s and
// sends at 2 and 4s. The next send would be at 6s, and the run ends at 5s,
// so every send has a second either side: a send is neither cut off by the
// deadline nor squeezed in before it unless the machine stalls for that
// long. Payloads are random bytes of a fixed size, so payload bytes are the
// count times the size. Seven devices in three shards split unevenly (3, 2,
// 2) and each shard holds devices of both groups.
const shardScenario = `
version: 1
name: sharded
description: two groups split across shards
seed: 11
duration: 5s
target: {kind: embedded}
profiles:
  m:
    protocol: mqtt
    link: {base: good, rtt: 2ms, rtt_jitter: 0s, loss: 0%, attach_time: 0s, rrc_setup: 0s, drx_cycle: 10ms}
    data_plan: 5MB/month
    behaviour:
      telemetry: {interval: 2s, jitter: 0%, payload: {kind: bytes, size: 40B}}
  a:
    protocol: amqp
    link: {base: good, rtt: 2ms, rtt_jitter: 0s, loss: 0%, attach_time: 0s, rrc_setup: 0s, drx_cycle: 10ms}
    data_plan: 10MB/month
    behaviour:
      telemetry: {interval: 2s, jitter: 0%, payload: {kind: bytes, size: 100B}}
fleet:
  - {name: early, profile: m, count: 4}
  - {name: late, profile: a, count: 3, arrival: {kind: all_at_once, at: 2s}}
thresholds:
  d2c_failure_rate: ["rate < 1%"]
`

// shardExpect is what the schedule above makes each group's devices send.
var shardExpect = map[string]struct {
	profile      string
	devices      int
	messages     uint64
	payloadBytes uint64 // per message
}{
	"early": {profile: "m", devices: 4, messages: 3, payloadBytes: 40},
	"late":  {profile: "a", devices: 3, messages: 2, payloadBytes: 100},
}

// TestShardsMergeIntoTheWholeRun runs the scenario once whole and once as
// three shards, merges the shards with sim report merge, and holds the merge
// to the whole run: the same devices in the same groups and profiles, the
// same metadata, and the same deterministic measures device by device.
func TestShardsMergeIntoTheWholeRun(t *testing.T) {
	const shards = 3
	scenario := filepath.Join(t.TempDir(), "sharded.yaml")
	if err := os.WriteFile(scenario, []byte(shardScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	wholeDir := filepath.Join(base, "whole")
	shardDirs := make([]string, shards)
	for i := range shardDirs {
		shardDirs[i] = filepath.Join(base, fmt.Sprintf("shard-%d", i))
	}

	// The four runs are independent processes in production; here they run
	// side by side so the test takes one run's time. Each starts its own
	// embedded hub on its own loopback ports.
	runs := [][]string{{"run", scenario, "-o", wholeDir, "-q"}}
	envs := [][]string{nil}
	for i, dir := range shardDirs {
		args := []string{"run", scenario, "-o", dir, "-q", "--shard", fmt.Sprintf("%d/%d", i, shards)}
		env := []string(nil)
		if i == shards-1 {
			// The Indexed Job form: the index comes from the environment.
			args[len(args)-1] = fmt.Sprintf("/%d", shards)
			env = []string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i)}
		}
		runs = append(runs, args)
		envs = append(envs, env)
	}
	results := make([]result, len(runs))
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { results[i] = runSim(t, envs[i], "", runs[i]...) })
	}
	wg.Wait()
	for i, r := range results {
		if r.code != exitOK {
			t.Fatalf("sim %v: exit %d\nstdout: %s\nstderr: %s", runs[i], r.code, r.stdout, r.stderr)
		}
	}

	whole, err := reports.ReadFile(wholeDir)
	if err != nil {
		t.Fatal(err)
	}
	checkSchedule(t, "whole run", whole)
	for i, dir := range shardDirs {
		r, err := reports.ReadFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r.Meta.Shard != i || r.Meta.Shards != shards {
			t.Fatalf("%s holds shard %d of %d, want %d of %d", dir, r.Meta.Shard, r.Meta.Shards, i, shards)
		}
		for _, d := range r.Devices {
			if d.Index%shards != i {
				t.Errorf("shard %d ran device %d (%s), which belongs to shard %d", i, d.Index, d.ID, d.Index%shards)
			}
		}
	}

	mergedDir := filepath.Join(base, "merged")
	m := runSim(t, nil, "", append(append([]string{"report", "merge"}, shardDirs...), "-o", mergedDir)...)
	if m.code != exitOK {
		t.Fatalf("sim report merge: exit %d\nstdout: %s\nstderr: %s", m.code, m.stdout, m.stderr)
	}
	merged, err := reports.ReadFile(mergedDir)
	if err != nil {
		t.Fatal(err)
	}
	if !merged.Meta.Complete() || !slices.Equal(merged.Meta.Merged, []int{0, 1, 2}) {
		t.Fatalf("merged report holds shards %v of %d", merged.Meta.ShardIndices(), merged.Meta.Shards)
	}
	checkSchedule(t, "merged shards", merged)
	for _, d := range compareReports(merged, whole) {
		t.Error(d)
	}

	// Two shards of three are not the whole run: the comparison above can
	// fail, and does when a shard is left out.
	partialDir := filepath.Join(base, "partial")
	p := runSim(t, nil, "", "report", "merge", shardDirs[0], shardDirs[2], "--allow-partial", "-o", partialDir)
	if p.code != exitOK {
		t.Fatalf("sim report merge --allow-partial: exit %d\nstdout: %s\nstderr: %s", p.code, p.stdout, p.stderr)
	}
	partial, err := reports.ReadFile(partialDir)
	if err != nil {
		t.Fatal(err)
	}
	if partial.Meta.Complete() || len(compareReports(partial, whole)) == 0 {
		t.Fatalf("a merge of shards %v of %d passes for the whole run", partial.Meta.ShardIndices(), partial.Meta.Shards)
	}
}

// checkSchedule holds a report to what shardScenario's schedule makes its
// devices do, so that the comparison of two reports cannot pass on two
// reports that both measured nothing.
func checkSchedule(t *testing.T, what string, r *reports.Report) {
	t.Helper()
	perGroup := map[string]int{}
	for _, d := range r.Devices {
		want, ok := shardExpect[d.Group]
		if !ok {
			t.Errorf("%s: device %s is in group %q, which the scenario does not have", what, d.ID, d.Group)
			continue
		}
		perGroup[d.Group]++
		if d.Profile != want.profile {
			t.Errorf("%s: device %s of group %s has profile %q, want %q", what, d.ID, d.Group, d.Profile, want.profile)
		}
		sent := d.Counts.Get(metrics.D2CSent)
		payload := d.Bytes.Get(network.LayerPayload, network.Up, network.ClassTelemetry)
		if sent != want.messages || payload != want.messages*want.payloadBytes {
			t.Errorf("%s: device %s of group %s sent %d messages of %d payload bytes, want %d of %d",
				what, d.ID, d.Group, sent, payload, want.messages, want.messages*want.payloadBytes)
		}
		if framed := d.Bytes.Get(network.LayerProtocol, network.Up, network.ClassTelemetry); framed <= payload {
			t.Errorf("%s: device %s framed %d payload bytes of telemetry in %d protocol bytes", what, d.ID, payload, framed)
		}
	}
	for g, want := range shardExpect {
		if perGroup[g] != want.devices {
			t.Errorf("%s: group %s has %d devices, want %d", what, g, perGroup[g], want.devices)
		}
	}
}

// compareReports lists where a merged report differs from the whole run's.
// Only what the schedule fixes is compared for equality. Latency, elapsed
// time, energy, projections (bytes scaled by each device's elapsed time), the
// timeline and the TLS and IP layers depend on the wall clock and the
// scheduler — when keep-alives fall, how writes coalesce into TLS records and
// TCP segments, how long a handshake took — and differ between any two runs,
// sharded or not.
func compareReports(got, want *reports.Report) []string {
	var diffs []string
	errorf := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	gm, wm := got.Meta, want.Meta
	if gm.Scenario != wm.Scenario || gm.Seed != wm.Seed || gm.Target != wm.Target || gm.Description != wm.Description || gm.Projection != wm.Projection {
		errorf("merged meta: scenario %q seed %d target %q description %q projection %v; whole run: %q %d %q %q %v",
			gm.Scenario, gm.Seed, gm.Target, gm.Description, gm.Projection, wm.Scenario, wm.Seed, wm.Target, wm.Description, wm.Projection)
	}
	if !reflect.DeepEqual(gm.Profiles, wm.Profiles) {
		errorf("merged profiles %+v, whole run's %+v", gm.Profiles, wm.Profiles)
	}
	if !reflect.DeepEqual(gm.Groups, wm.Groups) {
		errorf("merged groups %+v, whole run's %+v", gm.Groups, wm.Groups)
	}
	if !sameThresholds(gm.Thresholds, wm.Thresholds) {
		errorf("merged thresholds %v, whole run's %v", gm.Thresholds, wm.Thresholds)
	}

	if got.Summary.Devices != want.Summary.Devices {
		errorf("merged report counts %d devices, the whole run %d", got.Summary.Devices, want.Summary.Devices)
	}
	if g, w := groupCounts(got), groupCounts(want); !reflect.DeepEqual(g, w) {
		errorf("devices per group: merged %v, whole run %v", g, w)
	}
	for _, c := range []metrics.Count{metrics.D2CSent, metrics.D2CFailed, metrics.Connects} {
		if g, w := got.Summary.Totals.Counts.Get(c), want.Summary.Totals.Counts.Get(c); g != w {
			errorf("total %s: merged %d, whole run %d", c, g, w)
		}
	}
	if g, w := got.Summary.Totals.Bytes.Payload, want.Summary.Totals.Bytes.Payload; g != w {
		errorf("total payload bytes: merged %+v, whole run %+v", g, w)
	}

	if len(got.Devices) != len(want.Devices) {
		errorf("merged report holds %d devices, the whole run %d", len(got.Devices), len(want.Devices))
		return diffs
	}
	for i := range want.Devices {
		g, w := &got.Devices[i], &want.Devices[i]
		if g.Index != w.Index || g.ID != w.ID || g.Group != w.Group || g.Profile != w.Profile || g.Protocol != w.Protocol || g.DataPlan != w.DataPlan {
			errorf("device %d: merged %d %s (%s, %s, %s, plan %d), whole run %d %s (%s, %s, %s, plan %d)", i,
				g.Index, g.ID, g.Group, g.Profile, g.Protocol, g.DataPlan, w.Index, w.ID, w.Group, w.Profile, w.Protocol, w.DataPlan)
			continue
		}
		// A lossless link with no events: every device connects once and
		// sends on schedule, so these counts are the schedule's, not the
		// clock's.
		for _, c := range []metrics.Count{metrics.D2CSent, metrics.D2CFailed, metrics.Connects, metrics.Reconnects} {
			if gc, wc := g.Counts.Get(c), w.Counts.Get(c); gc != wc {
				errorf("device %s %s: merged %d, whole run %d", w.ID, c, gc, wc)
			}
		}
		for _, dir := range []network.Direction{network.Up, network.Down} {
			for _, c := range network.Classes() {
				if gb, wb := g.Bytes.Get(network.LayerPayload, dir, c), w.Bytes.Get(network.LayerPayload, dir, c); gb != wb {
					errorf("device %s payload bytes %s %s: merged %d, whole run %d", w.ID, dir, c, gb, wb)
				}
			}
			// Telemetry's MQTT packets and AMQP frames (PUBLISH and PUBACK,
			// transfer, flow and disposition) are a function of the messages,
			// the device id and the sequence, all fixed by the plan. The
			// connect class is not: a SAS token's expiry is the wall clock
			// plus its lifetime, and its URL-escaped signature changes length
			// with it.
			l, c := network.LayerProtocol, network.ClassTelemetry
			if gb, wb := g.Bytes.Get(l, dir, c), w.Bytes.Get(l, dir, c); gb != wb {
				errorf("device %s %s bytes %s %s: merged %d, whole run %d", w.ID, l, dir, c, gb, wb)
			}
		}
	}
	return diffs
}

func groupCounts(r *reports.Report) map[string]int {
	n := map[string]int{}
	for _, a := range r.Summary.Groups {
		n[a.Group+"/"+a.Profile+"/"+a.Protocol] += a.Devices
	}
	return n
}

func sameThresholds(a, b reports.Thresholds) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key().String() != b[i].Key().String() || a[i].Source != b[i].Source {
			return false
		}
	}
	return true
}
