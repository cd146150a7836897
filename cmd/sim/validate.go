package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/catmsim/catmsim/fleet"
	"github.com/catmsim/catmsim/scenarios"
)

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "validate <scenario>...",
		GroupID: "run",
		Short:   "Check scenario files without running them",
		Long: `Check scenario files and report every mistake at once, each with its file, line and column,
and a suggestion where one is likely ("unknown key keepalive — did you mean keep_alive?").
A scenario is a file path or the name of a scenario shipped inside sim (quickstart, fipy-amqp …).
Warnings (a profile no group uses, a ramp that ends after the run) do not make a file invalid.
Exits 0 when every file is valid and 104 when any is not.`,
		Example: `  sim validate scenarios/*.yaml
  sim validate quickstart my-fleet.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			invalid := 0
			for _, name := range args {
				if !a.validateOne(name) {
					invalid++
				}
			}
			if invalid > 0 {
				return withCode(exitInvalidScenario, fmt.Errorf("%d of %d scenario files invalid", invalid, len(args)))
			}
			return nil
		},
	}
}

// validateOne prints what is wrong with one scenario, or that it is ok.
func (a *app) validateOne(name string) bool {
	s, warnings, err := scenarios.Load(name)
	for _, w := range warnings {
		fmt.Fprintln(a.stdout, warningLine(w))
	}
	if err == nil {
		err = a.checkFirmware(s)
	}
	if err == nil {
		suffix := ""
		if n := len(warnings); n > 0 {
			suffix = " (" + plural(n, "warning") + ")"
		}
		fmt.Fprintf(a.stdout, "%s: ok%s\n", name, suffix)
		return true
	}
	located := scenarios.Errors(err)
	if len(located) == 0 {
		fmt.Fprintln(a.stdout, err) // it names the file: not found, or unreadable
		return false
	}
	for _, e := range located {
		fmt.Fprintln(a.stdout, e.Error())
	}
	fmt.Fprintf(a.stdout, "%s: invalid (%s)\n", name, plural(len(located), "error"))
	return false
}

// warningLine formats a warning as file:line:col: warning: path: message.
func warningLine(w *scenarios.Error) string {
	loc := w.File
	if w.Line > 0 {
		loc += ":" + strconv.Itoa(w.Line)
		if w.Column > 0 {
			loc += ":" + strconv.Itoa(w.Column)
		}
	}
	if w.Path == "" {
		return loc + ": warning: " + w.Msg
	}
	return loc + ": warning: " + w.Path + ": " + w.Msg
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func (a *app) planCommand() *cobra.Command {
	var (
		shard, duration string
		asJSON, devices bool
	)
	cmd := &cobra.Command{
		Use:     "plan <scenario>",
		GroupID: "run",
		Short:   "Print the plan a scenario compiles to, without running it",
		Long: `Compile a scenario and print its plan: the devices of the shard with their ids, seeds and
arrival times, the resolved profiles and links, the cloud-side drivers, the events with the devices
they hit, and the thresholds. The same scenario, seed and shard always give the same plan.

