"""Programs for QEMU targets: build a generated C project, run it in QEMU, read the results.

Two kinds of target. "qemu-system": bare-metal firmware (codegen/templates/firmware_main.c.j2 +
targets/cortex-m/startup.c) run with semihosting; it prints the exact instruction count of every run, measured
with SysTick under `qemu -icount shift=0` (see the template). "qemu-user": a static Linux binary
(codegen/templates/linux_main.c.j2) run by QEMU user mode; the instructions are counted by edgec's TCG plugin
(targets/qemu-user/insn_count_plugin.c), built here with the host gcc and cached. Both read input.bin, run
the model once per sample, write output.bin and print the stack high-water mark.

Profiling (per kernel call, exact): a Cortex-M profiling build links the normal model object with its kernel
calls redirected to timing wrappers in the harness; on Cortex-A the plugin watches the unmodified run
function's kernel calls (kernel_call_sites). Both give FirmwareResult.profile.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from edgec.codegen.emit import c_text

from .console import Stage, stage
from .errors import EdgecError
from .paths import TARGETS_DIR, TEMPLATES_DIR
from .target import Target

CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections", "-fstack-usage")
# newlib with librdimon (semihosting stdio); startup.c replaces rdimon's crt0, hence -nostartfiles.
LDFLAGS = ("-nostartfiles", "--specs=rdimon.specs", "-Wl,--gc-sections")
STARTUP_DIR = TARGETS_DIR / "cortex-m"
# Linux user mode: a static binary (not position independent, so nm gives the run-time addresses).
LINUX_LDFLAGS = ("-static", "-no-pie", "-Wl,--gc-sections")
PLUGIN_SOURCE = TARGETS_DIR / "qemu-user" / "insn_count_plugin.c"
PLUGIN_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-fvisibility=hidden")

# Output sections of linker.ld.j2 by where they live.
_CODE_SECTIONS = {".isr_vector", ".text", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array", ".fini_array"}
_FLASH_SECTIONS = _CODE_SECTIONS | {".rodata", ".data"}  # .data's initial values are stored in flash
_RAM_SECTIONS = {".data", ".bss"}


@dataclass
class FirmwareResult:
    outputs: list[bytes]
    instructions: list[int]
    stack_bytes: int
    # profiling: per sample {"calls": [(glue, kernel)] per kernel call of the run function, "return": n}; glue is
    # the run function's own instructions before the call (the call included), kernel the kernel's
    profile: list[dict] = field(default_factory=list)
    tensors: bytes = b""  # tensor dump build: tensors.bin (records of uint32 layer, uint32 bytes, the bytes)


def _run_tool(cmd: list[str], target: Target, what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise EdgecError(
            f"'{cmd[0]}' not found, needed for target {target.name}; install it with: {target.apt_install}"
        ) from None
    if proc.returncode != 0:
        raise EdgecError(f"{what} failed for target {target.name}:\n{(proc.stderr + proc.stdout).strip()}")
    return proc


def _render(template: Path, out: Path, **values: object) -> Path:
    """A harness file from its template; every value passes codegen's c_text, as in the model's own C."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, finalize=c_text)
    out.write_text(env.from_string(template.read_text()).render(**values))
    return out


def _binutil(target: Target, tool: str) -> str:
    """arm-none-eabi-gcc -> arm-none-eabi-<tool>."""
    return target.cc[: -len("gcc")] + tool if target.cc.endswith("gcc") else tool


def _check_buildable(target: Target, name: str) -> None:
    """Refuse a target edgec cannot build firmware for here, or a model name that is not a C identifier."""
    if target.kind not in ("qemu-system", "qemu-user"):
        raise EdgecError(f"target {target.name} is not a QEMU target (kind {target.kind})")
    if not name.isidentifier() or not name.isascii():
        raise EdgecError(f"model name {name!r} is not a C identifier")
    if shutil.which(target.cc) is None:
        raise EdgecError(
            f"C compiler '{target.cc}' not found, needed for target {target.name}; "
            f"install it with: {target.apt_install}"
        )


