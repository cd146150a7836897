package reports

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The files WriteDir writes.
const (
	FileJSON     = "report.json"
	FileMarkdown = "summary.md"
	FileCSV      = "devices.csv"
	FileJUnit    = "junit.xml"
	FileHTML     = "report.html"
)

// Writer writes one report file.
type Writer func(io.Writer, *Report) error

// writers are the report files and the functions that write them, in the
// order WriteDir writes them.
var writers = []struct {
	Name  string
	Write Writer
}{
	{FileJSON, WriteJSON},
	{FileMarkdown, WriteMarkdown},
	{FileCSV, WriteCSV},
	{FileJUnit, WriteJUnit},
	{FileHTML, WriteHTML},
}

// WriteDir writes every report file into dir, creating it. Each file is
// written beside its final name and renamed into place, so a reader never
// sees half a report.
func WriteDir(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	for _, w := range writers {
		if err := writeFile(filepath.Join(dir, w.Name), r, w.Write); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	return nil
}

func writeFile(path string, r *Report, write Writer) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if err = write(bw, r); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
