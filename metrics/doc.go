// Package metrics owns what is measured while a fleet runs — byte ledgers, message
// counts, latency histograms, errors, radio time and energy — and nothing about how
// it is shown.
package metrics
