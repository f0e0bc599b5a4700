#!/usr/bin/env bash
# Installs what is needed, then runs the lint and the whole test suite (host, cffi and QEMU tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check toolchain codegen tests examples bench
runtime_c/check_build.sh
.venv/bin/python -m pytest -n 2 -q "$@"
