package firmware_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/catmsim/catmsim/firmware"
)

// printHost is the smallest useful Host: it prints what the firmware does.
type printHost struct{}

func (printHost) SendTelemetry(_ context.Context, body []byte, props []firmware.Property) firmware.Code {
	fmt.Printf("send %s %v\n", body, props)
	return firmware.CodeOK
}
func (printHost) ReportProperties(_ context.Context, patch []byte) firmware.Code {
	fmt.Printf("report %s\n", patch)
	return firmware.CodeOK
}
func (printHost) SetTimer(_ context.Context, d time.Duration) firmware.Code {
	fmt.Printf("timer %v\n", d)
	return firmware.CodeOK
}
func (printHost) Sleep(_ context.Context, d time.Duration) firmware.Code {
	fmt.Printf("sleep %v\n", d)
	return firmware.CodeOK
}
func (printHost) Now() time.Time                   { return time.Unix(1700000000, 0) }
func (printHost) Log(level slog.Level, msg string) { fmt.Println(level, msg) }
func (printHost) Sensor(id int32) float64          { return []float64{23.45, 51, 3.7}[id%3] }

// A device's life with the C sensor node: compile the module once, give the
// device its own instance, and deliver its events.
func Example() {
	ctx := context.Background()
	wasm, err := os.ReadFile("examples/c/sensornode.wasm")
	if err != nil {
		log.Fatal(err)
	}
	m, err := firmware.Compile(ctx, wasm, firmware.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)

	in, err := m.Instantiate(ctx, "fipy-001", printHost{}, firmware.Limits{})
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close(ctx)

	_ = in.Init(ctx)    // connected: report the firmware version, arm the timer
	_ = in.OnTimer(ctx) // the timer fired: a reading
	status, resp, _ := in.OnMethod(ctx, "setInterval", []byte(`{"interval":300}`))
	fmt.Println(status, string(resp))
	// Output:
	// report {"firmware":"1.0.0","interval":30,"sleep":false}
	// timer 30s
	// send {"temperature":23.5,"humidity":51,"seq":0} []
	// timer 30s
	// timer 5m0s
	// report {"interval":300,"sleep":false}
	// 200 {"interval":300}
}
