package scenarios

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestIDPattern(t *testing.T) {
	tests := []struct {
		pattern string
		ids     map[int]string
		err     string
	}{
		{"{group}-{index:05}", map[int]string{0: "field-00000", 42: "field-00042", 123456: "field-123456"}, ""},
		{"fipy-{index}", map[int]string{0: "fipy-0", 10: "fipy-10"}, ""},
		{"{seed}/{group}/{index:3}", map[int]string{7: "42/field/007"}, ""},
		{"{index:02}-x", map[int]string{5: "05-x", 100: "100-x"}, ""},
		{"fixed", map[int]string{0: "fixed"}, ""},
		{"{index}{index}", nil, "has {index} more than once"},
		{"a{index", nil, "has a { without its }"},
		{"a}b", nil, "has a } without its {"},
		{"{group:3}", nil, "{group} takes no format"},
		{"{index:x}", nil, "the format is a width from 1 to 20"},
		{"{index:0}", nil, "the format is a width from 1 to 20"},
		{"{index:-3}", nil, "the format is a width from 1 to 20"},
		{"{grp}", nil, "unknown placeholder {grp}; use {group}, {index}, {index:05} or {seed} — did you mean {group}?"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			ip, err := compileIDPattern(tt.pattern, "field", 42)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.ids {
				if got := ip.id(i); got != want {
					t.Errorf("id(%d) = %q, want %q", i, got, want)
				}
				if !ip.has([]byte(want), i+1) {
					t.Errorf("has(%q, %d) = false", want, i+1)
				}
				if ip.hasIndex && ip.has([]byte(want), i) {
					t.Errorf("has(%q, %d) = true, but the index is out of range", want, i)
				}
			}
		})
	}
}

// has must recognise exactly the ids a pattern makes: the membership test
// the uniqueness check relies on instead of listing every id.
func TestIDPatternMembershipIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	patterns := []string{"d-{index}", "d-{index:03}", "{index:2}x", "d-{index:1}-e", "d0{index}", "d-0{index:2}"}
	for _, p := range patterns {
		for _, q := range patterns {
			a, _ := compileIDPattern(p, "g", 1)
			b, _ := compileIDPattern(q, "g", 1)
			ca, cb := 1+rng.IntN(1200), 1+rng.IntN(1200)
			ids := map[string]bool{}
			for i := range cb {
				ids[b.id(i)] = true
			}
			for i := range ca {
				id := a.id(i)
				if got := b.has([]byte(id), cb); got != ids[id] {
					t.Fatalf("%s (%d devices) has(%q) = %v, listing says %v", q, cb, id, got, ids[id])
				}
				if ids[id] && !a.mayOverlap(b) {
					t.Fatalf("%s and %s share %q but mayOverlap says no", p, q, id)
				}
			}
		}
	}
}
