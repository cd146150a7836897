// Package metricdef owns the names of what a run reports — the metric
// catalogue with each metric's type, unit and tags — and the grammar of the
// thresholds a scenario sets on them. The scenarios package checks thresholds
// with it; the metrics and reports packages record and evaluate with it, so a
// name means the same thing everywhere.
//
// Thresholds use k6's small grammar, with units added:
//
//	key         = metric [ "{" tag ":" tagvalue { "," tag ":" tagvalue } "}" ]
//	threshold   = aggregation op value
//	aggregation = "avg" | "min" | "max" | "med" | "p(" number ")"
//	            | "count" | "rate" | "value"
//	op          = "<" | "<=" | ">" | ">=" | "==" | "!="
//	value       = number [ unit ]
//	unit        = "B" | "KB" | "MB" | "GB"   (1024-based, as carriers bill)
//	            | "ms" | "s" | "m" | "h"
//	            | "%"
//	number      = [ "-" | "+" ] digits [ "." digits ] [ ( "e" | "E" ) [ "-" | "+" ] digits ]
//
// Blanks are allowed between the parts. A value is converted to the metric's
// base unit (bytes, seconds, a fraction for %), so "p(95) < 150KB" compares
// with 153600 and "avg < 500ms" with 0.5.
//
// Which aggregations fit which metric type:
//
//	trend    avg, min, max, med, p(N)   one value per device or per operation
//	counter  count, rate                rate is per second of the run
//	rate     rate                       the fraction of events that failed, 0..1
//
// "value" is part of k6's grammar for gauges; no metric here is a gauge, so it
// never fits. A unit must fit the metric's unit: a size on a latency is an
// error, and so is a duration on a byte count.
package metricdef
