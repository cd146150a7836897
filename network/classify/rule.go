package classify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/catmsim/catmsim/network"
)

// Rule charges the MQTT topics or HTTP request paths it matches to one class.
// Rules let a generic broker or web service be metered as precisely as IoT Hub:
// for example measures/+ sent up is telemetry and ack/+ sent down is c2d.
// Rules are tried in the order given, before the built-in IoT Hub table.
type Rule struct {
	// Pattern is a prefix of the topic or path ("measures/"), or, when one of its
	// '/'-separated segments is exactly "+" or "#", an MQTT topic filter: "+"
	// matches one segment, a final "#" matches the remaining segments (zero or
	// more), and a filter starting with a wildcard does not match a topic that
	// starts with '$' (MQTT 3.1.1 §4.7.2). An HTTP path is matched without its
	// query string and with its leading '/', so write "/measures/+".
	Pattern string
	// Class is what the matched packet or request is charged to, together with
	// its acknowledgements or response.
	Class network.Class
	// Dir restricts the rule to one direction: the direction the PUBLISH travels,
	// or for HTTP the direction of the request (requests travel up).
	Dir RuleDir
	// Method restricts an HTTP rule to one request method (case-insensitive);
	// empty matches every method. MQTT ignores it.
	Method string
}

// RuleDir is the set of directions a Rule applies to.
type RuleDir uint8

const (
	// EitherWay matches in both directions.
	EitherWay RuleDir = iota
	// UpOnly matches only device-to-cloud packets or requests.
	UpOnly
	// DownOnly matches only cloud-to-device packets.
	DownOnly
)

// Validate reports a pattern that would not do what it seems to say: a
// wildcard inside a segment, or a "#" that is not the last segment.
func (r Rule) Validate() error {
	if r.Class > network.ClassOther {
		return fmt.Errorf("rule %q: class %d is not a known class", r.Pattern, r.Class)
	}
	if r.Dir > DownOnly {
		return fmt.Errorf("rule %q: direction %d is not up, down or either", r.Pattern, r.Dir)
	}
	if strings.ContainsAny(r.Method, " \t\r\n") {
		return fmt.Errorf("rule %q: method %q contains white space", r.Pattern, r.Method)
	}
	segs := strings.Split(r.Pattern, "/")
	for i, s := range segs {
		if s == "#" && i != len(segs)-1 {
			return fmt.Errorf("rule %q: \"#\" must be the last segment (try %q)", r.Pattern, strings.Join(segs[:i+1], "/"))
		}
		if s != "+" && s != "#" && strings.ContainsAny(s, "+#") {
			return fmt.Errorf("rule %q: a wildcard must fill a whole segment, as in \"a/+/b\" or \"a/#\"", r.Pattern)
		}
	}
	return nil
}

// ValidateRules checks every rule and joins the errors.
func ValidateRules(rules []Rule) error {
	var errs []error
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// rule is a Rule prepared for matching without allocation.
type rule struct {
	Rule
	filter bool
}

func compileRules(rules []Rule) []rule {
	out := make([]rule, 0, len(rules))
	for _, r := range rules {
		c := rule{Rule: r}
		for s := range strings.SplitSeq(r.Pattern, "/") {
			if s == "+" || s == "#" {
				c.filter = true
			}
		}
		out = append(out, c)
	}
	return out
}

func (r *rule) appliesTo(d network.Direction) bool {
	switch r.Dir {
	case UpOnly:
		return d == network.Up
	case DownOnly:
		return d == network.Down
	}
	return true
}

// match reports whether the topic or path t matches the rule's pattern.
func (r *rule) match(t []byte) bool {
	if !r.filter {
		return len(t) >= len(r.Pattern) && string(t[:len(r.Pattern)]) == r.Pattern
	}
	f := r.Pattern
	if len(f) > 0 && (f[0] == '+' || f[0] == '#') && len(t) > 0 && t[0] == '$' {
		return false
	}
	for {
		fs, frest, fmore := strings.Cut(f, "/")
		if fs == "#" {
			return true
		}
		ts, trest, tmore := cutSeg(t)
		if fs != "+" && string(ts) != fs {
			return false
		}
		f, t = frest, trest
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			// "a/#" also matches "a": the remaining filter must be exactly "#".
			return f == "#"
		case !fmore:
			return false
		}
	}
}

// classifyByRules returns the class of the first rule that matches.
func classifyByRules(rules []rule, d network.Direction, method, t []byte) (network.Class, bool) {
	for i := range rules {
		r := &rules[i]
		if !r.appliesTo(d) {
			continue
		}
		if method != nil && r.Method != "" && !equalFoldASCII(method, r.Method) {
			continue
		}
		if r.match(t) {
			return r.Class, true
		}
	}
	return network.ClassOther, false
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
