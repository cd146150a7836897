package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/catmsim/catmsim/protocols"
	"github.com/catmsim/catmsim/reports"
	"github.com/catmsim/catmsim/scenarios"
)

func (a *app) compareCommand() *cobra.Command {
	var f runFlags
	var protoList string
	cmd := &cobra.Command{
		Use:     "compare <scenario>",
		GroupID: "run",
		Short:   "Run one behaviour over several protocols and compare their cost",
		Long: `Run the same fleet — the same devices, links, behaviour, schedule and seeds — once per protocol,
side by side, and print one table: bytes per device per day by layer and by operation, connect
cost, latency, energy, battery life and the verdict against the data plan. It answers "should my
FiPy use AMQP instead of HTTPS to save data?" with numbers.

Each protocol's full report is written to <out>/<protocol>/ and the comparison to
<out>/compare.html (default out: reports/<run-id>-compare). Options a protocol needs that the
scenario's did not have take their defaults (MQTT QoS 1 and keep-alive 240 s, an HTTPS C2D poll
every 25 minutes, an event hub named telemetry). Thresholds are reported per protocol, but do not
change the exit code: a comparison is not a gate.`,
		Example: `  sim compare fipy-amqp --protocols mqtt,amqp,https
  sim compare quickstart --protocols mqtt,mqtt-ws,amqp,amqp-ws,https,eventhubs-https --duration 10m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var protos []protocols.Protocol
			for _, s := range strings.Split(protoList, ",") {
				if s = strings.TrimSpace(s); s != "" {
					protos = append(protos, protocols.Protocol(s))
				}
			}
			if len(protos) < 2 {
				return usageErrorf("--protocols needs at least two, e.g. mqtt,amqp,https")
			}
			base, err := a.loadPlan(args[0], f)
			if err != nil {
				return err
			}
			plans := make([]*scenarios.Plan, len(protos))
			for i, pr := range protos {
				if plans[i], err = base.WithProtocol(pr); err != nil {
					return usageErrorf("--protocols: %v", err)
				}
			}
			out := f.out
			if out == "" {
				out = filepath.Join("reports", time.Now().UTC().Format("20060102T150405Z")+"-"+base.Name+"-compare")
			}
			fmt.Fprintf(a.stderr, "comparing %s over %s: %d devices each for %s\n", base.Name, protoList, base.Len(), base.Duration)
			// The runs go side by side: each has its own embedded hub, and a
			// fleet spends its time waiting on its links.
			reps := make([]*reports.Report, len(plans))
			errs := make([]error, len(plans))
			var wg sync.WaitGroup
			for i, p := range plans {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rf := f
					rf.out = filepath.Join(out, string(protos[i]))
					reps[i], _, _, errs[i] = a.executePlan(cmd.Context(), p, rf, nil, 0, nil)
					if errs[i] == nil {
						fmt.Fprintf(a.stderr, "%s done\n", protos[i])
					}
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			c, err := reports.CompareTable(reps...)
			if err != nil {
				return err
			}
			if err := c.WriteText(a.stdout); err != nil {
				return err
			}
			html := filepath.Join(out, "compare.html")
			fh, err := os.Create(html)
			if err != nil {
				return err
			}
			if err := c.WriteHTML(fh); err != nil {
				fh.Close()
				return err
			}
			if err := fh.Close(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "\ncomparison: %s\n", html)
			if cmd.Context().Err() != nil {
				return withCode(exitAborted, errors.New("the comparison was interrupted; the reports cover what ran"))
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&protoList, "protocols", "mqtt,amqp,https", "protocols to compare, comma-separated: mqtt, mqtt-ws, amqp, amqp-ws, https, eventhubs-https")
	return cmd
}
