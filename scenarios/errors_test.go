package scenarios

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorFormatAndUnwrap(t *testing.T) {
	a := &Error{File: "f.yaml", Line: 3, Column: 5, Path: "fleet[0].count", Msg: "must be a whole number"}
	b := &Error{File: "f.yaml", Line: 4, Msg: "whole-line problem"}
	c := &Error{File: "f.yaml", Msg: "whole-file problem"}
	for _, tt := range []struct {
		e    *Error
		want string
	}{
		{a, "f.yaml:3:5: fleet[0].count: must be a whole number"},
		{b, "f.yaml:4: whole-line problem"},
		{c, "f.yaml: whole-file problem"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	wrapped := fmt.Errorf("running: %w", errors.Join(a, b))
	if !errors.Is(wrapped, ErrInvalid) {
		t.Error("a wrapped scenario error does not match ErrInvalid")
	}
	if got := Errors(wrapped); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Errors = %v", got)
	}
	if Errors(errors.New("plain")) != nil || Errors(nil) != nil {
		t.Error("a plain error has located errors")
	}
}
