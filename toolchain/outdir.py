"""Where edgec writes: output folders and single output files. Nothing edgec writes deletes or overwrites a file it
did not create.

A folder (build --out, validate/profile --out, compare --out) is written when it does not exist yet, when it is
empty, or when edgec made it: then it holds a marker file, .edgec-build, listing the files edgec wrote there, and
only those are replaced or removed; any other file is left as it is. Everything else (a folder of the user's, the
current folder or one of its parents, the home folder, a file, a symbolic link, a place edgec cannot write) is
refused with an EdgecError before any work is done. A build is written into a temporary sibling folder first, so a
failure leaves no half-written output.

A single file named with --output/-o/--plot is written through a temporary file in the same folder and renamed
over the target, like gcc -o: an existing regular file is replaced, a folder, a symbolic link, a missing folder or
an input file of the same command is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import EdgecError

MARKER = ".edgec-build"
MARKER_KIND = "edgec output folder"


def _expanded(path: Path, what: str) -> Path:
    if str(path).startswith("~"):
        raise EdgecError(f"{what} {path}: '~' was not expanded (quoted?); give the path itself")
    return Path(path)


def _writable_place(folder: Path, what: str, path: Path) -> None:
    """The nearest existing folder of path must be a folder edgec can write in."""
    anc = folder
    while not anc.exists() and not anc.is_symlink() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise EdgecError(f"{what} {path}: {anc} is not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise EdgecError(f"{what} {path}: cannot write in {anc} (permission denied); choose another place")


def read_marker(out: Path) -> list[str]:
    """The files edgec wrote into its folder out, from the marker; refused when the marker is not edgec's."""
    try:  # (a regular file only: reading a FIFO would block; RecursionError: JSON nested deeply)
        data = json.loads((out / MARKER).read_text()) if (out / MARKER).is_file() else None
        files = data["files"] if data.get("kind") == MARKER_KIND else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        files = None
    if not isinstance(files, list) or not all(isinstance(f, str) and _inside(f) for f in files):
        raise EdgecError(f"{out / MARKER} is not an edgec marker file (or is damaged); edgec does not write into "
                         f"{out}: give a new folder, or delete {out} yourself")
    return files


def _inside(rel: str) -> bool:
    """A marker's entry: a relative path below the folder, of names the file system can hold (no NUL, each name at
    most 255 bytes: a longer one made every later file operation raise)."""
    p = Path(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel and rel != MARKER and \
        "\0" not in rel and len(rel.encode(errors="replace")) < 4096 and \
        all(len(part.encode(errors="replace")) <= 255 for part in p.parts)


def _write_marker(out: Path, files: list[str]) -> None:
    text = json.dumps({"kind": MARKER_KIND, "note": "edgec replaces or removes only the files listed here",
                       "files": sorted(files)}, indent=1) + "\n"
    tmp = out / f"{MARKER}.tmp"
    tmp.write_text(text)
    os.replace(tmp, out / MARKER)


def check_dir(out: Path, what: str = "--out") -> list[str] | None:
    """Whether edgec may write the folder out: None when it does not exist yet, else the files edgec wrote there
    (none for an empty folder). Raises EdgecError (exit 2) for any other folder, before any work is done."""
    out = _expanded(out, what)
    if out.is_symlink():
        raise EdgecError(f"{what} {out}: is a symbolic link; edgec writes only into a real folder: give a new "
                         "folder's path")
    resolved, cwd = out.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path.home().resolve():
        raise EdgecError(f"{what} {out}: is the current folder, one of its parents or the home folder; edgec writes "
                         "its output into a folder of its own: give a new folder such as build/model")
    if not out.exists():
        _writable_place(out.parent, what, out)
        return None
    if not out.is_dir():
        raise EdgecError(f"{what} {out}: is a file, not a folder; give a new folder's path")
    if not os.access(out, os.W_OK | os.X_OK):
        raise EdgecError(f"{what} {out}: cannot write in it (permission denied); choose another folder")
    if not (out / MARKER).is_file():
        if any(out.iterdir()):
            raise EdgecError(f"{what} {out}: is a folder with files edgec did not write (no {MARKER} marker), and "
                             "edgec never deletes or overwrites those: give a new folder, or empty this one yourself")
        return []
    files = read_marker(out)
    for rel in files:
        for parent in list(Path(rel).parents)[:-1]:
            if (out / parent).is_symlink():
                raise EdgecError(f"{what} {out}: {out / parent} is a symbolic link where edgec wrote a folder; "
                                 "remove it or give a new folder")
    return files


def temp_dir(out: Path, what: str = "--out") -> Path:
    """A fresh temporary folder beside out to write into (then publish it); checks out first."""
    check_dir(out, what)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise EdgecError(f"{what} {out}: cannot write there ({exc.strerror or exc})") from None


def publish(tmp: Path, out: Path, what: str = "--out") -> None:
    """Move the finished folder tmp (from temp_dir) to out: a rename when out is new; into an existing edgec folder
    (or an empty one), replace the files edgec wrote before, remove those it no longer writes and leave all others.
    tmp is gone afterwards."""
    old = check_dir(out, what)
    new = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file() or p.is_symlink())
    if old is None:
        _write_marker(tmp, new)
        tmp.rename(out)
        return
    for rel in new:
        target = out / rel
        if rel not in old and (target.exists() or target.is_symlink()):
            raise EdgecError(f"{what} {out}: {target} was not written by edgec and edgec does not overwrite it; move "
                             "it away or give a new folder")
        for parent in list(Path(rel).parents)[:-1]:
            if (out / parent).is_symlink() or ((out / parent).exists() and not (out / parent).is_dir()):
                raise EdgecError(f"{what} {out}: {out / parent} is in the way of a folder edgec writes; move it "
                                 "away or give a new folder")
    _write_marker(out, sorted(set(old) | set(new)))  # an interruption leaves a folder edgec still knows as its own
    for rel in new:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, out / rel)
    for rel in sorted(set(old) - set(new)):
        stale = out / rel
        if stale.is_symlink() or stale.is_file():
            stale.unlink()
        for parent in list(Path(rel).parents)[:-1]:  # folders edgec made, once empty
            try:
                (out / parent).rmdir()
            except OSError:
                break
    _write_marker(out, new)
    shutil.rmtree(tmp, ignore_errors=True)


