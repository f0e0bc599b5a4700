#!/usr/bin/env bash
# Installs what is needed, then builds the example ConvNet for the Cortex-M7, runs it in QEMU and compares it
# with onnxruntime: float32 first, then int8.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python examples/make_examples.py examples/out
for q in none int8; do
    .venv/bin/edgec validate examples/out/convnet.onnx --target cortex-m7 --quantize "$q" \
        --calib examples/out/convnet.calib.npz --inputs examples/out/convnet.inputs.npz --out "build/convnet-cortex-m7-$q"
done
