package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command with its side effects passed in; it returns the exit
// code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleetscale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := config{}
	var protos, format, cpuProfile, from string
	fs.IntVar(&c.Devices, "devices", 20000, "devices in the fleet")
	fs.StringVar(&protos, "protocol", "mqtt", "mqtt, amqp or https; a comma-separated list runs each in a process of its own")
	fs.DurationVar(&c.Duration, "duration", 90*time.Second, "length of the run")
	fs.DurationVar(&c.Ramp, "ramp", 30*time.Second, "span the arrivals are spread over; 0: all at once")
	fs.DurationVar(&c.Interval, "interval", 30*time.Second, "telemetry period of each device")
	fs.StringVar(&c.Link, "link", "fast", "fast (no radio delays), or a built-in link profile: good, typical, poor")
	fs.StringVar(&c.Transport, "transport", "memory", "memory (no file descriptors) or tcp (loopback sockets, two files per device)")
	fs.Uint64Var(&c.Seed, "seed", 1, "scenario seed")
	fs.DurationVar(&c.Settle, "settle", 5*time.Second, "wait after the last first connect before reading the steady-state memory")
	fs.DurationVar(&c.Every, "every", 250*time.Millisecond, "how often the fleet's state and the process are sampled")
	fs.BoolVar(&c.SkipPreflight, "force", false, "run even when the fleet's preflight says the machine is too small")
	fs.StringVar(&format, "format", "text", "text, markdown or json")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a heap profile, taken at the steady-state reading, to this file (and the goroutines to FILE.goroutines.txt)")
	fs.StringVar(&from, "from", "", "print the table of earlier -format json runs, from these comma-separated files, instead of running")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetscale takes no arguments (got %q); see -help\n", fs.Args())
		return 2
	}
	if format != "text" && format != "markdown" && format != "json" {
		fmt.Fprintf(stderr, "-format %q: choose text, markdown or json\n", format)
		return 2
	}
	list := strings.Split(protos, ",")
	var all []*figures
	if from != "" {
		for _, name := range strings.Split(from, ",") {
			b, err := os.ReadFile(name)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			var f figures
			if err := json.Unmarshal(b, &f); err != nil {
				fmt.Fprintf(stderr, "%s: not the figures of one run: %v\n", name, err)
				return 1
			}
			all = append(all, &f)
		}
	} else if len(list) > 1 {
		if cpuProfile != "" || c.MemProfile != "" {
			fmt.Fprintln(stderr, "profiles are written for one protocol at a time: pass one -protocol with -cpuprofile or -memprofile")
			return 2
		}
		for _, p := range list {
			c.Protocol = strings.TrimSpace(p)
			if err := c.check(); err != nil {
				fmt.Fprintln(stderr, err)
				return 2
			}
		}
		// Each protocol runs in a fresh process: peak RSS and the heap the
		// runtime keeps are per process, so a run after another would read
		// the first one's leftovers.
		for _, p := range list {
			f, err := child(ctx, args, strings.TrimSpace(p), stderr)
			if err != nil {
				fmt.Fprintf(stderr, "measuring %s: %v\n", p, err)
				return 1
			}
			all = append(all, f)
		}
	} else {
		c.Protocol = strings.TrimSpace(list[0])
		if err := c.check(); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if cpuProfile != "" {
			out, err := os.Create(cpuProfile)
			if err != nil {
				fmt.Fprintf(stderr, "writing the CPU profile: %v\n", err)
				return 1
			}
			defer out.Close()
			if err := pprof.StartCPUProfile(out); err != nil {
				fmt.Fprintf(stderr, "writing the CPU profile: %v\n", err)
				return 1
			}
			defer pprof.StopCPUProfile()
		}
		fmt.Fprintf(stderr, "fleetscale: %d %s devices, ramp %s, run %s, telemetry every %s, link %s, transport %s\n",
			c.Devices, c.Protocol, c.Ramp, c.Duration, c.Interval, c.Link, c.Transport)
		f, err := measure(ctx, c)
		if err != nil {
			fmt.Fprintf(stderr, "measuring %s: %v\n", c.Protocol, err)
			return 1
		}
		all = append(all, f)
	}
	switch format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(all) == 1 {
			_ = enc.Encode(all[0])
		} else {
			_ = enc.Encode(all)
		}
	case "markdown":
		writeTable(stdout, all, true)
	default:
		writeTable(stdout, all, false)
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// child measures one protocol in a new process of this program.
func child(ctx context.Context, args []string, protocol string, stderr io.Writer) (*figures, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// Later flags win, so the child's protocol and format replace the
	// parent's.
	cargs := append(slices.Clone(args), "-protocol", protocol, "-format", "json")
	cmd := exec.CommandContext(ctx, exe, cargs...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	var f figures
	if err := json.Unmarshal(out.Bytes(), &f); err != nil {
		return nil, fmt.Errorf("reading the child's figures: %w", err)
	}
	return &f, nil
}

// writeTable prints one column per measurement.
func writeTable(w io.Writer, all []*figures, markdown bool) {
	type row struct {
		name string
		cell func(*figures) string
	}
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	kib := func(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }
	rows := []row{
		{"devices", func(f *figures) string { return fmt.Sprint(f.Devices) }},
		{"protocol", func(f *figures) string { return f.Protocol }},
		{"link / transport", func(f *figures) string { return f.Link + " / " + f.Transport }},
		{"open files before / peak", func(f *figures) string { return fmt.Sprintf("%d / %d", f.FilesBefore, f.FilesPeak) }},
		{"live heap before / steady", func(f *figures) string { return mib(f.HeapBefore) + " / " + mib(f.HeapSteady) }},
		{"heap objects peak", func(f *figures) string { return mib(f.HeapPeak) }},
		{"RSS before / steady / peak", func(f *figures) string {
			return mib(f.RSSBefore) + " / " + mib(f.RSSSteady) + " / " + mib(f.RSSPeak)
		}},
		{"steady state read at", func(f *figures) string {
			s := fmt.Sprintf("%s, %d connected", f.SteadyAt, f.ConnectedSteady)
			if !f.Steady {
				s += " (not all)"
			}
			return s
		}},
		{"live heap per connected device", func(f *figures) string { return kib(f.HeapPerDevice()) }},
		{"goroutine stacks per connected device", func(f *figures) string { return kib(f.StacksPerDevice()) }},
		{"RSS per connected device", func(f *figures) string { return kib(f.RSSPerDevice()) }},
		{"peak RSS per device", func(f *figures) string { return kib(f.PeakRSSPerDevice()) }},
		{"goroutines per connected device", func(f *figures) string { return fmt.Sprintf("%.1f", f.GoroutinesPerDevice()) }},
		{"arrivals over", func(f *figures) string { return f.RampOffered }},
		{"connected (max) after", func(f *figures) string { return fmt.Sprintf("%d after %s", f.Connected, f.RampTook) }},
		{"connects/s over the ramp / fastest second", func(f *figures) string {
			return fmt.Sprintf("%.0f / %.0f", f.ConnectsPerS, f.PeakPerS)
		}},
		{"connect latency p50 / p99", func(f *figures) string { return f.ConnectP50 + " / " + f.ConnectP99 }},
		{"connect failures", func(f *figures) string { return fmt.Sprint(f.ConnectFailed) }},
		{"messages sent / acked / stored", func(f *figures) string {
			return fmt.Sprintf("%d / %d / %d", f.Attempted, f.Acked, f.Stored)
		}},
		{"messages lost / extra / failed", func(f *figures) string { return fmt.Sprintf("%d / %d / %d", f.Lost, f.Extra, f.Failed) }},
		{"errors", func(f *figures) string { return errorList(f.Errors) }},
		{"run / wall", func(f *figures) string { return f.Run + " / " + f.Wall }},
	}
	if markdown {
		fmt.Fprint(w, "| figure |")
		for _, f := range all {
			fmt.Fprintf(w, " %s |", f.Protocol)
		}
		fmt.Fprint(w, "\n| --- |")
		for range all {
			fmt.Fprint(w, " --- |")
		}
		fmt.Fprintln(w)
		for _, r := range rows {
			fmt.Fprintf(w, "| %s |", r.name)
			for _, f := range all {
				fmt.Fprintf(w, " %s |", r.cell(f))
			}
			fmt.Fprintln(w)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprint(tw, r.name)
		for _, f := range all {
			fmt.Fprint(tw, "\t", r.cell(f))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

func errorList(errs map[string]uint64) string {
	if len(errs) == 0 {
		return "none"
	}
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, errs[k])
	}
	return b.String()
}