def _with_harness(target: Target, name: str, sources: list[Path], out_dir: Path, profile_kernels: Sequence[str],
                  profile_calls: int, dump: bool) -> list[Path]:
    """The model sources with the harness: a bare-metal target's main, startup code and linker script (written to
    out_dir/linker.ld), a Linux target's main; refused when two sources share a name."""
    if target.kind == "qemu-system":
        _render(STARTUP_DIR / "linker.ld.j2", out_dir / "linker.ld", target=target)
        main_c = _render(TEMPLATES_DIR / "firmware_main.c.j2", out_dir / "firmware_main.c", name=name,
                         profile_kernels=list(profile_kernels), profile_calls=profile_calls, dump=dump)
        all_sources = [Path(s) for s in sources] + [STARTUP_DIR / "startup.c", main_c]
    else:
        main_c = _render(TEMPLATES_DIR / "linux_main.c.j2", out_dir / "linux_main.c", name=name, dump=dump)
        all_sources = [Path(s) for s in sources] + [main_c]
    stems = [s.stem for s in all_sources]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise EdgecError(f"two source files share the name {duplicates[0]}.c; object files are named after sources")
    return all_sources


def build_firmware(
    target: Target,
    name: str,
    sources: list[Path],
    include_dirs: list[Path],
    out_dir: Path,
    extra_cflags: Sequence[str] = (),
    profile_kernels: Sequence[str] = (),
    profile_calls: int = 0,
    dump: bool = False,
) -> Path:
    """Compile the model sources with the firmware main and startup code; return out_dir/firmware.elf.

    profile_kernels, profile_calls: a Cortex-M profiling build, whose run function (the first source) makes
    profile_calls calls of these kernels: the compiled model is the normal one, and its kernel calls are
    redirected to timing wrappers in the harness (objcopy --redefine-sym). dump: a tensor dump build (the
    sources were written for it). Only the harness and the link differ (see the templates).

    Also writes out_dir/firmware.map. For a bare-metal target the link fails when the program does not fit the
    board's memory. A "qemu-user" target gets a static Linux program with the same protocol.
    """
    _check_buildable(target, name)
    out_dir = Path(out_dir)
    obj_dir = out_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    bare_metal = target.kind == "qemu-system"
    all_sources = _with_harness(target, name, sources, out_dir, profile_kernels, profile_calls, dump)

    base = [target.cc, *target.cflags, target.opt]
    compile_flags = [*CFLAGS, *(f"-I{d}" for d in include_dirs), *extra_cflags]
    if bare_metal:
        lock_ticks, lock_instructions = target.tick_lock
        compile_flags += [f"-DEDGEC_LOCK_TICKS_LOG2={lock_ticks.bit_length() - 1}",
                          f"-DEDGEC_LOCK_INSTRUCTIONS={lock_instructions}"]

    def compile_one(src: Path) -> Path:
        obj = obj_dir / f"{src.stem}.o"
        _run_tool([*base, *compile_flags, "-c", str(src), "-o", str(obj)], target, f"compiling {src}")
        return obj

    with stage(f"compiling the firmware for {target.name}", len(all_sources) + 1, "steps") as progress:
        with ThreadPoolExecutor() as pool:
            futures = [pool.submit(compile_one, src) for src in all_sources]
            for _ in as_completed(futures):
                progress.update()
            objects = [f.result() for f in futures]
        if bare_metal and profile_calls:
            renames = [f"--redefine-sym={k}=edgec_prof_{k}" for k in profile_kernels]
            _run_tool([_binutil(target, "objcopy"), *renames, str(objects[0])], target,
                      f"redirecting the kernel calls of {objects[0]} for profiling")

        elf = _link(target, base, objects, out_dir)
        progress.update()
    return elf


