#!/bin/sh
# Assembles the fleet's test firmware from its text form with wabt's wat2wasm
# (apt-get install wabt). The .wasm files are committed, so running the tests
# does not need this.
set -eu
cd "$(dirname "$0")"
for f in *.wat; do
	wat2wasm --debug-names "$f" -o "${f%.wat}.wasm"
done
ls -l *.wasm
