package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as a scenario file: it must
// not panic, every error must be located, and what it accepts must compile to
// the same plan twice.
func FuzzLoad(f *testing.F) {
	for _, n := range Shipped() {
		b, _ := ShippedFile(n)
		f.Add(b)
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("x-a: &a {protocol: mqtt}\nversion: 1\nduration: 1m\nprofiles: {p: *a, q: {<<: *a, qos: 0}}\nfleet: [{name: g, profile: p, count: 3}]\n"))
	noFiles := func(string) error { return os.ErrNotExist }
	f.Fuzz(func(t *testing.T, data []byte) {
		s, warnings, err := parse("f.yaml", "", data, noFiles)
		if err != nil {
			if s != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v with scenario %v", err, s)
			}
			es := Errors(err)
			if len(es) == 0 {
				t.Fatalf("error without located errors: %v", err)
			}
			for _, e := range es {
				if e.File != "f.yaml" || e.Line < 1 && len(data) <= MaxFileSize || e.Msg == "" {
					t.Fatalf("not located: %#v", e)
				}
			}
			return
		}
		for _, w := range warnings {
			if w.Line < 1 {
				t.Fatalf("warning not located: %#v", w)
			}
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("accepted scenario does not marshal: %v", err)
		}
		total := 0
		for _, g := range s.Fleet {
			total += g.Count
		}
		if total > 5000 {
			return // valid, but too big to compile on every fuzz input
		}
		p1, err := Compile(s, PlanOptions{Shard: 0, Shards: 2})
		if err != nil {
			t.Fatalf("accepted scenario does not compile: %v", err)
		}
		p2, _ := Compile(s, PlanOptions{Shard: 0, Shards: 2})
		a, err := json.Marshal(p1)
		if err != nil {
			t.Fatalf("plan does not marshal: %v", err)
		}
		b, _ := json.Marshal(p2)
		if !bytes.Equal(a, b) {
			t.Fatal("two compilations differ")
		}
	})
}