def _link(target: Target, base: list[str], objects: list[Path], out_dir: Path) -> Path:
    """Link out_dir/firmware.elf (and its map): against the board's linker script on bare metal, else a static
    Linux program. A bare-metal link fails when the program does not fit the board's memory."""
    elf = out_dir / "firmware.elf"
    if target.kind == "qemu-system":
        link = [*base, *(str(o) for o in objects), "-T", str(out_dir / "linker.ld"), *LDFLAGS, *target.ldflags]
        what = f"linking {elf} (board flash {target.board_flash} bytes, RAM {target.board_ram} bytes)"
    else:
        link = [*base, *(str(o) for o in objects), *LINUX_LDFLAGS, *target.ldflags]
        what = f"linking {elf}"
    link += [f"-Wl,-Map={out_dir / 'firmware.map'}", "-lm", "-o", str(elf)]
    _run_tool(link, target, what)
    return elf


# An input section line of the memory map: " .text.f  0xADDR  0xSIZE  obj.o", or "  0xADDR  0xSIZE  obj.o" below
# a line holding only the section name when that name is long.
_MAP_INPUT_LINE = re.compile(r" (?:\.\S+|COMMON)?\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*?)\s*$")


def _map_object_sizes(map_file: Path) -> dict[tuple[str, str], int]:
    """(output section, object file name) -> bytes, from the memory map part of a GNU ld map file."""
    text = map_file.read_text()
    sizes: dict[tuple[str, str], int] = {}
    output_section = ""
    for line in text[text.find("Linker script and memory map") :].splitlines():
        if m := re.match(r"(\.\S+|/DISCARD/)", line):
            output_section = m.group(1)
        elif m := _MAP_INPUT_LINE.match(line):
            key = (output_section, Path(m.group(2)).name)
            sizes[key] = sizes.get(key, 0) + int(m.group(1), 16)
    return sizes


def elf_sizes(elf: Path, target: Target, model_sources: Iterable[str | Path] = ()) -> dict[str, int]:
    """Section sizes of a firmware built by build_firmware, in bytes.

    text (code, vector table, unwind tables), rodata, data, bss; flash = text + rodata + data;
    ram_static = data + bss (the stack and heap reservations excluded); model_flash / model_ram: the part of
    flash / static RAM that comes from the given model and runtime source files (read from firmware.map,
    which lies beside the ELF), as opposed to the C library, semihosting and startup code.
    """
    elf = Path(elf)
    proc = _run_tool([_binutil(target, "size"), "-A", str(elf)], target, f"reading section sizes of {elf}")
    section = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            section[parts[0]] = int(parts[1])
    sizes = {
        "text": sum(section.get(s, 0) for s in _CODE_SECTIONS),
        "rodata": section.get(".rodata", 0),
        "data": section.get(".data", 0),
        "bss": section.get(".bss", 0),
    }
    sizes["flash"] = sizes["text"] + sizes["rodata"] + sizes["data"]
    sizes["ram_static"] = sizes["data"] + sizes["bss"]

    map_file = elf.with_suffix(".map")
    if not map_file.is_file():
        raise EdgecError(f"{map_file} not found: elf_sizes needs the link map that build_firmware writes")
    objects = {f"{Path(s).stem}.o" for s in model_sources}
    model = {key: n for key, n in _map_object_sizes(map_file).items() if key[1] in objects}
    sizes["model_flash"] = sum(n for (sec, _), n in model.items() if sec in _FLASH_SECTIONS)
    sizes["model_ram"] = sum(n for (sec, _), n in model.items() if sec in _RAM_SECTIONS)
    sizes["stack_estimate"] = _stack_estimate(elf.parent / "obj", [Path(s).stem for s in model_sources])
    return sizes


