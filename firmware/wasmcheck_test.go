package firmware

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const wasmHeader = "\x00asm\x01\x00\x00\x00"

func TestCheckModuleAcceptsRealModules(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.wasm")
	paths = append(paths, "examples/c/sensornode.wasm", "examples/assemblyscript/sensornode.wasm")
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkModule(b); err != nil {
				t.Errorf("checkModule rejected a module wazero accepts: %v", err)
			}
		})
	}
}

func TestCheckModuleRejects(t *testing.T) {
	tests := []struct {
		name, wasm, want string
	}{
		{"type count past the end", wasmHeader + "\x01\x05\xff\xff\xff\xff\x0f",
			"section 1: 4294967295 function types cannot fit in the 0 bytes left at offset 15"},
		{"param count past the end", wasmHeader + "\x01\x06\x01\x60\xfc\xff\xff\x03",
			"section 1: 8388604 value types cannot fit in the 0 bytes left"},
		{"section past the end", wasmHeader + "\x01\x10\x00",
			"section of 16 bytes runs past the 1 bytes left"},
		{"too many locals", wasmHeader + "\x0a\x08\x01\x06\x01\xe0\xd4\x03\x7f\x0b",
			"section 10: a function declares more than 50000 locals"},
		{"data longer than the section", wasmHeader + "\x0b\x07\x01\x01\xff\xff\xff\xff\x0f",
			"section 11: 4294967295 data bytes cannot fit in the 0 bytes left"},
		{"import count past the end", wasmHeader + "\x02\x03\x80\x80\x04",
			"section 2: 65536 imports cannot fit in the 0 bytes left"},
		{"name map past the end", wasmHeader + "\x00\x0a\x04name\x01\x03\xff\xff\x03",
			"section 0: 65535 names cannot fit in the 0 bytes left"},
		{"unknown section", wasmHeader + "\x20\x00", "unknown section id 32"},
		{"integer too long", wasmHeader + "\x01\x80\x80\x80\x80\x80\x00", "integer longer than 5 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkModule([]byte(tc.wasm))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("checkModule = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		b := make([]byte, MaxModuleBytes+1)
		copy(b, wasmHeader)
		if err := checkModule(b); err == nil || !strings.Contains(err.Error(), "more than the 8 MiB") {
			t.Errorf("checkModule = %v for a module past the size limit", err)
		}
	})
}

// FuzzCheckModule checks that the structure check never panics or reads out
// of bounds, whatever the bytes. FuzzCompile then runs what it lets through
// into wazero.
func FuzzCheckModule(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.wasm")
	paths = append(paths, "examples/c/sensornode.wasm", "examples/assemblyscript/sensornode.wasm")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = checkModule(b)
	})
}
