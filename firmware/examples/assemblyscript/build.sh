#!/bin/sh
# Rebuilds sensornode.wasm from assembly/index.ts with the AssemblyScript
# compiler pinned in package.json (npm ci installs exactly the locked
# version). The built module is committed, so running the tests does not need
# this.
#
# asconfig.json holds the options: the stub runtime (the firmware allocates
# nothing after start), and --use abort= so the module imports nothing but the
# host ABI.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npx asc assembly/index.ts --config asconfig.json --target release
wc -c sensornode.wasm