def _stack_estimate(obj_dir: Path, stems: list[str]) -> int:
    """Stack of one inference from gcc's -fstack-usage: the run function's frame plus the deepest kernel frame
    (the generated code calls kernels directly and kernels call no other model function)."""
    frames: dict[str, int] = {}
    for stem in stems:
        su = obj_dir / f"{stem}.su"
        if not su.is_file():
            continue
        for line in su.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1].isdigit():
                frames[stem] = max(frames.get(stem, 0), int(parts[1]))
    model = frames.pop(stems[0], 0) if stems else 0
    return model + max(frames.values(), default=0)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgec"


def count_plugin(target: Target) -> Path:
    """The instruction-counting QEMU plugin, built with the host gcc on first use and cached by source hash."""
    source = PLUGIN_SOURCE.read_bytes()
    so = _cache_dir() / f"insn_count_plugin-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if so.is_file():
        return so
    if shutil.which("gcc") is None:
        raise EdgecError(f"'gcc' not found, needed to build the instruction-counting QEMU plugin for target "
                         f"{target.name}; install it with: {target.apt_install}")
    tmp = so.with_name(f".{so.name}.{os.getpid()}")
    try:
        so.parent.mkdir(parents=True, exist_ok=True)
        _run_tool(["gcc", *PLUGIN_CFLAGS, str(PLUGIN_SOURCE), "-o", str(tmp)], target, "building the QEMU plugin")
        os.replace(tmp, so)  # atomic: parallel builds race harmlessly
    except OSError as e:
        raise EdgecError(f"cannot write the QEMU plugin to {so.parent} ({e.strerror}); set XDG_CACHE_HOME to a "
                         "writable folder") from None
    return so


def _symbol_addresses(target: Target, elf: Path) -> dict[str, int]:
    proc = _run_tool([_binutil(target, "nm"), str(elf)], target, f"reading the symbols of {elf}")
    found = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            found[parts[2]] = int(parts[0], 16) & ~1  # a Thumb function's symbol has bit 0 set; its code does not
    return found


# A call of a kernel in the disassembly of the run function: "  4008f8:\tbl\t4009a0 <ec_conv2d_s8>".
_KERNEL_CALL = re.compile(r"\s*([0-9a-f]+):\s+blx?\s+[0-9a-f]+ <(ec_\w+)>")
_INSTRUCTION = re.compile(r"\s*([0-9a-f]+):\s")
# A return: AArch64 ret; Arm/Thumb bx lr, pop or ldm into pc.
_RETURN = re.compile(r"\s*[0-9a-f]+:\s+(ret\b|bx\s+lr\b|pop(\.w)?\s+\{[^}]*\bpc\}|ldm\S*\s+sp!?, \{[^}]*\bpc\})")


def kernel_call_sites(target: Target, elf: Path, function: str) -> tuple[int, list[tuple[int, int, str]], list[int]]:
    """The entry of `function`, in order (call address, return address, kernel) of its kernel calls, and the
    addresses of its return instructions."""
    proc = _run_tool([_binutil(target, "objdump"), "-d", "--no-show-raw-insn", f"--disassemble={function}",
                      str(elf)], target, f"disassembling {function} in {elf}")
    addresses, calls, returns = [], [], []
    for line in proc.stdout.splitlines():
        if m := _INSTRUCTION.match(line):
            addresses.append(int(m.group(1), 16))
            if c := _KERNEL_CALL.match(line):
                calls.append((len(addresses) - 1, c.group(2)))
            elif _RETURN.match(line):
                returns.append(addresses[-1])
    if not addresses:
        raise EdgecError(f"{elf}: no code for {function}")
    sites = []
    for at, kernel in calls:
        if at + 1 >= len(addresses):
            raise EdgecError(f"{elf}: {function} ends with a call of {kernel}")
        sites.append((addresses[at], addresses[at + 1], kernel))
    return addresses[0], sites, returns


