#!/bin/sh
# Compile every runtime kernel warning-free for every target in targets/*.toml (host gcc, Cortex-M with and without
# the DSP extension, Helium, soft float, AArch64 and ARMv7-A with NEON), with each target's compiler and flags as the
# build uses them (cc and cflags, read with python3's tomllib).
# Usage: runtime_c/check_build.sh   (exit status 0 when every configuration builds)
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

warn="-std=c99 -pedantic -O2 -Wall -Wextra -Werror -Wshadow -Wconversion -Wsign-conversion -Wdouble-promotion
      -Wvla -Wstrict-prototypes -Wmissing-prototypes -Wcast-qual -Wundef"
status=0

check() {
    name=$1
    shift
    ok=1
    for src in "$here"/src/*.c; do
        if ! "$@" $warn -I"$here/include" -c "$src" -o "$out/$(basename "$src" .c).o"; then
            ok=0
        fi
    done
    if [ $ok -eq 1 ]; then
        echo "$name: OK ($(ls "$here"/src/*.c | wc -l) kernels)"
    else
        echo "$name: FAILED"
        status=1
    fi
}

# "cc cflags..." of the target file $1
compiler() {
    python3 -c 'import sys, tomllib; t = tomllib.load(open(sys.argv[1], "rb")); print(" ".join([t["cc"], *t["cflags"]]))' "$1"
}

for toml in "$here"/../targets/*.toml; do
    # shellcheck disable=SC2046  # the flags are words
    check "$(basename "$toml" .toml)" $(compiler "$toml")
done
exit $status
