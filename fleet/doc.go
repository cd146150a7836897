// Package fleet owns turning a scenario plan into running devices: expansion into
// devices with per-device seeds, shards, the arrival schedule, device lifecycles, and
// the cloud-side drivers (C2D, methods, desired properties).
package fleet
