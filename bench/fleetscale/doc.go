// Command fleetscale measures what a fleet costs the machine that runs it: it
// runs one protocol's devices in this process against the embedded hub and
// prints the open files, memory, connect rate and delivery it took.
//
//	go run ./bench/fleetscale -devices 20000 -protocol mqtt
//
// The fleet is an ordinary scenario, written as YAML text and compiled with
// scenarios.Parse and scenarios.Compile as sim run does, and run with
// fleet.Run; nothing about the fleet is special-cased for measuring.
//
// Memory is read three ways, because each answers another question:
//
//   - live heap after a forced GC once every device is connected, less the
//     same before the run: what the devices and their side of the hub hold
//     (the figure for fleet's preflight estimate, before GC headroom);
//   - RSS at that moment, less RSS before: what the process really took,
//     GC headroom and runtime overhead included;
//   - peak RSS (VmHWM) over the whole run: what a container limit must allow,
//     since connects, TLS handshakes and teardown make garbage the steady
//     state does not.
//
// The connect rate is the devices that completed their first connect divided
// by the time from the first arrival to the last of them; against the
// arrival ramp it says whether connects kept up with arrivals. With -ramp 0
// every device arrives at once and the rate is the most the process manages.
package main
