""".npz sample files: one array per model input name with a leading sample axis."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import EdgecError
from .ir import Graph


def load_samples(path: Path, g: Graph, what: str) -> list[dict[str, np.ndarray]]:
    """Samples as {input name: float32 array of the input's shape}. Batch-1 models also take (N, *shape[1:])."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
        arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EdgecError(f"{path}: cannot read {what} data as .npz ({exc})") from None
    return samples_from_arrays(arrays, g, what, str(path))


def samples_from_arrays(arrays: Mapping[str, np.ndarray], g: Graph, what: str,
                        path: str = "the arrays") -> list[dict[str, np.ndarray]]:
    """load_samples for arrays in memory ({input name: array with a leading sample axis}); path names them in
    errors."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if len(arrays) == 1 and len(g.inputs) == 1:
        arrays = {g.inputs[0]: next(iter(arrays.values()))}
    missing = [n for n in g.inputs if n not in arrays]
    if missing:
        raise EdgecError(f"{path}: {what} data has arrays {sorted(arrays)}, but the model's inputs are "
                         f"{g.inputs}; missing: {', '.join(missing)}")
    per_input = {}
    count = None
    for name in g.inputs:
        a = arrays[name]
        shape = g.shape(name)
        if not np.issubdtype(a.dtype, np.floating):
            a = _dequantized(path, what, name, a, g)
        if a.shape[1:] == shape:
            pass
        elif shape[0] == 1 and a.shape[1:] == shape[1:]:
            a = a.reshape((a.shape[0],) + shape)
        else:
            raise EdgecError(f"{path}: {what} array '{name}' has shape {a.shape}; expected (N, "
                             f"{', '.join(map(str, shape))}) for input '{name}' of shape {list(shape)}")
        if count is not None and a.shape[0] != count:
            raise EdgecError(f"{path}: {what} arrays have different sample counts ({count} and {a.shape[0]})")
        count = a.shape[0]
        per_input[name] = a.astype(np.float32)
    if not count:
        raise EdgecError(f"{path}: {what} data holds no samples")
    return [{n: per_input[n][i] for n in g.inputs} for i in range(count)]


def _dequantized(path: Path, what: str, name: str, a: np.ndarray, g: Graph) -> np.ndarray:
    """Integer samples of an integer model input (a .tflite model's own int8 inputs) as the real values they
    stand for; quantizing them again with the same scale gives back the same integers."""
    t = g.tensors[name]
    quant = (t.scale, t.zero_point) if t.scale is not None else t.fixed_quant
    dtype = t.dtype if t.dtype != "float32" else t.fixed_dtype
    if quant is None or a.dtype != np.dtype(dtype):
        want = f"{dtype} (the model's own integers) or float" if quant is not None else "float32"
        raise EdgecError(f"{path}: {what} array '{name}' has dtype {a.dtype}; the model input takes {want} "
                         "(save such arrays)")
    scale, zp = quant
    return ((a.astype(np.float64) - zp) * scale).astype(np.float32)


def random_samples(g: Graph, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Standard normal samples; rounded to integers for an integer input (given as float32, see load.py)."""
    rng = np.random.default_rng(seed)
    ints = {n for n, t in g.info.get("input_types", {}).items() if np.issubdtype(np.dtype(t), np.integer)}
    return [{n: (np.round if n in ints else np.asarray)(rng.standard_normal(g.shape(n))).astype(np.float32)
             for n in g.inputs} for _ in range(count)]
