package scenarios_test

import (
	"fmt"

	"github.com/catmsim/catmsim/scenarios"
)

func ExampleParse() {
	_, _, err := scenarios.Parse("fleet.yaml", []byte(`
version: 1
duration: 5m
profiles:
  sensor:
    protocol: mqtt
    keepalive: 240s
fleet:
  - {name: field, profile: sensor, count: ten}
`))
	for _, e := range scenarios.Errors(err) {
		fmt.Println(e)
	}
	// Output:
	// fleet.yaml:7:5: profiles.sensor: unknown key keepalive — did you mean keep_alive?
	// fleet.yaml:9:43: fleet[0].count: must be a whole number (got "ten")
}

func ExampleCompile() {
	s, _, err := scenarios.Parse("fleet.yaml", []byte(`
version: 1
seed: 42
duration: 10m
profiles:
  sensor: {protocol: amqp, link: poor}
fleet:
  - {name: field, profile: sensor, count: 6, id_pattern: "fipy-{index:03}", arrival: {kind: ramp, over: 1m}}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := scenarios.Compile(s, scenarios.PlanOptions{Shard: 1, Shards: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p)
	for d := range p.Devices() {
		fmt.Println(d.Index, d.ID, d.Arrival, p.Profile(d.Profile).Link.Profile.RTT)
	}
	// Output:
	// fleet: 3 of 6 devices (shard 1/2) for 10m
	// 1 fipy-001 10s 1.5s
	// 3 fipy-003 30s 1.5s
	// 5 fipy-005 50s 1.5s
}

func ExampleParseShard() {
	env := map[string]string{"JOB_COMPLETION_INDEX": "3", "CATMSIM_SHARDS": "8"}
	shard, shards, err := scenarios.ParseShard("", func(k string) string { return env[k] })
	fmt.Println(shard, shards, err)
	// Output: 3 8 <nil>
}