--shard i/N selects shard i of N (from 0); --shard /N takes i from JOB_COMPLETION_INDEX, as in a
Kubernetes Indexed Job; with no flag, JOB_COMPLETION_INDEX and CATMSIM_SHARDS are read, and
without them the plan covers the whole fleet.`,
		Example: `  sim plan quickstart
  sim plan fleet.yaml --shard 2/8 --json > shard-2.json
  sim plan fipy-amqp --devices`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, n, err := scenarios.ParseShard(shard, func(k string) string { return a.env[k] })
			if err != nil {
				return withCode(exitUsage, err)
			}
			opts := scenarios.PlanOptions{Shard: i, Shards: n}
			if duration != "" {
				if err := opts.Duration.UnmarshalText([]byte(duration)); err != nil || opts.Duration <= 0 {
					return usageErrorf("--duration %q: must be a positive duration such as 30s or 5m", duration)
				}
			}
			s, warnings, err := scenarios.Load(args[0])
			for _, w := range warnings {
				fmt.Fprintln(a.stderr, warningLine(w))
			}
			if err != nil {
				return invalidScenario(a.stderr, args[0], err)
			}
			p, err := scenarios.Compile(s, opts)
			if err != nil {
				return withCode(exitInvalidScenario, err)
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(p)
			}
			return writePlan(a.stdout, p, devices)
		},
	}
	cmd.Flags().StringVar(&shard, "shard", "", "run shard i of N (i/N, from 0), or /N to take i from "+scenarios.EnvJobIndex)
	cmd.Flags().StringVar(&duration, "duration", "", "replace the scenario's duration, e.g. 30s")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the whole plan as JSON")
	cmd.Flags().BoolVar(&devices, "devices", false, "list every device of the shard")
	return cmd
}

// invalidScenario prints a scenario's located errors and returns the
// error that exits 104; a file that cannot be found or read exits the same
// way, since there is no scenario to run.
func invalidScenario(w io.Writer, name string, err error) error {
	located := scenarios.Errors(err)
	if len(located) == 0 {
		return withCode(exitInvalidScenario, err)
	}
	for _, e := range located {
		fmt.Fprintln(w, e.Error())
	}
	return withCode(exitInvalidScenario, fmt.Errorf("%s is invalid (%s); try: sim validate %s", name, plural(len(located), "error"), name))
}

// writePlan prints a plan as a summary a person can check at a glance.
func writePlan(w io.Writer, p *scenarios.Plan, listDevices bool) error {
	fmt.Fprintf(w, "%s: seed %d, %s, shard %d of %d: %d of %d devices\n", p.Name, p.Seed, p.Duration, p.Shard, p.Shards, p.Len(), p.FleetSize)
	t := p.Target
	switch t.Kind {
	case scenarios.TargetEmbedded:
		fmt.Fprintf(w, "target: the embedded hub %s (%s)", t.HostName, t.Transport)
	case scenarios.TargetIoTHub:
		fmt.Fprintf(w, "target: an IoT Hub, service connection string from $%s", t.ConnectionStringEnv)
	case scenarios.TargetMQTT:
		fmt.Fprintf(w, "target: the MQTT broker %s", t.Broker)
	}
	if t.Tier != "" {
		fmt.Fprintf(w, ", tier %s × %d", t.Tier, t.Units)
	}
	fmt.Fprintln(w)

	inShard := map[string]int{}
	for d := range p.Devices() {
		inShard[d.Group]++
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tPROFILE\tPROTOCOL\tLINK\tDEVICES\tIN SHARD\tIDS\tARRIVAL")
	for _, g := range p.Groups {
		pp := p.Profile(g.Profile)
		link := pp.Link.Base
		if pp.Link.Custom {
			link += " (custom)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s … %s\t%s\n", g.Name, g.Profile, pp.Protocol, link, g.Count, inShard[g.Name], g.FirstID, g.LastID, arrival(g.Arrival))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	c := p.Cloud
	if c.C2D != nil || c.Methods != nil || c.Desired != nil {
		fmt.Fprintln(w, "\ncloud drivers (per device):")
		if c.C2D != nil {
			fmt.Fprintf(w, "  c2d      %s, %s, ttl %s → %s\n", c.C2D.Rate, c.C2D.Size, c.C2D.TTL, strings.Join(c.C2DGroups, ", "))
		}
		if c.Methods != nil {
			fmt.Fprintf(w, "  methods  %s %s, time-out %s → %s\n", c.Methods.Name, c.Methods.Rate, c.Methods.Timeout, strings.Join(c.MethodGroups, ", "))
		}
		if c.Desired != nil {
			fmt.Fprintf(w, "  desired  %s → %s\n", c.Desired.Rate, strings.Join(c.DesiredGroups, ", "))
		}
	}
	if len(p.Events) > 0 {
		fmt.Fprintln(w, "\nevents:")
		for _, e := range p.Events {
			switch e.Kind {
			case scenarios.EventOutage:
				scope := "the fleet"
				if e.Group != "" {
					scope = "group " + e.Group
				}
				fmt.Fprintf(w, "  %-8s outage of %s of %s for %s: %d devices, %d in this shard\n", e.At, e.Fraction, scope, e.Duration, e.Selected, len(e.Devices))
			default:
				fmt.Fprintf(w, "  %-8s %s\n", e.At, e.Kind)
			}
		}
	}
	if len(p.Thresholds) > 0 {
		fmt.Fprintln(w, "\nthresholds:")
		for _, th := range p.Thresholds {
			fmt.Fprintf(w, "  %s\n", th)
		}
	}
	if listDevices {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INDEX\tID\tGROUP\tARRIVAL\tSEED")
		for d := range p.Devices() {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", d.Index, d.ID, d.Group, d.Arrival, d.Seed)
		}
		return tw.Flush()
	}
	return nil
}

func arrival(a scenarios.Arrival) string {
	from := ""
	if a.At > 0 {
		from = " from " + a.At.String()
	}
	switch a.Kind {
	case scenarios.ArrivalRamp:
		return "ramp over " + a.Over.String() + from
	case scenarios.ArrivalPoisson:
		return "poisson at " + a.Rate.String() + from
	}
	return "all at " + a.At.String()
}

// checkFirmware compiles the firmware modules a valid scenario names, so that
// one that does not keep the host ABI is reported at its profile's firmware
// key rather than when a run starts.
func (a *app) checkFirmware(s *scenarios.Scenario) error {
	p, err := scenarios.Compile(s, scenarios.PlanOptions{})
	if err != nil {
		return err
	}
	err = fleet.CheckFirmware(a.ctx, p)
	var fe *fleet.FirmwareError
	if errors.As(err, &fe) {
		written := fe.Module
		if pr := s.Profiles[fe.Profile]; pr != nil {
			written = pr.Firmware // as the file has it, not resolved
		}
		return s.ErrorAt("profiles."+fe.Profile+".firmware", fmt.Sprintf("%s cannot run: %v", written, fe.Err))
	}
	return err
}