def claim_dir(out: Path, files: list[str], folders: list[str], what: str = "--out") -> None:
    """For a command that fills its folder as it goes (compare): create out, or accept an edgec folder (or an empty
    one), and mark the files and whole folders it will write there as edgec's. Refused when one of them exists and
    edgec did not write it."""
    old = check_dir(out, what) or []
    for name in files:
        p = out / name
        if (p.exists() or p.is_symlink()) and name not in old:
            raise EdgecError(f"{what} {out}: {p} was not written by edgec and edgec does not overwrite it; move it "
                             "away or give a new folder")
    for name in folders:
        p = out / name
        if (p.exists() or p.is_symlink()) and f"{name}/" not in old and (not p.is_dir() or any(p.iterdir())):
            raise EdgecError(f"{what} {out}: {p} was not written by edgec and edgec does not write into it; move it "
                             "away or give a new folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_marker(out, sorted(set(old) | set(files) | {f"{name}/" for name in folders}))
    except OSError as exc:
        raise EdgecError(f"{what} {out}: cannot write there ({exc.strerror or exc})") from None


def check_file(path: Path, what: str, inputs: tuple[Path | None, ...] = ()) -> Path:
    """Refuse an output file path edgec must not write: a folder, a symbolic link, anything but a regular file, a
    missing or unwritable folder, or one of the command's input files."""
    path = _expanded(path, what)
    if path.is_symlink():
        raise EdgecError(f"{what} {path}: is a symbolic link; edgec does not write through links: give a file name")
    if path.exists() and not path.is_file():
        raise EdgecError(f"{what} {path}: is {'a folder' if path.is_dir() else 'not a regular file'}; give a file name")
    if not path.parent.is_dir():
        raise EdgecError(f"{what} {path}: the folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise EdgecError(f"{what} {path}: cannot write in {path.parent} (permission denied)")
    for src in inputs:
        if src is not None and path.exists() and Path(src).exists() and path.samefile(src):
            raise EdgecError(f"{what} {path}: is also an input of this command; give another output file")
    return path


def write_file(path: Path, write: Callable[[Path], None], what: str,
               inputs: tuple[Path | None, ...] = ()) -> None:
    """Write one output file: write(tmp) fills a temporary file beside it (same suffix), renamed over path only
    when complete, so a failure leaves no half-written file."""
    path = check_file(path, what, inputs)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise EdgecError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
