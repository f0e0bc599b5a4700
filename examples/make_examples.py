"""Write the example models (SimpleModel, ConvNet) with calibration and test samples into a folder."""

import sys
from pathlib import Path

import numpy as np
import onnx

from edgec.examples import convnet, sample_inputs, simple_model


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, model in (("simple_model", simple_model()), ("convnet", convnet())):
        onnx.save(model, out / f"{name}.onnx")
        np.savez(out / f"{name}.calib.npz", **sample_inputs(model, 64, seed=1))
        np.savez(out / f"{name}.inputs.npz", **sample_inputs(model, 10, seed=2))
        print(f"wrote {out / name}.onnx with .calib.npz (64 samples) and .inputs.npz (10 samples)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "examples/out"))
