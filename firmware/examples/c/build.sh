#!/bin/sh
# Rebuilds sensornode.wasm from sensornode.c with Debian's clang and lld
# (apt-get install clang lld). The built module is committed, so running the
# tests does not need this.
#
# Freestanding wasm32: no libc, no start function (--no-entry); the exports are
# the functions marked export_name in the source, the imports those marked
# import_module("catmsim"). One 64 KiB page of memory with a 4 KiB stack keeps
# each device's instance as small as wasm allows.
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
"$CC" --target=wasm32 -nostdlib -Oz -ffreestanding -fno-builtin \
	-Wall -Wextra -Werror \
	-Wl,--no-entry \
	-Wl,-z,stack-size=4096 \
	-Wl,--initial-memory=65536 \
	-Wl,--strip-debug \
	-o sensornode.wasm sensornode.c
chmod -x sensornode.wasm
wc -c sensornode.wasm
