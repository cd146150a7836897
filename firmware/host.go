package firmware

import (
	"bytes"
	"context"
	"log/slog"
	"time"
)

// Host is what a device offers its firmware: the fleet implements it once per
// device. The firmware calls it synchronously, on the goroutine that called
// the Instance's entry point, while that call's time limit runs; a method that
// waits for the network spends the firmware's time, so a host queues work
// (telemetry, reported properties) and returns rather than waiting for the
// hub's acknowledgement. A Host must not call back into the Instance.
//
// Byte slices handed to a Host are copies it may keep.
type Host interface {
	// SendTelemetry sends one device-to-cloud message.
	SendTelemetry(ctx context.Context, body []byte, props []Property) Code
	// ReportProperties patches the twin's reported properties with a JSON
	// object.
	ReportProperties(ctx context.Context, patch []byte) Code
	// SetTimer arms the device's one timer to call OnTimer after d, replacing
	// any timer still pending; a negative d cancels it.
	SetTimer(ctx context.Context, d time.Duration) Code
	// Sleep asks the device to disconnect and sleep for d once the current
	// call has returned and what it sent has been handled, and then to wake,
	// reconnect and call OnWake. Sleeping cancels a pending timer.
	Sleep(ctx context.Context, d time.Duration) Code
	// Now is the device's clock.
	Now() time.Time
	// Log records a line the firmware logged, at most MaxLogBytes long.
	Log(level slog.Level, msg string)
	// Sensor reads the simulated sensor id (SensorTemperature, …).
	Sensor(id int32) float64
}

// Property is one application property of a message, as the name/value pair
// IoT Hub carries.
type Property struct {
	Name, Value string
}

// encodeProperties writes properties in the ABI's form, name NUL value NUL
// repeated, into dst, which holds encodedPropertiesLen(props) bytes. A
// property whose name or value holds a NUL cannot be written that way and is
// left out; IoT Hub forbids control characters in property names, and a value
// with a NUL would end early.
func encodeProperties(dst []byte, props []Property) {
	n := 0
	for _, p := range props {
		if p.Name == "" || hasNUL(p.Name) || hasNUL(p.Value) {
			continue
		}
		n += copy(dst[n:], p.Name)
		dst[n] = 0
		n++
		n += copy(dst[n:], p.Value)
		dst[n] = 0
		n++
	}
}

func encodedPropertiesLen(props []Property) int {
	n := 0
	for _, p := range props {
		if p.Name == "" || hasNUL(p.Name) || hasNUL(p.Value) {
			continue
		}
		n += len(p.Name) + len(p.Value) + 2
	}
	return n
}

func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// decodeProperties reads properties in the ABI's form. The NUL after the last
// value may be left out, as C firmware writing "name\0value" with sizeof-1
// does. It returns false for an empty name or a name with no value. The
// number of properties is bounded by the input's length (each takes at least
// two bytes), so the allocation is too.
func decodeProperties(b []byte) ([]Property, bool) {
	if len(b) == 0 {
		return nil, true
	}
	if b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	fields := bytes.Count(b, []byte{0}) + 1
	if fields%2 != 0 {
		return nil, false
	}
	props := make([]Property, 0, fields/2)
	for range fields / 2 {
		name, rest, _ := bytes.Cut(b, []byte{0})
		value, rest, _ := bytes.Cut(rest, []byte{0})
		if len(name) == 0 {
			return nil, false
		}
		props = append(props, Property{Name: string(name), Value: string(value)})
		b = rest
	}
	return props, true
}