def _qemu_command(target: Target, elf: Path, work: Path, watch: list[int] | None = None) -> list[str]:
    elf = Path(elf).resolve()
    if target.kind == "qemu-user":
        symbols = _symbol_addresses(target, elf)
        for s in ("edgec_mark_begin", "edgec_mark_end"):
            if s not in symbols:
                raise EdgecError(f"{elf}: no symbol {s}")
        plugin = (f"{count_plugin(target)},begin={symbols['edgec_mark_begin']:#x},"
                  f"end={symbols['edgec_mark_end']:#x},out={work / 'counts.txt'}")
        if watch:
            plugin += ",watch=" + ":".join(f"{a:#x}" for a in watch)
        return [target.qemu, "-cpu", target.machine, "-plugin", plugin, str(elf)]
    return [
        target.qemu,
        "-M", target.machine,
        "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native",
        "-icount", f"shift={target.icount_shift}",
        "-kernel", str(elf),
    ]  # fmt: skip


def _plugin_counts(work: Path, samples: int, calls: int) -> tuple[list[int], list[dict]]:
    """Per-sample instructions from the plugin's counts (the first is edgec_return_only, one instruction) and,
    when `calls` kernel calls were watched (entry, then each call and its return address, then the function's
    return instructions), each sample's parts: {"calls": [(glue, kernel)], "return": n} as the Cortex-M
    profiling build prints them. The parts are checked against the whole count."""
    path = work / "counts.txt"
    counts, hits, pending = [], [], []
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line.startswith("@"):
            index, before = line[1:].split()
            pending.append((int(index), int(before)))
        else:
            counts.append(int(line))
            hits.append(pending)
            pending = []
    if len(counts) != samples + 1:
        raise EdgecError(f"the QEMU plugin counted {len(counts)} marked calls, expected {samples + 1}")
    overhead = counts[0] - 1
    totals = [c - overhead for c in counts[1:]]
    if not calls:
        return totals, []
    parts = []
    for total, seen in zip(totals, hits[1:]):
        order = [i for i, _ in seen]
        if order[:2 * calls + 1] != list(range(2 * calls + 1)) or len(order) != 2 * calls + 2 or \
                order[-1] <= 2 * calls:
            raise EdgecError(f"profiling: the watched instructions ran in the order {order}, expected the entry, "
                             f"{calls} kernel calls and one return")
        at = [b for _, b in seen]  # instructions executed before: the entry, each call and its return address
        glue = [at[1] - at[0] + 1] + [at[2 * j + 1] - at[2 * j] + 1 for j in range(1, calls)]
        kernel = [at[2 * j + 2] - at[2 * j + 1] - 1 for j in range(calls)]
        tail = at[-1] + 1 - at[-2]  # from the last kernel's return to the function's return, included
        if sum(glue) + sum(kernel) + tail != total:
            raise EdgecError(f"profiling: the parts add up to {sum(glue) + sum(kernel) + tail} instructions, the "
                             f"whole inference counted {total}")
        parts.append({"calls": list(zip(glue, kernel)), "return": tail})
    return totals, parts


def _run_qemu(cmd: list[str], work: Path, timeout_s: float, progress: Stage) -> tuple[subprocess.CompletedProcess,
                                                                                      bool]:
    """Run QEMU, counting the "EDGEC sample=" lines it prints as they come (progress); also whether it was
    killed for not ending within timeout_s."""
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout_s, expire)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
    printed: list[str] = []
    try:
        timer.start()
        reader.start()
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("EDGEC sample="):
                progress.update()
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # interrupted
            proc.kill()
            proc.wait()
        reader.join()
        proc.stdout.close()
        proc.stderr.close()
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(printed), "".join(errors)), expired.is_set()


