package scenarios

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// schema.json is generated; this fails when it is stale. Regenerate with
// go generate ./scenarios (or go test ./scenarios -run TestSchemaIsUpToDate -update).
func TestSchemaIsUpToDate(t *testing.T) {
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	golden(t, "schema.json", b)
}

// Every key the decoder knows is in the schema with a description, so an
// editor can explain it.
func TestSchemaDescribesEveryKey(t *testing.T) {
	b, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, s map[string]any)
	count := 0
	walk = func(path string, s map[string]any) {
		if props, ok := s["properties"].(map[string]any); ok {
			for k, p := range props {
				ps := p.(map[string]any)
				if _, isConst := ps["const"]; !isConst && len(ps) > 0 && ps["description"] == nil && ps["default"] == nil {
					t.Errorf("%s.%s has no description", path, k)
				}
				count++
				walk(path+"."+k, ps)
			}
		}
		for _, key := range []string{"additionalProperties", "items"} {
			if sub, ok := s[key].(map[string]any); ok {
				walk(path+"."+key, sub)
			}
		}
		for _, key := range []string{"oneOf", "anyOf"} {
			if alts, ok := s[key].([]any); ok {
				for _, a := range alts {
					walk(path, a.(map[string]any))
				}
			}
		}
	}
	walk("", root)
	if count < 100 {
		t.Errorf("only %d keys described", count)
	}
}

// An independent JSON Schema validator (Python's jsonschema) accepts every
// shipped scenario and the plan test file, and rejects a few bad files. It
// runs where python3 with jsonschema is installed.
func TestSchemaAgreesWithAnIndependentValidator(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import jsonschema").Run() != nil {
		t.Skip("python3 with jsonschema is not installed")
	}
	type doc struct {
		name  string
		text  []byte
		valid bool
	}
	var docs []doc
	for _, n := range Shipped() {
		b, _ := ShippedFile(n)
		docs = append(docs, doc{n, b, true})
	}
	for _, f := range []string{"testdata/plan-small.yaml", "testdata/three-mistakes.bad.yaml", "testdata/protocols.bad.yaml", "testdata/types.bad.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc{f, b, !strings.Contains(f, ".bad.")})
	}
	dir := t.TempDir()
	script := `
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    errs = list(v.iter_errors(json.load(open(path))))
    print(path, "valid" if not errs else "invalid")
`
	schema, _ := JSONSchema()
	args := []string{"-c", script, filepath.Join(dir, "schema.json")}
	if err := os.WriteFile(args[2], schema, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		var v any
		if err := yaml.Unmarshal(d.text, &v); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		p := filepath.Join(dir, filepath.Base(d.name)+string(rune('a'+i))+".json")
		if err := os.WriteFile(p, j, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(docs) {
		t.Fatalf("validator said:\n%s", out)
	}
	for i, d := range docs {
		want := "invalid"
		if d.valid {
			want = "valid"
		}
		if !strings.HasSuffix(lines[i], " "+want) {
			t.Errorf("%s: the schema says %s, want %s", d.name, lines[i], want)
		}
	}
}
