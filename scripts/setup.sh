#!/usr/bin/env bash
# Installs everything edgec needs on Debian/Ubuntu and is cheap to run again:
#   apt: gcc, the Arm bare-metal toolchain with newlib and QEMU for Arm boards (Cortex-M), the AArch64 and
#   ARMv7 hard-float Linux cross compilers and QEMU user mode (Cortex-A), cmake and make (the CMakeLists.txt and
#   edgec.mk that every build writes);  pip: edgec and its Python packages
#   (with the test and torch extras; torch==2.13.0 is the CPU build)
#   in the virtual environment .venv (created here).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc libc6-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
              gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user
              cmake make python3 python3-venv python3-pip)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last successful install.
stamp=.venv/.edgec-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test,torch]"
    echo "$want" > "$stamp"
fi
