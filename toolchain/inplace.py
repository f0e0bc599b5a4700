"""Which kernel calls may write their output over their input (codegen/memory.py places them so when the input dies
at that step), and how far before the input the output must start.

Only kernels whose loops were checked are listed; every other call gets its own output buffer.

- Elementwise, the output at the input's own place (shift 0): element i is written only after the i-th element
  of every operand was read, and later elements are read after it. ec_add_s8 (portable, NEON, Helium: blocks of 1,
  8 or 4 elements, loaded before they are stored), ec_mul_s8 and ec_lut_s8 (activations; portable), ec_add_lut_s8
  and ec_mul_lut_s8 (one element at a time), ec_add_lut_mve_s8 (blocks of 16 then 4 elements, loaded before they
  are stored), ec_mul_lut_mve_s8 (blocks of 4) and ec_add_affine_neon_s8 (blocks of 16, loaded before they are
  stored, then one element at a time), over an operand of the output's shape.
- Windowed (convolution), the output shifted before the input: the kernel goes through output pixels in raster
  order and, before it reads the window of pixel q, has written at most the pixels before q + G (G: the pixels it
  finishes together). Pixel q's window starts at input pixel (stride_h * y - pad_top, stride_w * x - pad_left),
  so with the output `shift` bytes before the input, every write lands on input bytes already consumed when
        (q + G) * out_pixel - shift <= ((stride_h * y - pad_top) * in_w + stride_w * x - pad_left) * in_pixel
  for every output pixel q = (y, x). Both sides are linear in y and in x, so the four corners give the least
  shift (the planner rounds it up to the arena's alignment). ec_conv2d_s8 and ec_depthwise_conv2d_s8 (portable:
  one pixel at a time, channel by channel, G = 1); ec_conv2d_im2col_s8 and ec_conv2d_1x1_s8 (portable and DSP: the
  inputs of two pixels are copied to scratch before either is written, G = 2; bytes read past a window meet zero
  weights); ec_depthwise_conv2d_3x3_s8 (DSP: each output row's three input rows copied to scratch first, the
  channels beyond the last group of 4 read pixel by pixel, G = 1); ec_depthwise_conv2d_3x3_planar_s8 (DSP and plain
  C: the input rows of each output row's windows expanded into a ring of 3 scratch rows before any pixel of that
  row is written, output rows in order, G = 1); ec_conv2d_gather_s8 (G = 2) and ec_conv2d_gather_mve_s8 (G = 3):
  the input rows of an output row's windows copied into a scratch band before any pixel of that row is written,
  from the row that holds the row's first window on.
- Channel by channel, the output at the input's own place (shift 0): ec_depthwise_conv2d_plane_mve_s8 copies input
  channel c into its scratch plane before it writes any output of channel c, and writes only channel c's bytes
  (pixel p at p * channels + c, which with channel multiplier 1 is input pixel p's channel c, or past the input);
  so with multiplier 1 and batch 1 every write lands on a byte already copied or outside the input.
- Scratch over the input (SCRATCH_OVER): ec_fully_connected_block4_s8 with one input row first zeroes the scratch
  column's padding (from byte 2 * depth on), then expands the row into it front to back as int16, at most 8
  elements read before their 16 bytes are written (ec_col_expand), and afterwards reads only the scratch. With the
  scratch starting `depth` bytes before the input, the bytes written for elements [0, i + 8) end at
  2 * (i + 8) - depth <= i + 8 (as i + 8 <= depth): on input bytes already read."""

from __future__ import annotations

from .calls import Buf, Call, Struct
from .ir import Graph, Node

ELEMENTWISE = {"ec_add_s8": (3, 4), "ec_mul_s8": (2, 3), "ec_lut_s8": (2,),  # kernel -> operand positions
               "ec_add_lut_s8": (2, 3), "ec_add_lut_mve_s8": (2, 3), "ec_mul_lut_s8": (2, 3),
               "ec_mul_lut_mve_s8": (2, 3), "ec_add_affine_neon_s8": (2, 3)}
