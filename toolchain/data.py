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
            raise EdgecError(f"{path}: {what} array '{name}' has dtype {a.dtype}; the model input is float32 "
                             "(save float arrays)")
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


def random_samples(g: Graph, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Standard normal samples; rounded to integers for an integer input (given as float32, see frontends/onnx.py)."""
    rng = np.random.default_rng(seed)
    ints = {n for n, t in g.info.get("input_types", {}).items() if np.issubdtype(np.dtype(t), np.integer)}
    return [{n: (np.round if n in ints else np.asarray)(rng.standard_normal(g.shape(n))).astype(np.float32)
             for n in g.inputs} for _ in range(count)]
