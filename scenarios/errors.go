package scenarios

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrInvalid is matched (errors.Is) by every error about a scenario's content,
// so a command can map it to its "invalid scenario" exit code.
var ErrInvalid = errors.New("invalid scenario")

// ErrNotFound is returned by Load when a name is neither a file nor a shipped
// scenario.
var ErrNotFound = errors.New("scenario not found")

// Error is one located problem in a scenario file. Load returns all of them
// at once, joined with errors.Join, in file order.
type Error struct {
	File   string // the file as it was named to Load
	Line   int    // 1-based; 0 when the problem concerns the whole file
	Column int    // 1-based; 0 when unknown
	Path   string // where in the scenario, e.g. fleet[0].count; empty for the file itself
	Msg    string
}

// Error formats the problem as file:line:column: path: message.
func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
		if e.Column > 0 {
			loc += ":" + strconv.Itoa(e.Column)
		}
	}
	if e.Path == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Path + ": " + e.Msg
}

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// pos is a place in the file.
type pos struct{ line, col int }

// diags collects errors and warnings.
type diags struct {
	file     string
	errs     []*Error
	warnings []*Error
}

func (d *diags) add(at pos, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: at.line, Column: at.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *diags) warn(at pos, path, format string, args ...any) {
	d.warnings = append(d.warnings, &Error{File: d.file, Line: at.line, Column: at.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// sortErrors orders errors by place, then path and text, and drops exact
// duplicates (an alias used twice reports its problem once per place only).
func sortErrors(es []*Error) []*Error {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Msg, b.Msg))
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}

// joined returns the errors as one error, or nil.
func joined(es []*Error) error {
	if len(es) == 0 {
		return nil
	}
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Errors flattens an error returned by Load or Parse (or one wrapping it)
// into its located errors; an error that is not located (a file that cannot
// be read) gives none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// ErrorAt places a problem found outside this package — a firmware module
// that does not keep the host ABI — at the value the file set at path (e.g.
// "profiles.node.firmware"), as Load places its own.
func (s *Scenario) ErrorAt(path, msg string) *Error {
	e := &Error{File: s.File, Path: path, Msg: msg}
	if p, ok := s.pos[path]; ok {
		e.Line, e.Column = p.line, p.col
	}
	return e
}
