"""Tests for jetatag.runtime: the process set-up of the torch commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jetatag.runtime import configure_process, keep_freed_memory


def test_openmp_threads_sleep_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    configure_process()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    configure_process()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_allocator_thresholds_are_set_on_glibc() -> None:
    assert keep_freed_memory() is True


def test_the_command_line_sets_the_policy_before_torch_loads() -> None:
    """A `jetatag` command's torch sees OMP_WAIT_POLICY=PASSIVE: it is set before any handler imports torch."""
    code = (
        "import os, sys; from jetatag import cli; "
        "cli.cmd_labels = lambda args: print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules); "
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", code + "sys.exit(cli.main(['labels', '--raw', 'x', '--out', 'y']))"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.stdout.split() == ["PASSIVE", "False"], out.stderr
