// Package scenarios owns the scenario schema: parsing YAML scenario files,
// validating them with located errors, filling defaults, and the example
// scenarios shipped inside the binary.
package scenarios
