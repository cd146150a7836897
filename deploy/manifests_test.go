package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/catmsim/catmsim/scenarios"
)

// The parts of Kubernetes objects the tests read; everything else in a
// manifest is ignored.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"` // ConfigMap
	Spec struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    *int   `yaml:"completions"`
		Parallelism    *int   `yaml:"parallelism"`
		Template       struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	RestartPolicy string      `yaml:"restartPolicy"`
	Containers    []container `yaml:"containers"`
	Volumes       []volume    `yaml:"volumes"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

type container struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// load reads every document of a manifest file.
func load(t *testing.T, name string) []object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for i := 0; ; i++ {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s, document %d: %v", name, i+1, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s, document %d: apiVersion %q, kind %q, name %q: each must be set", name, i+1, o.APIVersion, o.Kind, o.Metadata.Name)
		}
		objs = append(objs, o)
	}
	return objs
}

func find(t *testing.T, objs []object, kind string) *object {
	t.Helper()
	for i := range objs {
		if objs[i].Kind == kind {
			return &objs[i]
		}
	}
	t.Fatalf("no %s in the manifest", kind)
	return nil
}

func (c *container) env(name string) (value string, ok bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// flag returns the value of a long flag given as "--name value" or
// "--name=value".
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// mountFor is the volume mounted at the directory holding path.
func (c *container) mountFor(path string) (volume string, readOnly bool, ok bool) {
	best := ""
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") && len(m.MountPath) > len(best) {
			best, volume, readOnly, ok = m.MountPath, m.Name, m.ReadOnly, true
		}
	}
	return volume, readOnly, ok
}

// expand does what Kubernetes does to $(VAR) in args: the value of an env
// entry of the container.
func expand(s string, env map[string]string) string {
	return regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// quantity reads a Kubernetes memory quantity ("4Gi", "4608Mi") or a
// GOMEMLIMIT ("4000MiB") in bytes.
func quantity(s string) (uint64, error) {
	s = strings.TrimSuffix(s, "B")
	mult := uint64(1)
	for suffix, m := range map[string]uint64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory quantity %q: %w", s, err)
	}
	return n * mult, nil
}

// peakPerDevice is the most resident memory one device of each protocol was
// measured to cost against the embedded hub over the in-memory transport
// (bench/README.md): mqtt is the largest shard of this manifest's own
// scenario, amqp its peak heap plus stacks, which its RSS grows into.
var peakPerDevice = map[string]uint64{
	"mqtt":  184 << 10,
	"amqp":  336 << 10,
	"https": 120 << 10,
}

// baseMemory is what sim holds with no devices: the runtime, the embedded
// hub, the report build at the end.
const baseMemory = 256 << 20

// TestIndexedJob holds the fleet Job to what sim accepts: each pod's shard
// flag, read as scenarios.ParseShard reads it with the index Kubernetes gives
// the pod, selects that pod's shard of completions; the scenario it runs is
// the mounted ConfigMap's and compiles; each pod's report goes to a directory
// of its own on the shared volume; and a shard's devices fit the memory
// limit.
func TestIndexedJob(t *testing.T) {
	objs := load(t, "indexed-job.yaml")
	job := find(t, objs, "Job")
	if job.Spec.CompletionMode != "Indexed" || job.Spec.Completions == nil || job.Spec.Parallelism == nil {
		t.Fatalf("completionMode %q, completions %v, parallelism %v: an Indexed Job needs all three", job.Spec.CompletionMode, job.Spec.Completions, job.Spec.Parallelism)
	}
	n := *job.Spec.Completions
	if *job.Spec.Parallelism != n {
		t.Errorf("parallelism %d, completions %d: every shard should run at once", *job.Spec.Parallelism, n)
	}
	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != "Never" {
		t.Errorf("restartPolicy %q: a podFailurePolicy needs Never", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want the one running sim", len(pod.Containers))
	}
	c := &pod.Containers[0]
	if !slices.Equal(c.Command, []string{"/sim"}) || len(c.Args) < 2 || c.Args[0] != "run" {
		t.Fatalf("command %q args %q, want /sim run <scenario> …", c.Command, c.Args)
	}

	shardFlag, ok := flag(c.Args, "shard")
	if !ok {
		t.Fatalf("args %q have no --shard", c.Args)
	}
	out, ok := flag(c.Args, "out")
	if !ok {
		t.Fatalf("args %q have no --out: each shard must write its report to the shared volume", c.Args)
	}
	outs := map[string]bool{}
	for i := range n {
		env := map[string]string{scenarios.EnvJobIndex: strconv.Itoa(i)}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']":
				env[e.Name] = strconv.Itoa(i)
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			}
		}
		shard, shards, err := scenarios.ParseShard(expand(shardFlag, env), func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		if shard != i || shards != n {
			t.Fatalf("pod %d: --shard %q runs shard %d of %d, want %d of %d", i, shardFlag, shard, shards, i, n)
		}
		dir := expand(out, env)
		if strings.Contains(dir, "$(") || outs[dir] {
			t.Fatalf("pod %d writes its report to %q: each pod needs a directory of its own", i, dir)
		}
		outs[dir] = true
	}
	if vol, ro, ok := c.mountFor(out); !ok || ro {
		t.Errorf("reports go to %s, which is not on a writable volume mount", out)
	} else if !slices.ContainsFunc(pod.Volumes, func(v volume) bool { return v.Name == vol && v.PersistentVolumeClaim != nil }) {
		t.Errorf("reports go to volume %s, which is not a persistent volume claim: they would be lost with the pod", vol)
	}

	// The scenario is a file from the ConfigMap mounted into the pod.
	path := c.Args[1]
	vol, _, ok := c.mountFor(path)
	if !ok {
		t.Fatalf("scenario %s is not on a mounted volume", path)
	}
	var cmName string
	for _, v := range pod.Volumes {
		if v.Name == vol && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm := find(t, objs, "ConfigMap")
	text, ok := cm.Data[filepath.Base(path)]
	if cm.Metadata.Name != cmName || !ok {
		t.Fatalf("scenario %s: the pod mounts ConfigMap %q there, the manifest has %q with keys %v", path, cmName, cm.Metadata.Name, keys(cm.Data))
	}
	s, warnings, err := scenarios.Parse(path, []byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's scenario: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("the ConfigMap's scenario: %v", w)
	}
	p, err := scenarios.Compile(s, scenarios.PlanOptions{Shard: 0, Shards: n})
	if err != nil {
		t.Fatal(err)
	}

	// Shard 0 is the largest: device i goes to shard i mod n.
	need := uint64(baseMemory)
	for d := range p.Devices() {
		pr := p.Profile(d.Profile)
		per, ok := peakPerDevice[string(pr.Protocol)]
		if !ok {
			t.Fatalf("no measured memory for protocol %s: measure it with bench/fleetscale", pr.Protocol)
		}
		need += per
	}
	req, err := quantity(c.Resources.Requests["memory"])
	if err != nil {
		t.Fatal(err)
	}
	lim, err := quantity(c.Resources.Limits["memory"])
	if err != nil {
		t.Fatal(err)
	}
	if req < need || lim < req {
		t.Errorf("a shard of %d devices needs about %d MiB; memory request %s, limit %s", p.Len(), need>>20, c.Resources.Requests["memory"], c.Resources.Limits["memory"])
	}
	if v, ok := c.env("GOMEMLIMIT"); ok {
		gl, err := quantity(v)
		if err != nil {
			t.Fatal(err)
		}
		if gl < need || gl >= lim {
			t.Errorf("GOMEMLIMIT %s should sit between the shard's need (%d MiB) and the container's limit (%s)", v, need>>20, c.Resources.Limits["memory"])
		}
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestMergeJob holds the merge Job to the fleet Job: it reads every shard's
// report directory, from the same volume claim.
func TestMergeJob(t *testing.T) {
	fleet := find(t, load(t, "indexed-job.yaml"), "Job")
	merge := find(t, load(t, "merge-job.yaml"), "Job")
	fc, mc := fleet.Spec.Template.Spec.Containers[0], merge.Spec.Template.Spec.Containers[0]
	if len(mc.Args) < 3 || mc.Args[0] != "report" || mc.Args[1] != "merge" {
		t.Fatalf("merge args %q, want report merge <dirs>…", mc.Args)
	}
	out, _ := flag(fc.Args, "out")
	var inputs []string
	for i := 2; i < len(mc.Args) && !strings.HasPrefix(mc.Args[i], "-"); i++ {
		inputs = append(inputs, mc.Args[i])
	}
	var want []string
	for i := range *fleet.Spec.Completions {
		want = append(want, expand(out, map[string]string{"SHARD": strconv.Itoa(i)}))
	}
	if !slices.Equal(inputs, want) {
		t.Errorf("the merge reads %q, the fleet's shards write %q", inputs, want)
	}
	merged, ok := flag(mc.Args, "out")
	if !ok || slices.Contains(want, merged) {
		t.Errorf("merge --out %q: it must be a directory of its own", merged)
	}
	claim := func(o *object, path string) string {
		c := o.Spec.Template.Spec.Containers[0]
		vol, _, _ := c.mountFor(path)
		for _, v := range o.Spec.Template.Spec.Volumes {
			if v.Name == vol && v.PersistentVolumeClaim != nil {
				return v.PersistentVolumeClaim.ClaimName
			}
		}
		return ""
	}
	if a, b := claim(fleet, want[0]), claim(merge, inputs[0]); a == "" || a != b {
		t.Errorf("the fleet writes to claim %q, the merge reads claim %q", a, b)
	}
}

func TestQuantity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"4Gi", 4 << 30, true},
		{"4608Mi", 4608 << 20, true},
		{"4000MiB", 4000 << 20, true},
		{"1048576", 1 << 20, true},
		{"4G", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := quantity(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("quantity(%q) = %d, %v", tc.in, got, err)
			}
		})
	}
}
