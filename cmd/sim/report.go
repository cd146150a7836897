package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/catmsim/catmsim/reports"
)

func (a *app) reportCommand() *cobra.Command {
	report := &cobra.Command{
		Use:     "report",
		GroupID: "run",
		Short:   "Merge and compare run reports",
		Long: `Work with the reports runs write (reports/<run-id>/report.json and its companions):
merge the reports of a sharded run into one, or show what changed between two runs.`,
	}
	report.AddCommand(a.reportMergeCommand(), a.reportDiffCommand())
	return report
}

func (a *app) reportMergeCommand() *cobra.Command {
	var out string
	var partial bool
	cmd := &cobra.Command{
		Use:   "merge <report.json | report dir>...",
		Short: "Merge per-shard reports into one",
		Long: `Merge the reports of one run's shards (sim run --shard i/N, or a Kubernetes Indexed Job) into
the report a single process running the whole fleet would have written: devices are joined,
latency histograms merged exactly, timelines added, and every aggregate, data-budget projection
and threshold computed again over the whole fleet. The reports must come from the same scenario,
seed and shard count, and each shard must appear once; all shards are required unless
--allow-partial is given.

Writes report.json, summary.md, devices.csv, junit.xml and report.html into the output
directory (default reports/<run-id>-merged). Exits 99 when the merged fleet breaches a
threshold, as sim run does, so a CI job can gate on the merge.`,
		Example: `  sim report merge reports/shard-*/report.json -o reports/merged
  sim report merge shard-0/ shard-1/ shard-2/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in []*reports.Report
			for _, p := range args {
				r, err := reports.ReadFile(p)
				if err != nil {
					return fmt.Errorf("reading shard report: %w", err)
				}
				in = append(in, r)
			}
			merged, err := reports.Merge(in...)
			if err != nil {
				return err
			}
			m := &merged.Meta
			held := len(m.ShardIndices())
			if !m.Complete() && !partial {
				return fmt.Errorf("the reports hold %d of the run's %d shards (missing %s); give every shard's report, or pass --allow-partial to merge what is there",
					held, m.Shards, missingShards(m))
			}
			if out == "" {
				out = filepath.Join("reports", strings.TrimSuffix(m.RunID, "-merged")+"-merged")
			}
			if err := notAnInputDir(out, args); err != nil {
				return err
			}
			if err := reports.WriteDir(out, merged); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "merged %d of %d shards of %s (seed %d): %d devices → %s\n",
				held, m.Shards, m.Scenario, m.Seed, merged.Summary.Devices, filepath.Join(out, reports.FileHTML))
			if !m.Complete() {
				fmt.Fprintf(a.stdout, "partial: shards %s are missing\n", missingShards(m))
			}
			if err := merged.Check(); err != nil {
				return withCode(exitThresholds, err)
			}
			if n := len(merged.Thresholds); n > 0 {
				fmt.Fprintf(a.stdout, "thresholds: all %d held\n", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "directory to write the merged report into (default reports/<run-id>-merged)")
	cmd.Flags().BoolVar(&partial, "allow-partial", false, "merge even when some shards' reports are missing")
	return cmd
}

// missingShards lists the shards a report lacks.
func missingShards(m *reports.Meta) string {
	have := map[int]bool{}
	for _, s := range m.ShardIndices() {
		have[s] = true
	}
	var miss []string
	for s := 0; s < m.Shards && len(miss) < 10; s++ {
		if !have[s] {
			miss = append(miss, fmt.Sprint(s))
		}
	}
	if len(miss) == 10 {
		miss = append(miss, "…")
	}
	return strings.Join(miss, ", ")
}

// notAnInputDir refuses to write the merge over a shard's own report.
func notAnInputDir(out string, inputs []string) error {
	o, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	for _, p := range inputs {
		dir := p
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			dir = filepath.Dir(p)
		}
		if d, err := filepath.Abs(dir); err == nil && d == o {
			return usageErrorf("the output directory %s holds the shard report %s; choose another with -o", out, p)
		}
	}
	return nil
}

func (a *app) reportDiffCommand() *cobra.Command {
	var failPct float64
	cmd := &cobra.Command{
		Use:   "diff <a/report.json> <b/report.json>",
		Short: "Show what changed between two runs",
		Long: `Show what changed from run A (a baseline) to run B, group by group: average bytes per device
per day at each layer (absolute and in percent), latency percentiles, counts, and which
thresholds changed verdict. Either argument may be a report directory.

Exits 0 whatever changed. For a CI baseline check, --fail-on-increase PCT exits 99 when any
group's bytes per device-day at any layer grew by more than PCT percent.`,
		Example: `  sim report diff baseline/report.json reports/latest/report.json
  sim report diff baseline/ reports/latest/ --fail-on-increase 5`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("fail-on-increase") && (failPct < 0 || math.IsNaN(failPct) || math.IsInf(failPct, 0)) {
				return usageErrorf("--fail-on-increase is a percentage of 0 or more (got %v)", failPct)
			}
			ra, err := reports.ReadFile(args[0])
			if err != nil {
				return err
			}
			rb, err := reports.ReadFile(args[1])
			if err != nil {
				return err
			}
			d := reports.Diff(ra, rb)
			if err := d.WriteText(a.stdout); err != nil {
				return err
			}
			if !cmd.Flags().Changed("fail-on-increase") {
				return nil
			}
			grew := d.Increases(failPct)
			if len(grew) == 0 {
				fmt.Fprintf(a.stdout, "\nno byte figure grew by more than %g%%\n", failPct)
				return nil
			}
			parts := make([]string, len(grew))
			for i, g := range grew {
				change := "from 0"
				if p := g.Pct(); !math.IsInf(p, 1) {
					change = fmt.Sprintf("+%.1f%%", p)
				}
				parts[i] = fmt.Sprintf("%s/%s %s %s", g.Group, g.Protocol, g.Layer, change)
			}
			noun := "byte figures"
			if len(grew) == 1 {
				noun = "byte figure"
			}
			return withCode(exitThresholds, fmt.Errorf("%d %s grew by more than %g%%: %s", len(grew), noun, failPct, strings.Join(parts, "; ")))
		},
	}
	cmd.Flags().Float64Var(&failPct, "fail-on-increase", 0, "exit 99 when any group's bytes per device-day at any layer grew by more than this percentage")
	return cmd
}
