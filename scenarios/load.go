package scenarios

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// shipped holds the example scenarios, so "sim run quickstart" works anywhere.
//
//go:embed *.yaml
var shipped embed.FS

// MaxFileSize bounds a scenario file; real ones are a few kilobytes.
const MaxFileSize = 1 << 20

// Shipped lists the names of the scenarios built into the binary.
func Shipped() []string {
	entries, _ := fs.ReadDir(shipped, ".")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	return names
}

// ShippedFile returns the text of a shipped scenario.
func ShippedFile(name string) ([]byte, error) {
	b, err := shipped.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: no shipped scenario is named %q; the shipped ones are %s", ErrNotFound, name, strings.Join(Shipped(), ", "))
	}
	return b, nil
}

// Load reads, decodes and checks a scenario. name is a file path, or the
// name of a shipped scenario ("quickstart") when no such file exists. It
// returns every problem at once: the error joins one *Error per problem and
// matches ErrInvalid; warnings (a profile no group uses …) come back
// separately and do not make the scenario invalid.
func Load(name string) (*Scenario, []*Error, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && isShippedName(name) {
			if b, err := ShippedFile(strings.TrimSuffix(name, ".yaml")); err == nil {
				return parse(path.Base(name), "", b, func(rel string) error {
					_, err := fs.Stat(shipped, rel)
					return err
				})
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			hint := ""
			if isShippedName(name) {
				hint = "; the shipped scenarios are " + strings.Join(Shipped(), ", ")
			}
			return nil, nil, fmt.Errorf("%w: %s: no such file%s", ErrNotFound, name, hint)
		}
		return nil, nil, fmt.Errorf("reading scenario: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading scenario %s: %w", name, err)
	}
	return Parse(name, b)
}

// isShippedName tells a bare name ("quickstart", "quickstart.yaml") from a path.
func isShippedName(name string) bool {
	return name != "" && !strings.ContainsAny(name, `/\`)
}

// Parse decodes and checks scenario text read from file. Relative paths in it
// (firmware, certificates) resolve against the file's directory.
func Parse(file string, data []byte) (*Scenario, []*Error, error) {
	dir := filepath.Dir(file)
	return parse(file, dir, data, func(rel string) error {
		p := rel
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			return errors.New("it is a directory")
		}
		return err
	})
}

// yamlLine finds the line in a yaml.v3 syntax error ("yaml: line 3: …").
var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): `)

func parse(file, dir string, data []byte, stat func(string) error) (*Scenario, []*Error, error) {
	d := newDecoder(file)
	fail := func() (*Scenario, []*Error, error) {
		return nil, sortErrors(d.warnings), joined(sortErrors(d.errs))
	}
	if len(data) > MaxFileSize {
		d.add(pos{}, "", "the file is %d bytes; a scenario is at most %d", len(data), MaxFileSize)
		return fail()
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			d.add(pos{1, 1}, "", "the file is empty; a scenario starts with version: 1")
			return fail()
		}
		d.add(syntaxPos(err), "", "%s", strings.TrimPrefix(yamlLine.ReplaceAllString(err.Error(), ""), "yaml: "))
		return fail()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.add(at(&extra), "", "the file holds more than one YAML document (---); a scenario is one")
		return fail()
	} else if !errors.Is(err, io.EOF) {
		d.add(syntaxPos(err), "", "%s", strings.TrimPrefix(yamlLine.ReplaceAllString(err.Error(), ""), "yaml: "))
		return fail()
	}
	top := d.resolve(&root)
	if top == nil || top.Kind != yaml.MappingNode {
		at := pos{1, 1}
		what := "nothing"
		if top != nil {
			at, what = pos{top.Line, top.Column}, got(top)
		}
		d.add(at, "", "a scenario is a mapping that starts with version: 1 (got %s)", what)
		return fail()
	}

	s := &Scenario{File: file, Dir: dir}
	s.setDefaults()
	d.pos[""] = at(top)
	d.structure(top, "", reflect.ValueOf(s).Elem())
	s.pos = d.pos
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	v := &validator{decoder: d, s: s, stat: stat}
	v.validate()
	if len(d.errs) > 0 {
		return fail()
	}
	return s, sortErrors(d.warnings), nil
}

// syntaxPos reads the line from a yaml.v3 syntax error. The library omits it
// when the problem is on the first line (its marks count from zero).
func syntaxPos(err error) pos {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return pos{n, 0}
		}
	}
	return pos{1, 0}
}

// ProfileNames returns the profile names in sorted order.
func (s *Scenario) ProfileNames() []string {
	names := make([]string, 0, len(s.Profiles))
	for n := range s.Profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
