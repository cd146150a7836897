package firmware

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// The host functions of ABI v1. Each finds its device's Instance in the
// call's context, checks every pointer and length against the calling
// module's memory, and copies what it hands on. A pointer outside memory
// panics with an *ABIError, which wazero turns into a trap of that call, so
// the device fails and nothing else does. Anything else a module gets wrong
// (too large, not JSON, a bad duration) is a Code the firmware can handle.

func instanceFrom(ctx context.Context) *Instance {
	in, ok := ctx.Value(instanceKey{}).(*Instance)
	if !ok {
		panic(fmt.Errorf("firmware host function called outside an instance's call"))
	}
	return in
}

// read returns the module's memory at [ptr, ptr+n), or traps the call.
func read(mod api.Module, fn, what string, ptr, n uint32) []byte {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		panic(&ABIError{Func: fn, Msg: fmt.Sprintf("%s [%d, +%d) is outside the module's %d-byte memory",
			what, ptr, n, mod.Memory().Size())})
	}
	return b
}

func ret(stack []uint64, c Code) { stack[0] = api.EncodeI32(int32(c)) }

// send_telemetry(body_ptr, body_len, props_ptr, props_len) -> code
func hostSendTelemetry(ctx context.Context, mod api.Module, stack []uint64) {
	in := instanceFrom(ctx)
	body := read(mod, "send_telemetry", "body", api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	raw := read(mod, "send_telemetry", "properties", api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))
	if len(body) > MaxTelemetryBytes || len(raw) > MaxPropertiesBytes {
		ret(stack, CodeTooLarge)
		return
	}
	props, ok := decodeProperties(raw)
	if !ok {
		ret(stack, CodeInvalid)
		return
	}
	ret(stack, in.host.SendTelemetry(ctx, bytes.Clone(body), props))
}

// report_properties(patch_ptr, patch_len) -> code
func hostReportProperties(ctx context.Context, mod api.Module, stack []uint64) {
	in := instanceFrom(ctx)
	patch := read(mod, "report_properties", "patch", api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	switch {
	case len(patch) > MaxReportedBytes:
		ret(stack, CodeTooLarge)
	case !isJSONObject(patch):
		ret(stack, CodeInvalid)
	default:
		ret(stack, in.host.ReportProperties(ctx, bytes.Clone(patch)))
	}
}

// method_response(body_ptr, body_len) -> code
func hostMethodResponse(ctx context.Context, mod api.Module, stack []uint64) {
	in := instanceFrom(ctx)
	body := read(mod, "method_response", "body", api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	switch {
	case !in.inMethod:
		ret(stack, CodeInvalid)
	case len(body) > MaxResponseBytes:
		ret(stack, CodeTooLarge)
	case !json.Valid(body):
		ret(stack, CodeInvalid)
	default:
		in.response = bytes.Clone(body)
		ret(stack, CodeOK)
	}
}

// set_timer(delay_ms) -> code; a negative delay cancels.
func hostSetTimer(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceFrom(ctx)
	ms := int64(stack[0])
	switch {
	case ms > maxDelayMillis:
		ret(stack, CodeInvalid)
	case ms < 0:
		ret(stack, in.host.SetTimer(ctx, -1))
	default:
		ret(stack, in.host.SetTimer(ctx, time.Duration(ms)*time.Millisecond))
	}
}

// sleep(duration_ms) -> code
func hostSleep(ctx context.Context, _ api.Module, stack []uint64) {
	in := instanceFrom(ctx)
	ms := int64(stack[0])
	if ms <= 0 || ms > maxDelayMillis {
		ret(stack, CodeInvalid)
		return
	}
	ret(stack, in.host.Sleep(ctx, time.Duration(ms)*time.Millisecond))
}

// clock_ms() -> unix_ms
func hostClock(ctx context.Context, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeI64(instanceFrom(ctx).host.Now().UnixMilli())
}

// log(level, msg_ptr, msg_len)
func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	in := instanceFrom(ctx)
	msg := read(mod, "log", "message", api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
	if len(msg) > MaxLogBytes {
		msg = msg[:MaxLogBytes]
	}
	in.host.Log(slogLevel(api.DecodeI32(stack[0])), strings.ToValidUTF8(string(msg), "\uFFFD"))
}

func slogLevel(l int32) slog.Level {
	switch {
	case l <= LogDebug:
		return slog.LevelDebug
	case l == LogInfo:
		return slog.LevelInfo
	case l == LogWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// sensor(id) -> value
func hostSensor(ctx context.Context, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeF64(instanceFrom(ctx).host.Sensor(api.DecodeI32(stack[0])))
}

// isJSONObject reports whether b is one valid JSON object, as a twin patch
// must be.
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}
