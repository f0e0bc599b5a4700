"""Run a build directory on its target: host through cffi, emulated targets in QEMU."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import host
from .build import HARNESS_DIR, META_FILE
from .errors import EdgecError
from .reference import dequantize, quantize_input
from .target import load_target


@dataclass
class RunResult:
    outputs: list[dict[str, np.ndarray]]  # per sample, float32 (dequantized for int8 builds)
    raw: list[dict[str, np.ndarray]]  # per sample, as the C produced them (int8, int16 or float32)
    instructions: list[int] = field(default_factory=list)
    stack_bytes: int | None = None
    profile: list[dict] = field(default_factory=list)  # profiling build: per sample, see FirmwareResult.profile
    tensors: list[list[tuple[int, bytes]]] = field(default_factory=list)  # dump build: per sample, (layer, bytes)


def split_dump(data: bytes) -> list[tuple[int, bytes]]:
    """tensors.bin records (uint32 layer, uint32 bytes, the bytes, little-endian) -> [(layer, bytes)]."""
    records, at = [], 0
    while at < len(data):
        if at + 8 > len(data):
            raise EdgecError("tensors.bin ends inside a record header")
        layer, n = (int(x) for x in np.frombuffer(data[at:at + 8], "<u4"))
        if at + 8 + n > len(data):
            raise EdgecError(f"tensors.bin ends inside the record of layer {layer}")
        records.append((layer, data[at + 8:at + 8 + n]))
        at += 8 + n
    return records


_INT_TYPES = {"int8_t": "int8", "int16_t": "int16"}


def read_meta(build_dir: Path) -> dict:
    """The build's edgec.json, checked for what running it needs (the file may have been edited or damaged)."""
    path = Path(build_dir) / META_FILE
    if not path.is_file():
        raise EdgecError(f"{build_dir}: not an edgec build directory (no {META_FILE}); create one with edgec build")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EdgecError(f"{path}: cannot read the build description ({exc}); rebuild with edgec build") from None
    problem = _meta_problem(meta)
    if problem:
        raise EdgecError(f"{path}: damaged build description ({problem}); rebuild with edgec build")
    return meta


def _meta_problem(meta) -> str | None:
    if not isinstance(meta, dict):
        return "not a JSON object"
    if not isinstance(meta.get("name"), str) or not meta["name"].isidentifier() or not meta["name"].isascii():
        return "'name' is not a C identifier"
    if not isinstance(meta.get("target"), str):
        return "'target' is not a name"
    for key in ("inputs", "outputs"):
        ios = meta.get(key)
        if not isinstance(ios, list) or not ios:
            return f"'{key}' is not a list of tensors"
        for io in ios:
            if not isinstance(io, dict) or not isinstance(io.get("name"), str):
                return f"an entry of '{key}' has no name"
            shape = io.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                      for d in shape):
                return f"{key[:-1]} '{io['name']}' has no valid shape"
            if io.get("ctype") not in ("float", "int8_t", "int16_t"):
                return f"{key[:-1]} '{io['name']}' has an unknown C type {io.get('ctype')!r}"
            if io["ctype"] != "float" and not (_number(io.get("scale")) and _number(io.get("zero_point"))):
                return f"{key[:-1]} '{io['name']}' has no scale and zero point"
            size = {"float": 4, "int8_t": 1, "int16_t": 2}[io["ctype"]] * int(np.prod(shape, dtype=object))
            if key == "outputs" and io.get("bytes") != size:
                return f"output '{io['name']}' declares {io.get('bytes')} bytes, its shape and type make {size}"
    native = meta.get("integer_outputs", [])
    if not isinstance(native, list) or not all(isinstance(n, str) for n in native):
        return "'integer_outputs' is not a list of output names"
    return None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x))


def encode(meta: dict, sample: dict[str, np.ndarray]) -> list[bytes]:
    out = []
    for io in meta["inputs"]:
        x = sample[io["name"]].reshape(io["shape"])
        if io["ctype"] in _INT_TYPES:
            x = quantize_input(x, io["scale"], io["zero_point"], _INT_TYPES[io["ctype"]])
        else:
            x = x.astype(np.float32)
        out.append(np.ascontiguousarray(x).tobytes())
    return out


def decode(meta: dict, blobs: list[bytes]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    vals, raw = {}, {}
    for io, blob in zip(meta["outputs"], blobs):
        dtype = {"int8_t": np.int8, "int16_t": np.int16}.get(io["ctype"], np.float32)
        r = np.frombuffer(blob, dtype=dtype).reshape(io["shape"])
        raw[io["name"]] = r
        vals[io["name"]] = dequantize(r, io["scale"], io["zero_point"]) if dtype != np.float32 else r.copy()
    return vals, raw


def run_build(build_dir: Path, samples: list[dict[str, np.ndarray]], timeout_s: float = 600) -> RunResult:
    build_dir = Path(build_dir)
    meta = read_meta(build_dir)
    target = load_target(meta["target"])
    encoded = [encode(meta, s) for s in samples]
    out_bytes = [io["bytes"] for io in meta["outputs"]]
    result = RunResult([], [])
    dump = meta.get("instrument") == "dump"
    if target.kind == "host":
        dumps: list[list[tuple[int, bytes]]] | None = [] if dump else None
        lib = build_dir / HARNESS_DIR / f"lib{meta['name']}.so"
        if not lib.is_file():
            raise EdgecError(f"{build_dir}: no {HARNESS_DIR}/{lib.name} (the host library of this build); rebuild "
                             "with edgec build")
        blobs = host.run_shared(lib, meta["name"], encoded, out_bytes, dumps)
        result.tensors = dumps or []
    else:
        from .firmware import run_firmware

        elf = build_dir / HARNESS_DIR / "firmware.elf"
        if not elf.is_file():
            raise EdgecError(f"{build_dir}: no {HARNESS_DIR}/firmware.elf (the build was made with --force for a model "
                             "that does not fit the target)")
        fw = run_firmware(target, elf, [b"".join(e) for e in encoded], sum(out_bytes), timeout_s=timeout_s,
                          profile_function=f"{meta['name']}_invoke" if meta.get("instrument") == "profile" else None)
        blobs = []
        for blob in fw.outputs:
            parts, at = [], 0
            for n in out_bytes:
                parts.append(blob[at:at + n])
                at += n
            blobs.append(parts)
        result.instructions, result.stack_bytes, result.profile = fw.instructions, fw.stack_bytes, fw.profile
        if dump:
            records = split_dump(fw.tensors)
            per = len(records) // max(len(samples), 1)
            if per * len(samples) != len(records):
                raise EdgecError(f"tensors.bin holds {len(records)} records for {len(samples)} samples")
            result.tensors = [records[i * per:(i + 1) * per] for i in range(len(samples))]
    for b in blobs:
        vals, raw = decode(meta, b)
        result.outputs.append(vals)
        result.raw.append(raw)
    return result
