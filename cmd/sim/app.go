package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/spf13/cobra"
)

// Exit codes are stable and follow k6's, so CI habits carry over.
const (
	exitOK              = 0
	exitFailure         = 1   // the command ran and its answer is "no" (e.g. an invalid token)
	exitUsage           = 2   // bad flags or arguments, or a command this build does not have yet
	exitThresholds      = 99  // a run breached its thresholds
	exitInvalidScenario = 104 // the scenario file is invalid
	exitAborted         = 105 // the run was interrupted
	exitUnreachable     = 106 // the target could not be reached
)

// exitError carries an exit code up to run, which maps errors to codes once.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

func usageErrorf(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

// silentExit ends the command with a code after it has already said everything.
type silentExit int

func (s silentExit) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// env is the process environment as a lookup, so tests can pass their own.
type env map[string]string

func newEnv(kv []string) env {
	e := env{}
	for _, s := range kv {
		if k, v, ok := strings.Cut(s, "="); ok {
			e[k] = v
		}
	}
	return e
}

// app is what every command reads from and writes to; nothing touches os.* directly.
type app struct {
	ctx    context.Context
	env    env
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is the whole program behind a seam: arguments, environment and streams in,
// exit code out. main only supplies the real ones.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// A run's fleet logs from many goroutines and sim compare runs several
	// fleets at once: every write to the command's output goes through a lock.
	stdout, stderr = &lockedWriter{w: stdout}, &lockedWriter{w: stderr}
	a := &app{ctx: ctx, env: newEnv(environ), stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var s silentExit
	if errors.As(err, &s) {
		return int(s)
	}
	fmt.Fprintln(stderr, "sim: "+err.Error())
	var e *exitError
	if errors.As(err, &e) {
		if e.code == exitUsage {
			fmt.Fprintln(stderr, "Run 'sim --help' for usage.")
		}
		return e.code
	}
	if isFlagError(err) {
		fmt.Fprintln(stderr, "Run 'sim --help' for usage.")
		return exitUsage
	}
	return exitFailure
}

// isFlagError recognises cobra's and pflag's parse errors, which are plain
// errors; they are usage errors and exit 2.
func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument", "unknown command", "accepts ", "requires at least", "if any flags in the group", "none of the others can be"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sim",
		Short: "Simulate fleets of cellular IoT devices against Azure IoT Hub",
		Long: `sim runs fleets of virtual Pycom FiPy and ESP32 devices on modelled LTE CAT-M links.
Each device speaks real MQTT, AMQP or HTTPS — TLS, SAS tokens, twins, direct methods and
cloud-to-device messages — to Azure IoT Hub or to the IoT Hub emulator built into sim, and
every byte is counted at four layers (payload, protocol, TLS, IP) so you can see what each
protocol costs against a data plan, before you buy the plan.

With no target in the scenario, sim starts its embedded hub on loopback: nothing to set up.`,
		Example: `  # Run the 100-device quickstart against the embedded hub
  sim run scenarios/quickstart.yaml

  # Make a SAS token from a device connection string
  sim sas token --connection-string "HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=..."

  # Find out why the hub rejects a device's token
  sim sas verify --token "SharedAccessSignature sr=..." --key "$DEVICE_KEY"`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	root.AddGroup(&cobra.Group{ID: "run", Title: "Running fleets:"}, &cobra.Group{ID: "tools", Title: "Tools:"})
	root.AddCommand(a.runCommand(), a.compareCommand(), a.reportCommand(), a.validateCommand(), a.planCommand(), a.hubCommand(), a.sasCommand(), a.versionCommand())
	return root
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
