// Package examples holds the built example firmware, so that a scenario —
// one shipped inside the binary included — can run it by name, with no file
// beside it: a profile's "firmware: example:c/sensornode.wasm" is the sensor
// node in C (c/sensornode.c), "example:assemblyscript/sensornode.wasm" the
// same logic in AssemblyScript (assemblyscript/assembly/index.ts). The sources
// and build scripts sit beside the modules.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed c/sensornode.wasm assemblyscript/sensornode.wasm
var files embed.FS

// Prefix marks a firmware reference to a built-in example.
const Prefix = "example:"

// Names lists the built-in examples, as a scenario names them after Prefix.
func Names() []string {
	var names []string
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	return names
}

// Read returns the module an "example:NAME" reference names.
func Read(ref string) ([]byte, error) {
	name, ok := strings.CutPrefix(ref, Prefix)
	if !ok {
		return nil, fmt.Errorf("%q does not name a built-in example (%s…)", ref, Prefix)
	}
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("no built-in firmware example is named %q; there are %s", name, strings.Join(Names(), ", "))
	}
	return b, nil
}
