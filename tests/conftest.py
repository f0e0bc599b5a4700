"""Test setup. In CI (the environment variable CI is set, as CI runs `bash .ci/run` with CI=true), a skipped test
is a failure: every skip in this suite is for a missing dependency (a cross compiler, QEMU, torch,
../shared/models) that CI is supposed to have, so a green run must have run everything."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SKIPS_FAIL = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if SKIPS_FAIL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI={os.environ['CI']}), where every dependency must be present: {reason}"


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    """No progress lines on stderr (edgec.console): whether a stage prints depends on how long it took, and many
    tests check what stderr holds. tests/test_console.py turns them on."""
    from edgec import console

    monkeypatch.setattr(console, "QUIET", True)
