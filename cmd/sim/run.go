package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/catmsim/catmsim/fleet"
	"github.com/catmsim/catmsim/metrics"
	"github.com/catmsim/catmsim/reports"
	"github.com/catmsim/catmsim/scenarios"
)

// runFlags are the flags run and compare share.
type runFlags struct {
	shard, duration, out string
	quiet, force         bool
	every                time.Duration
}

func (f *runFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.shard, "shard", "", "run shard i of N (i/N, from 0), or /N to take i from "+scenarios.EnvJobIndex)
	fl.StringVar(&f.duration, "duration", "", "replace the scenario's duration, e.g. 30s")
	fl.StringVarP(&f.out, "out", "o", "", "report directory (default reports/<run-id>)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines")
	fl.BoolVar(&f.force, "force", false, "run even when the preflight says the machine's limits are too small")
	fl.DurationVar(&f.every, "progress-every", 0, "time between progress lines (default 1s on a terminal, 10s otherwise)")
}

func (a *app) runCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:     "run <scenario>",
		GroupID: "run",
		Short:   "Run a scenario and write its report",
		Long: `Run a scenario: expand its fleet into devices, connect them over their modelled CAT-M links
to the target (the IoT Hub emulator built into sim unless the scenario names another), drive
their behaviour for the scenario's duration, and write the report to reports/<run-id>/:
report.json, summary.md, devices.csv, junit.xml and report.html.

A scenario is a file or the name of one shipped inside sim (quickstart, fipy-amqp …). A preflight
checks the machine's limits (open files, local ports, memory) first and refuses a run that cannot
fit, saying which limit to raise. Ctrl-C stops the devices and still writes the report.

Exits 0 when the run passed, 99 when a threshold is breached, 104 when the scenario is invalid,
105 when interrupted, 106 when the target cannot be reached.`,
		Example: `  sim run scenarios/quickstart.yaml
  sim run quickstart --duration 30s
  sim run fleet.yaml --shard 2/8 -o reports/shard-2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(args[0], f)
			if err != nil {
				return err
			}
			r, dir, err := a.runPlan(cmd.Context(), p, f, nil)
			if r != nil {
				fmt.Fprintf(a.stdout, "report: %s\n", filepath.Join(dir, reports.FileHTML))
			}
			return err
		},
	}
	f.add(cmd)
	return cmd
}

func (a *app) loadPlan(name string, f runFlags) (*scenarios.Plan, error) {
	i, n, err := scenarios.ParseShard(f.shard, func(k string) string { return a.env[k] })
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	opts := scenarios.PlanOptions{Shard: i, Shards: n}
	if f.duration != "" {
		if err := opts.Duration.UnmarshalText([]byte(f.duration)); err != nil || opts.Duration <= 0 {
			return nil, usageErrorf("--duration %q: must be a positive duration such as 30s or 5m", f.duration)
		}
	}
	s, warnings, err := scenarios.Load(name)
	for _, w := range warnings {
		fmt.Fprintln(a.stderr, warningLine(w))
	}
	if err != nil {
		return nil, invalidScenario(a.stderr, name, err)
	}
	p, err := scenarios.Compile(s, opts)
	if err != nil {
		return nil, withCode(exitInvalidScenario, err)
	}
	return p, nil
}

// runPlan runs a plan, writes its report and maps the outcome to an exit code.
// The report is written even when the run was interrupted.
func (a *app) runPlan(ctx context.Context, p *scenarios.Plan, f runFlags, adjust func(*reports.Meta)) (*reports.Report, string, error) {
	fmt.Fprintf(a.stderr, "running %s: %d devices for %s (shard %d of %d)\n", p.Name, p.Len(), p.Duration, p.Shard, p.Shards)
	var progress func(fleet.Progress)
	every := f.every
	if !f.quiet {
		tty := isTerminal(a.stderr)
		if every <= 0 {
			every = 10 * time.Second
			if tty {
				every = time.Second
			}
		}
		progress = func(pr fleet.Progress) { printProgress(a.stderr, pr, tty) }
	}
	r, res, dir, err := a.executePlan(ctx, p, f, progress, every, adjust)
	if !f.quiet && isTerminal(a.stderr) {
		fmt.Fprintln(a.stderr)
	}
	if err != nil {
		return nil, dir, err
	}
	if err := reports.WriteMarkdown(a.stdout, r); err != nil {
		return nil, dir, err
	}
	if d := res.Delivery; d.Checked {
		fmt.Fprintf(a.stdout, "\ndelivery: %d messages acknowledged, %d stored by the hub, %d lost, %d extra\n", d.Acked, d.Stored, d.Lost, d.Extra)
	}
	if res.Interrupted {
		return r, dir, withCode(exitAborted, errors.New("the run was interrupted; the report covers what ran"))
	}
	if err := r.Check(); err != nil {
		return r, dir, withCode(exitThresholds, err)
	}
	return r, dir, nil
}

// executePlan runs a plan and writes its report directory, printing nothing
// but its warnings; progress, when set, hears about the fleet every interval.
func (a *app) executePlan(ctx context.Context, p *scenarios.Plan, f runFlags, progress func(fleet.Progress), every time.Duration, adjust func(*reports.Meta)) (*reports.Report, *fleet.Result, string, error) {
	runID := time.Now().UTC().Format("20060102T150405Z") + "-" + p.Name
	if p.Shards > 1 {
		runID += fmt.Sprintf("-shard-%dof%d", p.Shard, p.Shards)
	}
	dir := f.out
	if dir == "" {
		dir = filepath.Join("reports", runID)
	}
	opts := fleet.Options{SkipPreflight: f.force, Target: fleet.TargetOptions{Env: func(k string) string { return a.env[k] }, Dir: dir},
		Progress: progress, ProgressEvery: every,
		Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	res, err := fleet.Run(ctx, p, opts)
	if err != nil {
		var pe *fleet.PreflightError
		if errors.As(err, &pe) {
			return nil, nil, dir, withCode(exitUsage, fmt.Errorf("%w (or pass --force)", err))
		}
		if fleet.Unreachable(err) {
			return nil, nil, dir, withCode(exitUnreachable, err)
		}
		return nil, nil, dir, err
	}
	meta := reportMeta(p, res, runID)
	if adjust != nil {
		adjust(&meta)
	}
	r, err := reports.Build(reports.Input{Run: res.Run, Meta: meta})
	if err != nil {
		return nil, nil, dir, err
	}
	if err := reports.WriteDir(dir, r); err != nil {
		return nil, nil, dir, err
	}
	return r, res, dir, nil
}

// reportMeta describes a run for its report from its plan.
func reportMeta(p *scenarios.Plan, res *fleet.Result, runID string) reports.Meta {
	m := reports.Meta{
		RunID: runID, Scenario: p.Name, Seed: p.Seed, Shard: p.Shard, Shards: p.Shards,
		Started: res.Started, Duration: res.Duration, Target: res.Target, Thresholds: p.Thresholds,
	}
	for _, pr := range p.Profiles {
		pm := reports.ProfileMeta{Name: pr.Name, Protocol: string(pr.Protocol), Link: pr.Link.Base}
		if pr.Link.Custom {
			pm.Link += " (customised)"
		}
		if pr.DataPlan != nil {
			pm.DataPlan = int64(pr.DataPlan.PerMonth())
		}
		if pr.Billing != nil {
			pm.Billing = reports.Billing{Increment: int64(pr.Billing.Increment), Per: pr.Billing.Per}
		}
		m.Profiles = append(m.Profiles, pm)
	}
	for _, g := range p.Groups {
		m.Groups = append(m.Groups, reports.GroupMeta{Name: g.Name, Schedule: schedule(p, g)})
	}
	return m
}

// schedule is how often a group's devices do each operation per day, from the
// scenario, so that reports replay measured costs at the scenario's rates.
func schedule(p *scenarios.Plan, g scenarios.PlanGroup) reports.Schedule {
	const day = 24 * time.Hour
	perDay := func(every time.Duration) float64 {
		if every <= 0 {
			return 0
		}
		return float64(day) / float64(every)
	}
	var s reports.Schedule
	pr := p.Profile(g.Profile)
	if pr == nil {
		return s
	}
	in := func(groups []string) bool { return slices.Contains(groups, g.Name) }
	s.Firmware = pr.Firmware != ""
	b := pr.Behaviour
	if b != nil && b.Telemetry != nil {
		s.Telemetry = perDay(b.Telemetry.Interval.D()) * float64(max(b.Telemetry.Batch, 1))
	}
	if c := p.Cloud.C2D; c != nil && in(p.Cloud.C2DGroups) {
		s.C2D = c.Rate.PerSecond() * day.Seconds()
	}
	if pr.HTTPS.C2DPoll > 0 && pr.Protocol == "https" {
		s.C2DPolls = perDay(pr.HTTPS.C2DPoll.D())
	}
	if m := p.Cloud.Methods; m != nil && in(p.Cloud.MethodGroups) {
		s.Methods = m.Rate.PerSecond() * day.Seconds()
	}
	if d := p.Cloud.Desired; d != nil && in(p.Cloud.DesiredGroups) {
		s.Twin = d.Rate.PerSecond() * day.Seconds()
		if b != nil && b.OnDesired == "report" {
			s.Twin *= 2 // the update and the reported patch that echoes it
		}
	}
	if pr.HTTPS.NewConnectionPerRequest && (pr.Protocol == "https" || pr.Protocol == "eventhubs-https") {
		s.Connections = s.Telemetry/float64(max(b.Telemetry.Batch, 1)) + s.C2DPolls
	}
	// MQTT has no in-band renewal: each token renewal is a reconnect.
	if (pr.Protocol == "mqtt" || pr.Protocol == "mqtt-ws") && pr.Auth == "sas" && pr.RenewAt > 0 {
		s.TokenRenewals = perDay(time.Duration(float64(pr.TokenTTL.D()) * pr.RenewAt))
	}
	return s
}

// printProgress writes one progress line: rewritten in place on a terminal,
// one plain line per interval otherwise (CI logs).
func printProgress(w io.Writer, p fleet.Progress, tty bool) {
	var states []string
	for _, s := range metrics.States() {
		if n := p.Sample.Count(s); n > 0 {
			states = append(states, fmt.Sprintf("%d %s", n, s))
		}
	}
	errs := uint64(0)
	var kinds []string
	for k, n := range p.Errors {
		errs += n
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	line := fmt.Sprintf("%s elapsed, %s left | devices: %s | messages %d | ip %s | errors %d",
		p.Elapsed.Truncate(time.Second), p.Remaining.Truncate(time.Second), strings.Join(states, ", "), p.Sample.D2CSent, humanBytes(p.Sample.IPBytes), errs)
	if len(kinds) > 0 {
		line += " (" + strings.Join(kinds, ", ") + ")"
	}
	if tty {
		fmt.Fprintf(w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(w, line)
	}
}

func humanBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

func isTerminal(w io.Writer) bool {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
