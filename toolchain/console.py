"""What edgec prints besides its results: progress on stderr, and the one table layout every command uses.

Progress: a stage (calibration, a sensitivity sweep, a compare grid, compiling C, running samples) that lasts
longer than MIN_SECONDS gets a tqdm bar with its ETA when stderr is a terminal, or, when it is not (a CI log, a
pipe), one line when it ends: "edgec: calibrating: 16 samples in 2.4 s". `--quiet` (the quiet() context) prints
neither. Warnings and errors are not progress: they are printed whatever the setting."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

MIN_SECONDS = 1.0  # stages shorter than this print nothing
QUIET = False  # set by quiet() (edgec --quiet)


@contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """No progress inside (when on); the setting before is restored after."""
    global QUIET
    before = QUIET
    QUIET = before or on
    try:
        yield
    finally:
        QUIET = before


class Stage:
    """One stage's progress: update(n) as items finish; a tqdm bar on a terminal, one line at the end otherwise."""

    def __init__(self, label: str, total: int | None, unit: str) -> None:
        self.label, self.total, self.unit, self.done = label, total, unit, 0
        self.start = time.monotonic()
        self.bar = None
        if not QUIET and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit=f" {unit}", file=sys.stderr, delay=MIN_SECONDS,
                            dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def close(self, finished: bool) -> None:
        if self.bar is not None:
            self.bar.close()
            return
        elapsed = time.monotonic() - self.start
        if finished and not QUIET and elapsed >= MIN_SECONDS:
            count = f"{self.done} {self.unit} in " if self.total is not None else ""
            print(f"edgec: {self.label}: {count}{elapsed:.1f} s", file=sys.stderr, flush=True)


@contextmanager
def stage(label: str, total: int | None = None, unit: str = "steps") -> Iterator[Stage]:
    """Progress of the code inside: call .update() per finished item (total: how many, None when unknown). A
    stage that fails prints no line (the error says what happened)."""
    s = Stage(label, total, unit)
    try:
        yield s
    except BaseException:
        s.close(finished=False)
        raise
    s.close(finished=True)


def track(items: Sequence, label: str, unit: str = "steps") -> Iterator:
    """The items, one stage of len(items) steps over the loop that consumes them."""
    with stage(label, len(items), unit) as s:
        for item in items:
            yield item
            s.update()


def table(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None, right: Iterable[int] = (),
          indent: int = 2, rule_before_last: bool = False) -> str:
    """Rows of cells in columns, each as wide as its widest cell (ANSI bold codes take no width), two spaces
    apart; columns left-aligned except the indices in `right`; an optional header row and a rule before the last
    row (a total)."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + [list(r) for r in rows]]
    if not cells:
        return ""
    ncols = max(len(r) for r in cells)
    widths = [max((_width(r[i]) for r in cells if i < len(r)), default=0) for i in range(ncols)]
    right = set(right)

    def line(row: list[str]) -> str:
        padded = [(c.rjust if i in right else c.ljust)(widths[i] + len(c) - _width(c)) for i, c in enumerate(row)]
        return (" " * indent + "  ".join(padded)).rstrip()

    lines = [line(r) for r in cells]
    if rule_before_last and len(lines) > 1:
        lines.insert(len(lines) - 1, " " * indent + "-" * (sum(widths) + 2 * (ncols - 1)))
    return "\n".join(lines)


def _width(cell: str) -> int:
    return len(cell.replace("\033[1m", "").replace("\033[0m", ""))


def json_text(x, indent: int | None = None) -> str:
    """x as RFC 8259 JSON: numpy scalars as numbers, tuples as lists, and NaN or infinity (an exact SQNR is
    infinite) as null, which strict parsers (jq, JavaScript) need."""
    return json.dumps(json_values(x), indent=indent, allow_nan=False)


def json_values(x):
    """x with the values json_text writes (numpy scalars as Python numbers, NaN and infinity as None)."""
    if isinstance(x, dict):
        return {k: json_values(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_values(v) for v in x]
    x = x.item() if isinstance(x, np.generic) else x
    return None if isinstance(x, float) and not math.isfinite(x) else x
