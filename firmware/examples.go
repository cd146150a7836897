package firmware

import "embed"

// Examples holds the built example firmware, so scenarios shipped inside the
// binary can name it without a file beside them:
//
//	examples/sensornode.wasm                 the sensor node in C
//	examples/assemblyscript/sensornode.wasm  the same logic in AssemblyScript
//
//go:embed examples/sensornode.wasm examples/assemblyscript/sensornode.wasm
var Examples embed.FS
