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
	return []*cobra.Command{run, compare, a.reportCommand()}
}