def _parse_report(stdout: str, counted: list[int], profile: list[dict]) -> tuple[dict[int, int], int | None]:
    """The harness's EDGEC lines: instructions per sample (or the plugin's counts, `counted`), per-call counts
    (appended to profile), the stack high-water mark."""
    instructions: dict[int, int] = {}
    stack_bytes = None
    for line in stdout.splitlines():
        if m := re.fullmatch(r"EDGEC sample=(\d+)(?: instructions=(-?\d+))?", line.strip()):
            i = int(m.group(1))
            instructions[i] = int(m.group(2)) if m.group(2) else counted[i]
        elif m := re.fullmatch(r"EDGEC call=(\d+) glue=(-?\d+) kernel=(-?\d+)", line.strip()):
            if m.group(1) == "0":
                profile.append({"calls": [], "return": None})
            profile[-1]["calls"].append((int(m.group(2)), int(m.group(3))))
        elif m := re.fullmatch(r"EDGEC return=(-?\d+)", line.strip()):
            profile[-1]["return"] = int(m.group(1))
        elif m := re.fullmatch(r"EDGEC stack_bytes=(\d+)", line.strip()):
            stack_bytes = int(m.group(1))
    return instructions, stack_bytes


def run_firmware(
    target: Target, elf: Path, samples: list[bytes], output_bytes: int, timeout_s: float = 120,
    profile_function: str | None = None,
) -> FirmwareResult:
    """Run the firmware in QEMU on the samples; output_bytes is the size of one sample's outputs.

    profile_function: the model's run function, for per-kernel-call counts (FirmwareResult.profile): on a
    Cortex-A target the plugin watches its kernel calls; a Cortex-M profiling build (build_firmware with
    profile_kernels) prints them itself."""
    if shutil.which(target.qemu) is None:
        raise EdgecError(
            f"emulator '{target.qemu}' not found, needed for target {target.name}; "
            f"install it with: {target.apt_install}"
        )
    if len({len(s) for s in samples}) > 1:
        raise EdgecError("all input samples must have the same size")
    watch: list[int] = []
    if profile_function and target.kind == "qemu-user":
        entry, sites, returns = kernel_call_sites(target, elf, profile_function)
        if not sites or not returns:
            raise EdgecError(f"profiling: no kernel call or no return instruction found in {profile_function}")
        watch = [entry] + [a for call, ret, _ in sites for a in (call, ret)] + returns
    with tempfile.TemporaryDirectory(prefix="edgec-qemu-") as tmp:
        work = Path(tmp)
        cmd = _qemu_command(target, elf, work, watch)
        (work / "input.bin").write_bytes(b"".join(samples))
        with stage(f"running {len(samples)} samples in QEMU {target.machine}", len(samples), "samples") as progress:
            proc, timed_out = _run_qemu(cmd, work, timeout_s, progress)
        if timed_out:
            raise EdgecError(
                f"firmware did not finish within {timeout_s:g} s in QEMU {target.machine}; "
                f"the model hangs or needs more time (timeout_s). It printed:\n{proc.stdout.strip()}"
            )
        printed = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            raise EdgecError(f"firmware failed in QEMU {target.machine} (exit code {proc.returncode}):\n{printed}")
        out_path = work / "output.bin"
        output = out_path.read_bytes() if out_path.exists() else b""
        calls = len(sites) if watch else 0
        counted, profile = (_plugin_counts(work, len(samples), calls) if target.kind == "qemu-user" else ([], []))
        dump_path = work / "tensors.bin"
        tensors = dump_path.read_bytes() if dump_path.exists() else b""

    instructions, stack_bytes = _parse_report(proc.stdout, counted, profile)
    if stack_bytes is None or sorted(instructions) != list(range(len(samples))):
        raise EdgecError(
            f"firmware in QEMU {target.machine} reported {len(instructions)} of {len(samples)} samples:\n{printed}"
        )
    if len(output) != output_bytes * len(samples):
        raise EdgecError(
            f"firmware wrote {len(output)} output bytes, expected {len(samples)} samples x {output_bytes} bytes"
        )
    if profile_function and len(profile) != len(samples):
        raise EdgecError(f"profiling: per-call counts for {len(profile)} of {len(samples)} samples:\n{printed}")
    outputs = [output[i * output_bytes : (i + 1) * output_bytes] for i in range(len(samples))]
    return FirmwareResult(outputs, [instructions[i] for i in range(len(samples))], stack_bytes, profile, tensors)
