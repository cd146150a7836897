// Package fleet owns turning a scenario plan into running devices: expansion into
// devices with per-device seeds, shards, the arrival schedule, device lifecycles,
// the devices' firmware (a WebAssembly instance per device, see package firmware),
// and the cloud-side drivers (C2D, methods, desired properties).
package fleet
