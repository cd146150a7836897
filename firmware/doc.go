// Package firmware owns running a device's own logic as WebAssembly: the
// versioned host ABI documented here, compiling a module once and
// instantiating it per device under wazero with a memory and a time limit,
// and the example firmware under examples/.
//
// A scenario profile may name a .wasm module instead of a declarative
// behaviour. The fleet compiles it once (Compile), gives every device its own
// Instance (Module.Instantiate) with a Host of its own, and delivers the
// device's events to the instance's entry points. The firmware decides what
// to send, when, how big, how to answer, and when to sleep, so a run's byte
// and battery figures are those of the firmware's logic.
//
//	fleet (one device)                      firmware instance (wasm)
//	──────────────────                      ────────────────────────
//	first connect ──── Init ──────────────▶ catmsim_init
//	timer fires ────── OnTimer ───────────▶ catmsim_on_timer
//	woke, reconnected  OnWake ────────────▶ catmsim_on_wake
//	C2D message ────── OnC2D ─────────────▶ catmsim_on_c2d ──▶ outcome
//	direct method ──── OnMethod ──────────▶ catmsim_on_method ─▶ status (+ method_response)
//	desired patch ──── OnDesired ─────────▶ catmsim_on_desired
//	                                              │ calls back, during the call:
//	Host.SendTelemetry ◀── send_telemetry ────────┤
//	Host.ReportProperties ◀── report_properties ──┤
//	Host.SetTimer / Sleep ◀── set_timer / sleep ──┤
//	Host.Now / Sensor / Log ◀── clock_ms / sensor / log
//
// # In a fleet
//
// A profile names its module as a path relative to the scenario, or as a
// built-in example, example:c/sensornode.wasm or
// example:assemblyscript/sensornode.wasm (package firmware/examples). sim
// validate and sim run compile every module before any device starts. A
// profile's firmware_limits (memory, call_timeout) replace the default
// Limits for its devices. Then, per device (package fleet):
//
//   - catmsim_init runs once the device first connects; catmsim_on_wake after
//     each reconnection that ends a sleep the firmware asked for. A
//     reconnection after a dropped connection calls nothing: the firmware's
//     timer and state carry on.
//   - send_telemetry and report_properties queue what they are given (up to
//     64 items, then -3 throttled) and return; the device sends the queue in
//     order once the call returns, and the hub's answers are the device's
//     measurements (latency, errors), not the firmware's return codes. Both
//     return -2 disconnected while the device is not connected, and
//     report_properties returns -6 on a protocol without twins (HTTPS). A
//     telemetry body that is valid JSON goes out as application/json, as
//     declarative JSON telemetry does, so a firmware and its declarative twin
//     cost the same bytes.
//   - The timer fires only while the device is connected: one that comes due
//     while it reconnects fires once it is back.
//   - Reports cannot know a firmware's pace, so its telemetry and twin bytes
//     are projected with the measured time, except what catmsim_init sent,
//     which recurs only when the device restarts and is counted once a month.
//   - A device subscribes to C2D, methods and desired properties only when its
//     module has the handler and the scenario's cloud drivers send it that
//     kind; HTTPS devices poll for C2D only when the module handles it.
//   - sensor reads seeded random walks: temperature from 15–25 °C by ±0.3 per
//     read, humidity from 40–60 % by ±1, a battery from 4.1 V down by 0.2 mV
//     per read; the same seed reads the same values.
//   - A trap, a call over its time limit or memory past its limit fails that
//     device only: it closes its connection, counts one error of kind
//     firmware, and the report shows it failed, with the trap as its last
//     error.
//
// Measured with BenchmarkFirmwareFleet (go test -run '^$' -bench
// BenchmarkFirmwareFleet -benchtime 1x ./fleet): 1,000 MQTT devices running
// the C sensor node hold 182 KB of Go heap each against 77 KB for its
// declarative twin, so the firmware costs about 105 KB per device, 64 KiB of
// it the instance's linear memory.
//
// # Host ABI, version 1
//
// The ABI is plain wasm32 functions and linear memory, so firmware can be
// written in C, Rust, AssemblyScript, Zig or anything else that targets
// wasm32 without WASI. Pointers are i32 offsets into the module's memory,
// lengths are i32 byte counts, text is UTF-8, JSON is UTF-8 JSON.
//
// The module exports:
//
//	memory                                           its linear memory (required)
//	catmsim_abi_version() -> i32                     returns 1 (required)
//	catmsim_init()                                   the device has connected for the first time (required)
//	catmsim_on_timer()                               the timer set with set_timer fired
//	catmsim_on_wake()                                the device woke from sleep and is connected again
//	catmsim_on_c2d(body_ptr, body_len, props_ptr, props_len i32) -> i32 outcome
//	                                                 a cloud-to-device message; return 0 complete, 1 abandon, 2 reject
//	catmsim_on_method(name_ptr, name_len, payload_ptr, payload_len i32) -> i32 status
//	                                                 a direct method; the result is its status, the body is
//	                                                 what the module passed to method_response during the call
//	catmsim_on_desired(patch_ptr, patch_len i32, version i64)
//	                                                 a desired-properties patch (JSON) and its $version
//	catmsim_alloc(size i32) -> i32 ptr               memory for the host to copy an event's data into
//
// The handlers are optional: Module.Handles tells the fleet which a module
// has, so a device subscribes only to what its firmware answers, and a call
// for an event without a handler returns ErrNotHandled. Two pairings are
// required: a module importing set_timer must export catmsim_on_timer, one
// importing sleep must export catmsim_on_wake, and one with any handler that
// takes data must export catmsim_alloc.
//
// The host provides, from import module "catmsim":
//
//	send_telemetry(body_ptr, body_len, props_ptr, props_len i32) -> i32 code
//	                               send a device-to-cloud message with application properties
//	report_properties(patch_ptr, patch_len i32) -> i32 code
//	                               patch the twin's reported properties with a JSON object
//	method_response(body_ptr, body_len i32) -> i32 code
//	                               the JSON body answering the direct method being handled;
//	                               valid only inside catmsim_on_method, the last call wins
//	set_timer(delay_ms i64) -> i32 code
//	                               arm the one timer (replacing a pending one); negative cancels
//	sleep(duration_ms i64) -> i32 code
//	                               once this call returns and what it sent is handled, disconnect,
//	                               sleep (radio in PSM), then reconnect and call catmsim_on_wake;
//	                               a pending timer is cancelled
//	clock_ms() -> i64              the device's clock, Unix milliseconds
//	log(level, msg_ptr, msg_len i32)
//	                               a log line (0 debug, 1 info, 2 warn, 3 error), cut to 256 bytes
//	sensor(id i32) -> f64          read a simulated sensor: 0 temperature °C, 1 humidity %,
//	                               2 battery V; NaN for one the device does not have
//
// A module imports only the functions it uses; an import the ABI does not
// have, or one with another type, fails Compile.
//
// Codes are 0 for success and negative for failure: -1 failed, -2
// disconnected, -3 throttled, -4 too large, -5 invalid (not JSON, an odd
// property list, a bad duration, method_response outside a method), -6
// unsupported by the device's protocol (a twin over HTTPS). The host applies
// IoT Hub's limits before calling the Host: telemetry bodies up to 256 KiB,
// properties up to 8 KiB encoded, reported patches up to 32 KiB, method
// responses up to 128 KiB.
//
// Application properties travel in both directions as one byte string of
// fields, each ended by a NUL byte, alternating name and value:
// "temperatureAlert\x00true\x00". The last NUL may be left out, as C's
// sizeof-1 does. Names are not empty; a property whose name or value holds a
// NUL cannot be carried and is left out of what the host passes in.
//
// Memory passing. Before an event with data, the host calls catmsim_alloc
// once with the total size of that event's data and copies it there, name
// before payload, body before properties; the pointers it passes to the
// handler point into that block. The block need only stay valid until the
// handler returns, so one scratch region reused by every call is a complete
// allocator (the examples' is the memory above their static data). An
// allocator that returns 0 refuses: the event is not delivered and the call
// returns ErrNoRoom, the instance unharmed. Everything the module passes to
// the host is copied before the host function returns.
//
// # Limits and failures
//
// A module is at most 8 MiB. Compile walks its binary structure before
// wazero decodes it and rejects vector counts that cannot fit in the bytes
// after them, so a corrupt file fails the load instead of exhausting memory.
//
// Each instance has its own memory, bounded by Limits.MemoryPages (default
// 8 pages, 512 KiB, about an ESP32's SRAM): a module whose initial memory is
// larger fails Compile or Instantiate, and a memory.grow past the limit fails
// the call that made it once that call returns, whether or not the module
// coped with the -1. Each entry-point call is bounded by Limits.CallTimeout
// (default 1 s), host functions included, and stopped when it runs over
// (wazero's close-on-context-done). A wasm trap, a call past its time limit,
// memory past its limit, or a pointer and length outside the module's memory
// passed to a host function (the host checks every one) fail that instance
// with a *TrapError naming the device, the entry point, the reason and the
// wasm stack; every later call returns ErrFailed wrapping it. Nothing one
// instance does affects another.
//
// # Writing firmware
//
// C, freestanding (examples/c/sensornode.c, built by examples/c/build.sh):
//
//	__attribute__((import_module("catmsim"), import_name("send_telemetry")))
//	int send_telemetry(const char *body, int body_len, const char *props, int props_len);
//	__attribute__((export_name("catmsim_on_timer"))) void on_timer(void) { … }
//
//	clang --target=wasm32 -nostdlib -Oz -Wl,--no-entry -Wl,-z,stack-size=4096 \
//	      -Wl,--initial-memory=65536 -o fw.wasm fw.c
//
// AssemblyScript (examples/assemblyscript): declare imports with
// @external("catmsim", "send_telemetry"), export the handlers, build with
// --runtime stub and --use abort= (the default abort import is not part of
// the ABI), and keep buffers static so the stub runtime never runs out.
//
// Rust declares the same with #[link(wasm_import_module = "catmsim")]
// extern "C" { … } and #[no_mangle] pub extern "C" fn catmsim_on_timer(),
// built for wasm32-unknown-unknown as a cdylib.
//
// Go is not offered. A Go program built with GOOS=wasip1 GOARCH=wasm
// (-buildmode=c-shared, go:wasmexport) carries Go's runtime and garbage
// collector: a firmware with one exported function is a 1.85 MB module that
// takes 0.5 s to compile, starts with 32 pages and costs about 3.2 MB of heap
// per instance (2.3 MiB of it linear memory) and 3.5 ms to instantiate,
// measured with wazero 1.12 and Go 1.26. The C sensor node is a 3.6 KB module
// costing about 80 KB per instance (64 KiB of it its one page of linear
// memory, the least wasm allows) and 35 µs to instantiate and run its first
// two calls (BenchmarkInstantiate1000), so a fleet of ten thousand Go
// firmwares would need 32 GB where the C one needs 0.8 GB.
//
// # Versioning
//
// A module states its ABI version with catmsim_abi_version, which Compile
// calls once (after running the module's start function, before any device
// starts). This package speaks version 1 only; a later version will keep
// accepting version-1 modules or say plainly that it no longer does.
package firmware
