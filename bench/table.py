"""Plain-text tables for the bench scripts: each column as wide as its widest cell, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def print_table(head: Sequence[object], rows: Sequence[Sequence[object]], left: Collection[int] = ()) -> None:
    """Print head and rows; the columns whose indices are in `left` (names, labels) are left-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) if i in left else str(x).rjust(w)
                        for i, (x, w) in enumerate(zip(row, widths))).rstrip())
