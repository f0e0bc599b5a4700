""".npz sample files: one array per model input name with a leading sample axis.

Sample files come from elsewhere: each array's .npy header is read and checked (format, size) before any array is
loaded, so a header that claims a huge shape is refused without allocating it, and non-finite values
are refused with the file and array named."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import EdgecError
from .ir import Graph

MAX_SAMPLE_BYTES = 1 << 30  # one sample file's arrays together, as their headers declare them
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def npz_headers(path: Path, what: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} from the .npy headers inside an .npz, without loading any array."""
    if not path.exists():
        raise EdgecError(f"{path}: no such file (the {what} data)")
    if path.is_dir():
        raise EdgecError(f"{path}: is a directory; give the {what} data as an .npz file (numpy.savez)")
    try:
        if not zipfile.is_zipfile(path):
            raise EdgecError(f"{path}: not an .npz file (numpy.savez writes one; a .npy file holds a single array: "
                             f"save {what} data with numpy.savez(path, input_name=array))")
        headers = {}
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise EdgecError(f"{path}: member '{info.filename}' is not a .npy array; not an .npz sample file")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in _HEADER_READERS:
                        raise EdgecError(f"{path}: array '{info.filename[:-4]}' has .npy format version {version}; "
                                         "save it with numpy.savez")
                    shape, _, dtype = _HEADER_READERS[version](f)
                if any(d < 0 for d in shape) or dtype.hasobject:
                    raise EdgecError(f"{path}: array '{info.filename[:-4]}' has an invalid header (shape {shape}, "
                                     f"dtype {dtype})")
                headers[info.filename[:-4]] = (tuple(int(d) for d in shape), dtype)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise EdgecError(f"{path}: cannot read {what} data as .npz ({exc})") from None
    total = sum(int(np.prod(s, dtype=object)) * d.itemsize for s, d in headers.values())
    if total > MAX_SAMPLE_BYTES:
        raise EdgecError(f"{path}: {what} arrays declare {total:,} bytes, more than the {MAX_SAMPLE_BYTES:,} edgec "
                         "reads from a sample file; use fewer samples")
    return headers


def load_samples(path: Path, g: Graph, what: str) -> list[dict[str, np.ndarray]]:
    """Samples as {input name: float32 array of the input's shape}. Batch-1 models also take (N, *shape[1:])."""
    path = Path(path)
    headers = npz_headers(path, what)  # checked before any array is loaded
    return samples_from_arrays({key: _load_array(path, key, what) for key in headers}, g, what, str(path))


def samples_from_arrays(arrays: Mapping[str, np.ndarray], g: Graph, what: str,
                        path: str = "the arrays") -> list[dict[str, np.ndarray]]:
    """load_samples for arrays in memory ({input name: array with a leading sample axis}); path names them in
    errors."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    keys = {k: k for k in arrays}
    if len(arrays) == 1 and len(g.inputs) == 1:
        keys = {g.inputs[0]: next(iter(arrays))}
    missing = [n for n in g.inputs if n not in keys]
    if missing:
        raise EdgecError(f"{path}: {what} data has arrays {sorted(arrays)}, but the model's inputs are "
                         f"{g.inputs}; missing: {', '.join(missing)}")
    per_input = {}
    count = None
    for name in g.inputs:
        key = keys[name]
        a = arrays[key]
        shape = g.shape(name)
        if a.dtype.hasobject:
            raise EdgecError(f"{path}: {what} array '{key}' holds Python objects; save numeric arrays")
        if not np.issubdtype(a.dtype, np.floating):
            a = _dequantized(path, what, name, key, a, g)
        if a.ndim >= 1 and a.shape[1:] == shape:
            pass
        elif a.ndim >= 1 and shape[0] == 1 and a.shape[1:] == shape[1:]:
            a = a.reshape((a.shape[0],) + shape)
        else:
            raise EdgecError(f"{path}: {what} array '{key}' has shape {a.shape}; expected (N, "
                             f"{', '.join(map(str, shape))}) for input '{name}' of shape {list(shape)}")
        if count is not None and a.shape[0] != count:
            raise EdgecError(f"{path}: {what} arrays have different sample counts ({count} and {a.shape[0]})")
        count = a.shape[0]
        finite = np.isfinite(a)
        if not finite.all():
            raise EdgecError(f"{path}: {what} array '{key}' holds {int(a.size - finite.sum())} NaN or infinite "
                             "values; edgec needs finite sample values")
        if a.size and float(np.abs(a).max()) > float(np.finfo(np.float32).max):
            raise EdgecError(f"{path}: {what} array '{key}' holds values beyond the float32 range")
        per_input[name] = a.astype(np.float32)
    if not count:
        raise EdgecError(f"{path}: {what} data holds no samples")
    return [{n: per_input[n][i] for n in g.inputs} for i in range(count)]


def _dequantized(path: str, what: str, name: str, key: str, a: np.ndarray, g: Graph) -> np.ndarray:
    """Integer samples of an integer model input (a .tflite model's own int8 inputs) as the real values they
    stand for; quantizing them again with the same scale gives back the same integers."""
    t = g.tensors[name]
    quant = (t.scale, t.zero_point) if t.scale is not None else t.fixed_quant
    dtype = t.dtype if t.dtype != "float32" else t.fixed_dtype
    if quant is None or a.dtype != np.dtype(dtype):
        want = f"{dtype} (the model's own integers) or float" if quant is not None else "float32"
        raise EdgecError(f"{path}: {what} array '{key}' has dtype {a.dtype}; the model input takes {want} "
                         "(save such arrays)")
    scale, zp = quant
    return ((a.astype(np.float64) - zp) * scale).astype(np.float32)


def _load_array(path: Path, key: str, what: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return npz[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise EdgecError(f"{path}: cannot read {what} array '{key}' ({exc})") from None


def random_samples(g: Graph, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Standard normal samples; rounded to integers for an integer input (given as float32, see frontends/onnx.py)."""
    rng = np.random.default_rng(seed)
    ints = {n for n, t in g.info.get("input_types", {}).items() if np.issubdtype(np.dtype(t), np.integer)}
    return [{n: (np.round if n in ints else np.asarray)(rng.standard_normal(g.shape(n))).astype(np.float32)
             for n in g.inputs} for _ in range(count)]
