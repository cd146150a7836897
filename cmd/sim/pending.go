package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// pendingCommands are the commands whose help is written and whose work is not
// in this build yet. They say so and exit 2 rather than pretend.
func (a *app) pendingCommands() []*cobra.Command {
	notYet := func(what string) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			return withCode(exitUsage, fmt.Errorf("%s is not implemented in this version yet: %s", cmd.CommandPath(), what))
		}
	}
	run := &cobra.Command{
		Use:     "run <scenario>",
		GroupID: "run",
		Short:   "Run a scenario and write its report",
		Long: `Run a scenario: expand its fleet into devices, connect them over their modelled CAT-M links
to the target (the embedded hub unless the scenario names another), drive their behaviour for
the scenario's duration, and write the report. Exits 99 when a threshold is breached, 104 when
the scenario is invalid, 105 when interrupted, 106 when the target cannot be reached.`,
		Example: `  sim run scenarios/quickstart.yaml
  sim run quickstart --duration 30s
  sim run fleet.yaml --shard 2/8`,
		Args: cobra.ExactArgs(1),
		RunE: notYet("the scenario engine is still being built"),
	}
	validate := &cobra.Command{
		Use:     "validate <scenario>...",
		GroupID: "run",
		Short:   "Check scenario files without running them",
		Long:    `Check scenario files and report every mistake at once, each with its file, line and column.`,
		Example: `  sim validate scenarios/*.yaml`,
		Args:    cobra.MinimumNArgs(1),
		RunE:    notYet("the scenario parser is still being built"),
	}
	compare := &cobra.Command{
		Use:     "compare <scenario>",
		GroupID: "run",
		Short:   "Run one behaviour over several protocols and compare their cost",
		Long: `Run the same fleet behaviour once per protocol and print one table: bytes per device per day
by layer and operation, latency, energy, and the verdict against the data plan.`,
		Example: `  sim compare scenarios/fipy-amqp.yaml --protocols mqtt,amqp,https`,
		Args:    cobra.ExactArgs(1),
		RunE:    notYet("protocol comparison is still being built"),
	}
	report := &cobra.Command{
		Use:     "report",
		GroupID: "run",
		Short:   "Merge and compare run reports",
	}
	report.AddCommand(&cobra.Command{
		Use:     "merge <report.json>...",
		Short:   "Merge per-shard reports into one",
		Example: `  sim report merge reports/shard-*/report.json -o reports/merged`,
		Args:    cobra.MinimumNArgs(1),
		RunE:    notYet("report merging is still being built"),
	}, &cobra.Command{
		Use:     "diff <a/report.json> <b/report.json>",
		Short:   "Show what changed between two runs",
		Example: `  sim report diff baseline/report.json reports/latest/report.json`,
		Args:    cobra.ExactArgs(2),
		RunE:    notYet("report diffs are still being built"),
	})
	return []*cobra.Command{run, validate, compare, report}
}
