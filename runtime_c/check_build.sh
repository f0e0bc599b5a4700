#!/bin/sh
# Compile every runtime kernel warning-free for the host (gcc), Cortex-M7 and Cortex-M4 (DSP extension, hard float),
# Cortex-M55 (Helium/MVE), Cortex-M0+ (no DSP, soft float), and Cortex-A53 (AArch64) and Cortex-A7 (ARMv7-A) with
# NEON.
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

check host gcc
check cortex-m7 arm-none-eabi-gcc -mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard
check cortex-m4 arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
check cortex-m55 arm-none-eabi-gcc -mcpu=cortex-m55 -mthumb -mfloat-abi=hard
check cortex-m0plus arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb -mfloat-abi=soft
check cortex-a53 aarch64-linux-gnu-gcc -mcpu=cortex-a53
check cortex-a7 arm-linux-gnueabihf-gcc -mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard
exit $status
