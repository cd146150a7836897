package reports

import (
	"bytes"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n%s", name, firstDiff(got, want))
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return "line " + itoa(i+1) + ":\n got: " + clip(gl) + "\nwant: " + clip(wl)
		}
	}
	return ""
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

func TestWritersGolden(t *testing.T) {
	r := fixtureReport(t)
	for _, w := range writers {
		t.Run(w.Name, func(t *testing.T) {
			var b bytes.Buffer
			if err := w.Write(&b, r); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("fixture", w.Name), b.Bytes())
		})
	}
}

func TestCSVRowsMatchHeader(t *testing.T) {
	var b bytes.Buffer
	r := fixtureReport(t)
	if err := WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll() // fails on a row of another width
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(r.Devices)+1 {
		t.Fatalf("%d rows for %d devices", len(rows), len(r.Devices))
	}
}

// Names come from the scenario file: no writer lets them become markup.
func TestWritersEscapeNames(t *testing.T) {
	r := smallReport(t)
	hostile := `<img src=x onerror=alert(1)>|*x*`
	for i := range r.Devices {
		r.Devices[i].Group = hostile
	}
	r.Meta.Scenario, r.Meta.Description = hostile, hostile
	if err := r.summarize(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FileMarkdown, FileHTML, FileJUnit} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			for _, w := range writers {
				if w.Name == name {
					if err := w.Write(&b, r); err != nil {
						t.Fatal(err)
					}
				}
			}
			if strings.Contains(b.String(), "<img") {
				t.Fatalf("%s holds the raw tag", name)
			}
			if name == FileMarkdown && strings.Contains(b.String(), "|*x*") {
				t.Fatalf("a name breaks the Markdown tables")
			}
		})
	}
}