WINDOWED = {  # kernel -> G; arguments (params, quant, input, ...)
    "ec_conv2d_s8": 1, "ec_conv2d_im2col_s8": 2, "ec_conv2d_1x1_s8": 2, "ec_depthwise_conv2d_s8": 1,
    "ec_depthwise_conv2d_3x3_s8": 1, "ec_depthwise_conv2d_3x3_planar_s8": 1, "ec_conv2d_gather_s8": 2,
    "ec_conv2d_gather_mve_s8": 3}
CHANNELWISE = {"ec_depthwise_conv2d_plane_mve_s8"}  # arguments (params, quant, input, ...)
SCRATCH_OVER = {"ec_fully_connected_block4_s8"}  # arguments (rows, depth, out_c, quant, input, ...)


def window_shift(p: dict, group: int, elem: int = 1) -> int:
    """The least shift (bytes) for a windowed kernel with geometry p (ec_conv_params fields)."""
    out_px, in_px = p["out_c"] * elem, p["in_c"] * elem
    need = 0
    for y in (0, p["out_h"] - 1):
        for x in (0, p["out_w"] - 1):
            written = (y * p["out_w"] + x + group) * out_px
            window = ((p["stride_h"] * y - p["pad_top"]) * p["in_w"] + p["stride_w"] * x - p["pad_left"]) * in_px
            need = max(need, written - window)
    return need


def candidates(node: Node, g: Graph, calls: list[Call]) -> list[tuple[str, int]]:
    """(input, shift) pairs the node's single call allows, best first."""
    if len(calls) != 1 or len(node.outputs) != 1:
        return []
    call, out = calls[0], g.tensors[node.outputs[0]]
    kernel = call.kernel.removesuffix("_tflm")  # a TFLM build of a kernel: the same loops (runtime_c/src/*_tflm.c)
    if kernel in ELEMENTWISE:
        found = []
        for k in ELEMENTWISE[kernel]:
            a = call.args[k]
            if isinstance(a, Buf) and g.tensors[a.tensor].shape == out.shape and \
                    g.tensors[a.tensor].nbytes == out.nbytes and a.tensor not in [t for t, _ in found]:
                found.append((a.tensor, 0))
        return found
    if kernel in WINDOWED:
        params, x = call.args[0], call.args[2]
        if not isinstance(params, Struct) or params.ctype != "ec_conv_params" or not isinstance(x, Buf):
            return []
        p = {k: int(v) for k, v in params.fields.items()}
        if p["batch"] != 1:
            return []
        shift = window_shift(p, WINDOWED[kernel])
        return [(x.tensor, shift)] if shift < out.nbytes else []  # else the two would not overlap
    if kernel in CHANNELWISE:
        params, x = call.args[0], call.args[2]
        if not isinstance(params, Struct) or params.ctype != "ec_conv_params" or not isinstance(x, Buf):
            return []
        p = {k: int(v) for k, v in params.fields.items()}
        return [(x.tensor, 0)] if p["batch"] == 1 and p["in_c"] == p["out_c"] else []
    return []


def scratch_over(calls: list[Call]) -> list[tuple[str, int]]:
    """(input, shift) pairs where the single call's scratch may start shift bytes before that input when the input
    dies at the call (SCRATCH_OVER)."""
    if len(calls) != 1 or calls[0].kernel.removesuffix("_tflm") not in SCRATCH_OVER:
        return []
    rows, depth, x = calls[0].args[0], calls[0].args[1], calls[0].args[4]
    # depth a multiple of the arena's 16-byte alignment: the shift is exactly depth, so the zeroed padding (from
    # byte 2 * depth of the scratch) starts at the input's end, not inside it
    return [(x.tensor, int(depth))] if rows == 1 and isinstance(x, Buf) and int(depth) % 16 == 0 else []
