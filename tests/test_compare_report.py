"""compare's report.html, plots and recommendation, on rows of known values (no builds)."""

from __future__ import annotations

import math
import re

import pytest

from edgec.compare import _point_labels, html_report, plots, recommend

CMD = "edgec validate m.onnx --target cortex-m0plus --quantize int8 --calib c.npz --inputs x.npz"


def _rows() -> list[dict]:
    def row(config, sqnr, flash, ram, instructions, **kw):
        return {"config": config, "sqnr_db": sqnr, "flash_bytes": flash, "ram_bytes": ram,
                "instructions": instructions, "command": CMD, **kw}

    return [row("float32", math.inf, 400_000, 30_000, 9_000_000, float_reference=True),
            row("int8 <b>", 30.0, 300_000, 12_000, 2_000_000, bitexact=1.0),  # too much flash for 256 KiB
            row("int4", 29.5, 120_000, 12_000, 2_500_000, bitexact=1.0),
            row("int4 again", 29.5, 120_000, 12_000, 2_600_000, bitexact=1.0),  # the same point as int4
            row("int4 smaller", 29.2, 100_000, 12_000, 2_700_000, bitexact=1.0),
            row("pruned", 20.0, 60_000, 12_000, 1_500_000, bitexact=1.0),
            {"config": "broken", "error": "boom <x>", "command": CMD}]


def test_recommendation_within_the_targets_limits():
    text = recommend(_rows(), "cortex-m0plus")  # 256 KiB flash, 32 KiB RAM: not int8 <b>
    assert text == ("Recommendation for cortex-m0plus (256 KiB flash, 32 KiB RAM): int4: SQNR 29.5 dB, 117.2 KiB "
                    "flash, 11.7 KiB RAM, 2.5 M instructions; within 1 dB of the best SQNR that fits (29.5 dB), the "
                    "fewest instructions, then the least flash.")
    assert recommend(_rows(), "cortex-m7").startswith("Recommendation for cortex-m7 (2,048 KiB flash, 512 KiB RAM): "
                                                      "int8 <b>: SQNR 30.0 dB")


def test_report_html(tmp_path):
    rows = _rows()
    images = plots(rows, tmp_path)
    html_report(rows, images, "edgec compare: m.onnx on cortex-m0plus", tmp_path / "report.html", "cortex-m0plus")
    page = (tmp_path / "report.html").read_text()
    assert "int8 &lt;b&gt;" in page and "boom &lt;x&gt;" in page and "<b>" not in page  # escaped
    assert "Recommendation for cortex-m0plus" in page
    assert '<td class="best">1.5 M</td>' in page  # the fewest instructions, in millions
    assert '<td class="best">58.6 KiB</td>' in page  # the least flash, in KiB
    assert '<td class="name best">' not in page and '<td class="name">int4</td>' in page
    front = re.findall(r'<tr class="front"><td>(\d+)</td>', page)
    assert front == ["2", "3", "4", "5", "6"]  # not dominated in (SQNR, flash); float32 has no SQNR number
    assert page.count("<li><code>") == len(rows) and "other random samples" not in page
    if images:  # with matplotlib
        assert page.count("data:image/png;base64,") == len(images) == 3


@pytest.mark.parametrize("cost, scale", [("flash_bytes", 1024), ("instructions", 1e6)])
def test_plot_labels_are_numbers_and_float32_is_no_point(cost, scale):
    labels = {text: (x, y) for text, x, y in _point_labels(_rows(), cost, scale)}
    if cost == "flash_bytes":  # int4 and int4 again lie on each other: one label
        assert sorted(labels) == ["2", "3,4", "5", "6"] and labels["3,4"] == (120_000 / 1024, 29.5)
    else:
        assert sorted(labels) == ["2", "3", "4", "5", "6"]
