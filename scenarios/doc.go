// Package scenarios owns the scenario schema: parsing YAML scenario files,
// validating them with located errors, filling defaults, compiling them into
// plans, and the example scenarios shipped inside the binary.
//
// A scenario goes through three steps, and only the last one is what a run
// executes:
//
//	file ──Load/Parse──> *Scenario ──Compile(shard)──> *Plan ──> fleet
//	       decode (yaml.Node, defaults first)      devices, ids, seeds,
//	       validate (every rule, every error)      arrivals, outage picks,
//	                                               drivers, thresholds
//
// Decoding walks the yaml.v3 node tree rather than unmarshalling into
// structs, so every error carries its file, line and column, and every
// error is found in one pass: an unknown key ("unknown key keepalive — did
// you mean keep_alive?"), a word where a number goes, a size where a
// duration goes. The schema types carry their rules in struct tags (key
// name, required, bounds, enums, which protocol or kind a key applies to);
// the decoder enforces them and JSONSchema describes them, so editors and
// "sim validate" cannot disagree. Rules across fields (a profile that no
// group uses, ids that clash across groups, thresholds on unknown metrics)
// are checked after decoding. Defaults are filled before decoding, per kind
// for polymorphic sections (target kind, profile protocol, arrival kind …),
// and Scenario.IsSet tells a value the file set from a default.
//
// Values with units are types — Duration ("90s", "7d"), ByteSize ("5MB",
// 1024-based as carriers bill), BitRate ("2kbps"), Rate ("2/min"), Percent
// ("10%") and DataPlan ("5MB/month") — and print back the way they are
// written.
//
// A Plan is a pure value: Compile does no I/O and starts nothing, and the
// same scenario, seed and shard give the same plan byte for byte. Device i
// of the fleet belongs to shard i mod N; per-device seeds, arrival times and
// outage picks are drawn from the scenario seed independently of the shard,
// so shards are balanced slices of one fleet. ParseShard reads --shard and a
// Kubernetes Indexed Job's JOB_COMPLETION_INDEX.
package scenarios
