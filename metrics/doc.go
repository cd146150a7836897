// Package metrics owns what is measured while a fleet runs — per device: its
// byte ledger (package network), counters, state, errors and energy; per group
// and protocol: latency histograms (HDR, so shards merge exactly); for the run:
// a bounded timeline of device states — and nothing about how it is shown,
// which is package reports' business.
//
// Memory stays bounded however many devices run: a device costs its ledger and
// a handful of counters, histograms are per group, and the timeline halves its
// resolution instead of growing.
package metrics
