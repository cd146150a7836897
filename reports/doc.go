// Package reports owns the report model and its writers (JSON, HTML, CSV, Markdown,
// JUnit), threshold evaluation, and merging shard reports.
package reports
