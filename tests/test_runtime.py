"""Tests for jetatag.runtime: the process set-up of the torch commands."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetatag.runtime import SPIN_COUNT, bound_openmp_spinning, collector_paused, keep_freed_memory


def test_openmp_spinning_is_bounded_unless_the_user_chose() -> None:
    # on a mapping of its own: configure_process() on os.environ would leave GOMP_SPINCOUNT set for later
    # tests (monkeypatch.delenv of an absent variable records nothing to undo); the command-line test below
    # checks what configure_process() does to a real process's environment
    environ: dict[str, str] = {}
    assert bound_openmp_spinning(environ) is True
    assert environ == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}


@pytest.mark.parametrize("chosen", [{"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "infinite"}])
def test_a_policy_or_count_the_user_set_is_kept(chosen: dict[str, str]) -> None:
    environ = dict(chosen)
    assert bound_openmp_spinning(environ) is False
    assert environ == chosen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_allocator_thresholds_are_set_on_glibc() -> None:
    assert keep_freed_memory() is True


def test_the_command_line_bounds_spinning_before_torch_loads() -> None:
    """A `jetatag` command's torch sees GOMP_SPINCOUNT: it is set before any handler imports torch."""
    code = (
        "import os, sys; from jetatag import cli; "
        "cli.cmd_labels = lambda args: print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules); "
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [sys.executable, "-c", code + "sys.exit(cli.main(['labels', '--raw', 'x', '--out', 'y']))"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.stdout.split() == [str(SPIN_COUNT), "False"], out.stderr


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_is_paused_in_the_block_and_restored_after(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with pytest.raises(RuntimeError), collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("an import that fails")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


HANDLER_REPORTING_FREEZES = """
import atexit, gc, sys
from jetatag import cli
from jetatag.runtime import collector_paused

def handler(args):
    before = gc.get_freeze_count()
    with collector_paused():
        import json
    print("handler", before, gc.get_freeze_count() > 0, gc.isenabled())

cli.cmd_labels = handler
atexit.register(lambda: print("exit", gc.get_freeze_count() > 0))
sys.argv[1:] = ["labels", "--raw", "x", "--out", "y"]
"""


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("cli.run()", ["handler", "0", "True", "True", "exit", "True"]),
        ("sys.exit(cli.main())", ["handler", "0", "False", "True", "exit", "False"]),
    ],
)
def test_only_a_one_shot_process_freezes_its_imports(entry: str, expected: list[str]) -> None:
    """``python -m jetatag`` (``cli.run``) freezes what a handler imported, and what is alive at exit;
    ``cli.main`` in a process that goes on leaves the collector as it was."""
    out = subprocess.run([sys.executable, "-c", HANDLER_REPORTING_FREEZES + entry], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == expected, out.stderr


@pytest.mark.usefixtures("benchmarks_importable")
def test_benchmark_workers_get_their_own_trees_openmp_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/train_step.py --against: each tree's worker runs with what that tree's commands set, if anything."""
    root = Path(__file__).resolve().parents[1]
    from train_step import tree_environment

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    (tmp_path / "jetatag").mkdir()  # a tree from before jetatag.runtime
    assert "GOMP_SPINCOUNT" not in tree_environment(tmp_path)
    assert tree_environment(root)["GOMP_SPINCOUNT"] == str(SPIN_COUNT)
