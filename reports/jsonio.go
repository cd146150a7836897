package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxReportBytes bounds what Read accepts: a report of a 100,000-device fleet
// is about 150 MB.
const MaxReportBytes = 512 << 20

// WriteJSON writes report.json: indented, with one device, histogram and
// timeline point per line, so a fleet's report stays readable and diffable.
func WriteJSON(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	field := func(name string, v any, last bool) error {
		b, err := marshal(v, "  ")
		if err != nil {
			return fmt.Errorf("writing report.json: %s: %w", name, err)
		}
		fmt.Fprintf(bw, "  %q: %s", name, b)
		if !last {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		return nil
	}
	lines := func(name string, n int, item func(i int) any, last bool) error {
		fmt.Fprintf(bw, "  %q: [", name)
		for i := range n {
			b, err := marshal(item(i), "")
			if err != nil {
				return fmt.Errorf("writing report.json: %s: %w", name, err)
			}
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n    ")
			bw.Write(b)
		}
		if n > 0 {
			bw.WriteString("\n  ")
		}
		bw.WriteByte(']')
		if !last {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		return nil
	}
	bw.WriteString("{\n")
	if err := errors.Join(
		field("schema_version", r.SchemaVersion, false),
		field("meta", r.Meta, false),
		field("summary", r.Summary, false),
		field("thresholds", nonNil(r.Thresholds), false),
		lines("devices", len(r.Devices), func(i int) any { return r.Devices[i] }, false),
		lines("latency", len(r.Latency), func(i int) any { return r.Latency[i] }, false),
	); err != nil {
		return err
	}
	fmt.Fprintf(bw, "  \"timeline\": {\n    \"bucket_ns\": %d,\n  ", r.Timeline.Bucket)
	pts := r.Timeline.Points
	if err := lines("points", len(pts), func(i int) any { return pts[i] }, true); err != nil {
		return err
	}
	bw.WriteString("  }\n}\n")
	return bw.Flush()
}

// marshal writes v as JSON without escaping <, > and & (report.json holds
// thresholds such as "p(95) < 2s"), indented from prefix unless prefix is "".
func marshal(v any, prefix string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if prefix != "" {
		enc.SetIndent(prefix, "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Read reads a report.json, checks it, and summarises it again from its raw
// measurements, so a report read is exactly the report a run would build.
func Read(rd io.Reader) (*Report, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading a report: %w", err)
	}
	if len(b) > MaxReportBytes {
		return nil, fmt.Errorf("reading a report: it is larger than %d MB, which no report sim writes is", MaxReportBytes>>20)
	}
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("reading a report: not a report.json: %w", err)
	}
	if head.SchemaVersion == nil {
		return nil, errors.New("reading a report: it has no schema_version; is it a report.json written by sim?")
	}
	if *head.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("reading a report: schema version %d; this sim reads version %d", *head.SchemaVersion, SchemaVersion)
	}
	// Unknown fields are ignored: a newer sim may add fields without changing
	// the schema version.
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading a report: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("reading a report: %w", err)
	}
	if err := r.summarize(); err != nil {
		return nil, fmt.Errorf("reading a report: %w", err)
	}
	return &r, nil
}

// ReadFile reads the report.json at path (or path/report.json when path is a
// directory).
func ReadFile(path string) (*Report, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path += string(os.PathSeparator) + FileJSON
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Bounds on a report's floating-point inputs, far beyond any device, that
// keep every projection finite.
const (
	maxChargeMAh  = 1e12
	maxBatteryMAh = 1e9
)

// check validates what summarising relies on in a report read from a file.
func (r *Report) check() error {
	m := &r.Meta
	switch {
	case m.Shards < 1:
		return fmt.Errorf("meta: shards is %d; a run has at least one", m.Shards)
	case m.Duration <= 0:
		return fmt.Errorf("meta: duration_ns is %d; a run measures a positive time", m.Duration)
	}
	for _, s := range m.ShardIndices() {
		if s < 0 || s >= m.Shards {
			return fmt.Errorf("meta: shard %d is not one of the run's %d", s, m.Shards)
		}
	}
	for i := range r.Devices {
		d := &r.Devices[i]
		if d.Index < 0 || d.Elapsed < 0 || d.DataPlan < 0 {
			return fmt.Errorf("device %d (%s): negative index, duration or plan", d.Index, d.ID)
		}
		if e := d.Energy; e != nil && (e.Elapsed < 0 || !(e.ChargeMAh >= 0 && e.ChargeMAh <= maxChargeMAh)) {
			return fmt.Errorf("device %d (%s): energy over %d ns of %g mAh is outside what a device draws", d.Index, d.ID, e.Elapsed, e.ChargeMAh)
		}
		if i > 0 && d.Index <= r.Devices[i-1].Index {
			return fmt.Errorf("devices are not in ascending index order at device %d (%s)", d.Index, d.ID)
		}
	}
	for _, p := range m.Profiles {
		if p.DataPlan < 0 || p.Billing.Increment < 0 || !(p.BatteryMAh >= 0 && p.BatteryMAh <= maxBatteryMAh) {
			return fmt.Errorf("profile %s: data plan, billing increment or battery out of range", p.Name)
		}
	}
	for _, l := range r.Latency {
		if err := l.Histogram.check(); err != nil {
			return fmt.Errorf("latency %s of group %s: %w", l.Latency, l.Group, err)
		}
	}
	if len(r.Timeline.Points) > 0 && r.Timeline.Bucket <= 0 {
		return fmt.Errorf("timeline: bucket_ns is %d", r.Timeline.Bucket)
	}
	return nil
}
