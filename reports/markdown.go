package reports

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes summary.md: the run, its threshold verdict and the key
// tables, for a person or a CI job summary ($GITHUB_STEP_SUMMARY).
func WriteMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	m := &r.Meta
	fmt.Fprintf(bw, "# %s — catmsim report\n\n", mdText(m.Scenario))
	if m.Description != "" {
		fmt.Fprintf(bw, "%s\n\n", mdText(m.Description))
	}
	bw.WriteString("| run | seed | shards | started | measured | target | devices |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(bw, "| %s | %d | %s | %s | %s | %s | %d |\n\n", mdCell(m.RunID), m.Seed, mdCell(shardText(m)),
		m.Started.UTC().Format(time.RFC3339), fmtDuration(m.Duration), mdCell(m.Target), r.Summary.Devices)
	fmt.Fprintf(bw, "> %s.\n", capitalise(r.Summary.Projection))
	if m.Projection {
		bw.WriteString("> This run is itself a projection: per-operation costs measured in a short real run, replayed over virtual time.\n")
	}
	bw.WriteString("\n")
	fmt.Fprintf(bw, "**Thresholds:** %s\n", mdText(r.headline()))
	for _, v := range r.views() {
		fmt.Fprintf(bw, "\n## %s\n\n", v.title)
		if v.note != "" {
			fmt.Fprintf(bw, "%s\n\n", mdText(v.note))
		}
		if len(v.rows) > 0 {
			writeMDTable(bw, v)
		} else if v.note == "" {
			bw.WriteString("(none)\n")
		}
		for _, a := range v.after {
			fmt.Fprintf(bw, "\n%s\n", mdText(a))
		}
	}
	return bw.Flush()
}

func writeMDTable(w *bufio.Writer, v view) {
	cells := make([]string, len(v.head))
	for i, h := range v.head {
		cells[i] = mdCell(h)
	}
	fmt.Fprintf(w, "| %s |\n|", strings.Join(cells, " | "))
	for i := range v.head {
		if i < len(v.numeric) && v.numeric[i] {
			w.WriteString("---:|")
		} else {
			w.WriteString("---|")
		}
	}
	w.WriteString("\n")
	for _, row := range v.rows {
		for i, c := range row {
			cells[i] = mdCell(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells[:len(row)], " | "))
	}
}

// mdCell makes text safe inside a Markdown table cell.
func mdCell(s string) string {
	s = mdText(s)
	return strings.ReplaceAll(s, "|", `\|`)
}

// mdText keeps scenario-supplied text on one line and from turning into
// markup or HTML.
func mdText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '<' && i+1 < len(s) && startsTag(s[i+1]):
			// Only "<" that could open an HTML tag; "p(95) < 2s" stays as written.
			b.WriteString("&lt;")
		case c == '*' || c == '`' || c == '[' || c == ']' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func startsTag(c byte) bool {
	return c == '/' || c == '!' || c == '?' || (c|0x20) >= 'a' && (c|0x20) <= 'z'
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
