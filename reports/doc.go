// Package reports owns what a run's measurements become for people and for
// CI: the report model (report.json; every field is documented in SCHEMA.md), the data-budget
// projections, threshold evaluation, the writers of report.json, summary.md,
// devices.csv, junit.xml and report.html, the merge of shard reports, the
// diff of two reports, and the protocol comparison table.
//
// # One way in, one way to sum
//
//	metrics.Run ──Build──▶ raw: devices (bytes per layer × direction × class,
//	                            connections, counts, errors, energy),
//	                            HDR latency histograms, bucketed timeline
//	report.json ──Read───▶ raw (checked)
//	shards      ──Merge──▶ raw (devices joined, histograms merged, timelines added)
//	                        │
//	                        ▼ summarize: the one function that derives every
//	                          projection, aggregate, budget verdict and threshold result
//	                        │
//	    WriteJSON · WriteMarkdown · WriteCSV · WriteJUnit · WriteHTML   (WriteDir: all five)
//
// Because the aggregates are always recomputed from the raw part, a merged
// report is built exactly as a single-process one: the tests build a fleet
// whole and in three shards and compare the JSON.
//
// # Projections
//
// A run is minutes long; data plans are monthly. A device's bytes per day
// are its bytes × 24 h / the measured duration, its bytes per month that × 30.
// Both are projections and are labelled so in every output (the "projected"
// objects of report.json, the headings of summary.md and report.html, the
// "projected_" columns of devices.csv). Carriers bill IP bytes in both
// directions rounded up to an increment (spec: catm-model §5): per session
// (a data session is rated at least once a day, so 30 roundings a month; the
// run does not yet count PDN re-attaches, which would add roundings), per
// message, or per month. Battery life is projected for the profile's battery,
// or DefaultBatteryMAh.
//
// # Thresholds
//
// [Evaluate] holds each threshold of the scenario (grammar: package
// internal/metricdef) against the metric it names, computed from the report:
// byte metrics and budgets have one value per device, latencies come from the
// merged HDR histograms, counters sum devices, rates divide failures by
// attempts. Percentiles of per-device values interpolate between ranks as
// k6's do; latency percentiles are read from HDR histograms with three
// significant digits, so they are the top of their bucket (within 0.1 %). A
// key that matches no data fails as "no data"; an unknown metric or tag is an
// error. An error kind no device met counts zero, since kinds are open-ended. [Report.Check] returns a [*BreachError] matching
// [ErrThresholdsBreached] (exit code 99 in sim) whose text is one line, e.g.
//
//	2 of 5 thresholds breached: ip_bytes_per_device_day{protocol:mqtt} p(95) < 150KB (observed 182.4KB); …
//
// # Charts
//
// report.html inlines hand-written SVG charts (bytes per protocol by layer,
// IP bytes by operation, budget burn against the plan, latency percentiles,
// devices over time) and inline styles: it opens offline, from a CI artifact,
// with nothing fetched.
package reports
