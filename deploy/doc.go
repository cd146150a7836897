// Package deploy holds how sim is deployed — the Kubernetes manifests in
// kubernetes/ — and the tests that hold those manifests to what sim accepts:
// a shard flag scenarios.ParseShard takes, a scenario that compiles, and
// memory that fits the measured cost of a shard's devices.
package deploy
