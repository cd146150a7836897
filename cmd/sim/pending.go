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
	return []*cobra.Command{compare, a.reportCommand()}
}
