// Command sim runs fleets of simulated cellular IoT devices against Azure IoT Hub or
// the IoT Hub emulator built into it, and reports what each protocol costs in bytes,
// latency, battery and failures. Run "sim --help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
