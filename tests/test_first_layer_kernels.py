"""First-layer convolution kernels (few input channels, no generic im2col): ec_conv2d_gather_mve_s8 (Helium) and
ec_conv2d_gather_s8 (DSP extension) on random shapes, bit-exact with the integer reference on Cortex-M55, Cortex-M7,
Cortex-M4 and Cortex-M33 and in their plain C (host, lowered as for Helium or the DSP extension)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from helpers import assert_bitexact, build_and_run, make_model, needs_target
from onnx import helper


def few_channel_convs(seed: int):
    """Two convolutions with 1 to 4 input channels: kernels 1x2 to 10x5, strides 1 to 3, dilation 1 or 2 (across on
    seed 3's second), padding on any border, 1 to 70 output channels (odd counts, two chunks of the Helium matrix
    core), a Relu before the first on odd seeds (input zero point -128); seed 0 starts with a 3x3 on 3 channels 100
    wide (window offsets past 255 in the band: the 16-bit gathers)."""
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 5))
    h, wd = int(rng.integers(6, 26)), int(rng.integers(4, 20))
    if seed == 0:
        c, h, wd = 3, 7, 100
    nodes, inits, x = [], {}, "input"
    if seed % 2:
        nodes.append(helper.make_node("Relu", ["input"], ["r"]))
        x = "r"
    c_in, shape = c, (h, wd)
    for i in range(2):
        kh, kw = int(rng.integers(1, 11)), int(rng.integers(2, 6))
        dil = [int(d) for d in rng.integers(1, 3, 2)] if rng.random() < 0.5 else [1, 1]
        strides = [int(s) for s in rng.integers(1, 4, 2)]
        pads = [int(rng.integers(0, k)) for k in (kh, kw, kh, kw)]
        if seed == 0 and i == 0:  # 3x3 on 102 padded columns of 3 channels: offsets up to 620
            kh, kw, dil, strides, pads = 3, 3, [1, 1], [1, 1], [1, 1, 1, 1]
        if seed == 3 and i == 1:  # dilated across: the byte-wise gather of ec_conv2d_gather_s8
            dil = [1, 2]
        for a, k in enumerate((kh, kw)):
            if (k - 1) * dil[a] + 1 > shape[a] + pads[a] + pads[a + 2]:  # the window must fit: pad by k - 1
                pads[a] = pads[a + 2] = k - 1
        out_c = int(rng.integers(1, 5)) if i == 0 else int(rng.integers(1, 71))
        inits[f"W{i}"] = (rng.standard_normal((out_c, c, kh, kw)) / np.sqrt(c * kh * kw)).astype(np.float32)
        inits[f"B{i}"] = (rng.standard_normal(out_c) * 0.1).astype(np.float32)
        nodes.append(helper.make_node("Conv", [x, f"W{i}", f"B{i}"], [f"c{i}"], pads=pads, strides=strides,
                                      dilations=dil))
        eff = [(k - 1) * d + 1 for k, d in zip((kh, kw), dil)]
        shape = tuple((sz + pads[a] + pads[a + 2] - e) // st + 1 for a, (sz, e, st) in
                      enumerate(zip(shape, eff, strides)))
        x, c = f"c{i}", out_c
    nodes.append(helper.make_node("Flatten", [x], ["output"]))
    return make_model(nodes, {"input": [1, c_in, h, wd]}, {"output": None}, inits)


def gather_layers(build_dir, kernel: str = "ec_conv2d_gather_mve_s8") -> list[dict]:
    meta = json.loads((build_dir / "edgec.json").read_text())
    return [layer for layer in meta["layers"] if layer["kernels"] == [kernel]]


@pytest.mark.parametrize("seed", [pytest.param(s, marks=needs_target("cortex-m55")) for s in range(4)])
def test_cortex_m55_gather(seed, tmp_path):
    """ec_conv2d_gather_mve_s8 on random few-channel shapes, bit-exact with the integer reference."""
    samples, res, g, _ = build_and_run(few_channel_convs(seed), tmp_path, quantize="int8", target="cortex-m55")
    assert_bitexact(g, samples, res)
    assert len(gather_layers(tmp_path / "build")) == 2


@pytest.mark.parametrize("feature", ["mve", "dsp"])
@pytest.mark.parametrize("seed", range(2))
def test_gather_plain_c(seed, feature, tmp_path, monkeypatch):
    """The plain C paths of ec_conv2d_gather_mve_s8 and ec_conv2d_gather_s8 (host, no MVE or DSP): same band,
    offsets and weight layouts."""
    import edgec.build

    host = edgec.build.load_target("host")
    monkeypatch.setattr(edgec.build, "load_target",
                        lambda name: dataclasses.replace(host, features=(*host.features, feature)))
    samples, res, g, _ = build_and_run(few_channel_convs(seed), tmp_path, quantize="int8")
    assert_bitexact(g, samples, res)
    kernel = "ec_conv2d_gather_mve_s8" if feature == "mve" else "ec_conv2d_gather_s8"
    assert len(gather_layers(tmp_path / "build", kernel)) == 2


DSP_CASES = [("cortex-m7", 0), ("cortex-m7", 1), ("cortex-m7", 2), ("cortex-m4", 3), ("cortex-m33", 4)]


@pytest.mark.parametrize("target,seed", [pytest.param(t, s, marks=needs_target(t)) for t, s in DSP_CASES])
def test_dsp_gather(target, seed, tmp_path):
    """ec_conv2d_gather_s8 on random few-channel shapes (dilation across takes its byte-wise gather), bit-exact
    with the integer reference on the cores with the DSP extension."""
    samples, res, g, _ = build_and_run(few_channel_convs(seed), tmp_path, quantize="int8", target=target)
    assert_bitexact(g, samples, res)
    assert len(gather_layers(tmp_path / "build", "ec_conv2d_gather_s8")) == 2
