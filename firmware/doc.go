// Package firmware owns running device logic as WebAssembly: the documented host ABI,
// compiling a module once and instantiating it per device under wazero, and the example
// firmware.
package firmware
