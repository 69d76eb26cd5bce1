"""Tests for the command line conventions: ``--version``, ``python -m jetatag``, ``-v``/``-q`` anywhere,
exit statuses (0 done, 1 runtime error, 2 usage error, 130 interrupted, 141 closed stdout pipe) and
progress bars that are drawn only on a terminal."""

from __future__ import annotations

import importlib
import importlib.metadata
import io
import logging
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

import jetatag
from jetatag import cli
from jetatag.errors import StageError
from jetatag.progress import progress

ROOT = Path(__file__).resolve().parents[1]
REPO_PARAMS = ROOT / "params.yaml"
SUBPROCESS_TIMEOUT_S = 120


def _env() -> dict[str, str]:
    """This checkout's jetatag first on the path, whatever the venv has installed."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _jetatag(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jetatag ARGS`` (what the console script runs) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "jetatag", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )


def _fake_handler(monkeypatch: pytest.MonkeyPatch, error: BaseException | None = None) -> list[object]:
    """Replace the ``synth`` handler: record the namespace it gets, then raise ``error`` if given."""
    calls: list[object] = []

    def handler(args: object) -> None:
        calls.append(args)
        if error is not None:
            raise error

    monkeypatch.setattr(cli, "cmd_synth", handler)
    return calls


SYNTH_ARGS = ("--out", "unused", "--n-clips", "1", "--clip-seconds", "1", "--seed", "0")


# --- version and python -m ----------------------------------------------------------------------


def test_version_via_python_m() -> None:
    result = _jetatag("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"jetatag {jetatag.__version__}\n"


def test_version_comes_from_the_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        installed = importlib.metadata.version("jetatag")
    except importlib.metadata.PackageNotFoundError:
        installed = "0+unknown"
    assert jetatag.__version__ == installed
    if installed != "0+unknown":  # the one version, in pyproject.toml
        with open(ROOT / "pyproject.toml", "rb") as handle:
            assert installed == tomllib.load(handle)["project"]["version"]

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    try:
        assert importlib.reload(jetatag).__version__ == "0+unknown"
    finally:
        monkeypatch.undo()
        importlib.reload(jetatag)
    assert jetatag.__version__ == installed


def test_python_m_runs_the_console_entry_point(tmp_path: Path) -> None:
    """``python -m jetatag`` and ``jetatag`` (``jetatag.cli:run``) share one entry point: same statuses and messages."""
    missing = tmp_path / "missing.yaml"
    result = _jetatag("labels", "--params", str(missing), "--raw", str(tmp_path), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{missing}: params file not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    usage = _jetatag("labels", "--raw", str(tmp_path))
    assert usage.returncode == 2
    assert "the following arguments are required: --out" in usage.stderr


# --- verbosity and log file, before or after the subcommand ------------------------------------


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        ((), logging.INFO),
        (("-v",), logging.DEBUG),
        (("--verbose",), logging.DEBUG),
        (("-q",), logging.WARNING),
        (("--quiet",), logging.WARNING),
    ],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_verbosity_before_or_after_the_subcommand(
    monkeypatch: pytest.MonkeyPatch, argv: Sequence[str], level: int, where: str
) -> None:
    seen: list[tuple[int, Path | None]] = []
    monkeypatch.setattr(cli, "_setup_logging", lambda lvl, log_file: seen.append((lvl, log_file)))
    calls = _fake_handler(monkeypatch)
    full = [*argv, "synth", *SYNTH_ARGS] if where == "before" else ["synth", *SYNTH_ARGS, *argv]
    assert cli.main(full) == 0
    assert seen == [(level, None)] and len(calls) == 1


def test_verbosity_last_flag_wins_and_survives_the_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(cli, "_setup_logging", lambda lvl, log_file: seen.append(lvl))
    _fake_handler(monkeypatch)
    assert cli.main(["-v", "synth", *SYNTH_ARGS]) == 0  # the subcommand does not reset it
    assert cli.main(["-v", "synth", "-q", *SYNTH_ARGS]) == 0
    assert cli.main(["synth", "-q", *SYNTH_ARGS, "-v"]) == 0
    assert seen == [logging.DEBUG, logging.WARNING, logging.DEBUG]


def test_verbosity_on_nested_subcommands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[int] = []
    monkeypatch.setattr(cli, "_setup_logging", lambda lvl, log_file: seen.append(lvl))
    monkeypatch.setattr(cli, "cmd_pipeline_generate", lambda args: None)
    assert cli.main(["pipeline", "generate", "--root", str(tmp_path), "-v"]) == 0
    assert cli.main(["pipeline", "-q", "generate", "--root", str(tmp_path)]) == 0
    assert seen == [logging.DEBUG, logging.WARNING]


def test_synth_sizes_come_all_together_or_from_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["synth", "--out", str(tmp_path / "m"), "--n-clips", "16"]) == 2
    assert "missing: --clip-seconds, --seed" in capsys.readouterr().err
    assert cli.main(["synth", "--params", str(REPO_PARAMS), *SYNTH_ARGS]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_file_before_or_after_the_subcommand(tmp_path: Path, where: str) -> None:
    """The pipeline's form is ``jetatag --log-file LOG COMMAND ...``; after the subcommand works too."""
    log_file = tmp_path / "logs" / "labels.log"
    command = ["labels", "--params", str(REPO_PARAMS), "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out")]
    options = ["--log-file", str(log_file), "-q"]
    result = _jetatag(*(options + command if where == "before" else command + options))
    assert result.returncode == 1
    message = "annotations_final.csv: annotations file not found"
    assert message in result.stderr
    assert message in log_file.read_text(encoding="utf-8")


# --- exit statuses -----------------------------------------------------------------------------


def test_runtime_errors_exit_1(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a missing params file (ParamsError)
    missing_params = tmp_path / "missing.yaml"
    raw, out = tmp_path / "raw", tmp_path / "out"
    assert cli.main(["labels", "--params", str(missing_params), "--raw", str(raw), "--out", str(out)]) == 1
    assert f"{missing_params}: params file not found" in caplog.text
    # an invalid value in a params file (ParamsError)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {"retries": -3}}))
    assert cli.main(["download", "--params", str(REPO_PARAMS), "--params", str(bad), "--out", str(raw)]) == 1
    # a missing input path (StageError)
    assert cli.main(["labels", "--params", str(REPO_PARAMS), "--raw", str(raw), "--out", str(out)]) == 1
    assert "annotations file not found" in caplog.text
    assert cli.main(["search", "--index", str(tmp_path / "missing.parquet"), "--tags", "rock"]) == 1
    assert "missing.parquet: index file not found" in caplog.text
    assert not out.exists()
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "error",
    [StageError("bad input"), FileNotFoundError("no such file"), PermissionError("read-only"), OSError("disk full")],
)
def test_runtime_error_types_exit_1(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    _fake_handler(monkeypatch, error)
    assert cli.main(["synth", *SYNTH_ARGS]) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [str(error)]


def test_unwritable_log_file_exits_1(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = _jetatag("--log-file", str(blocker / "job.log"), "pipeline", "generate", "--check", "--root", "x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and str(blocker) in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no subcommand
        ["no-such-command"],
        ["stage1", "--audio", "a"],  # required options missing
        ["stage1", "--extractor", "no-such-net", "--audio", "a", "--out", "o", "--live", "l"],
        ["search", "--index", "i.parquet", "--tags", "rock", "-k", "many"],
        ["pipeline"],  # no action
        ["-v", "-x", "synth", *SYNTH_ARGS],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "usage: jetatag" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stage2", "--extractor", "hcnn", "--variant", "je", "--audio", "a", "--out", "o", "--live", "l"], "--stage1"),
        (["export", "--extractor", "hcnn", "--out", "m.jetatag"], "--extractor and --variant"),
    ],
)
def test_options_that_do_not_go_together_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: jetatag") and "jetatag: error: " in err and message in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["stage1", "--help"], ["--version"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "-v, --verbose" in out and "-q, --quiet" in out and out.endswith(f"jetatag {jetatag.__version__}\n")


def test_keyboard_interrupt_exits_130_without_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_handler(monkeypatch, KeyboardInterrupt())
    assert cli.main(["synth", *SYNTH_ARGS]) == 130
    assert "interrupted" in caplog.text
    assert "Traceback" not in capsys.readouterr().err + caplog.text


def test_ctrl_c_in_a_real_process_exits_130(tmp_path: Path) -> None:
    script = (
        "import signal, sys, time\n"
        # Python's own Ctrl-C handler, as a foreground process has it: a shell without job control starts
        # background commands (a CI runner's, say) with SIGINT ignored, and Python then keeps ignoring it
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from jetatag import cli\n"
        "def wait(args):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
        "cli.cmd_synth = wait\n"
        f"sys.exit(cli.main(['synth', *{list(SYNTH_ARGS)!r}]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "interrupted" in err and "Traceback" not in err


def test_broken_pipe_exits_141_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_handler(monkeypatch, BrokenPipeError(32, "Broken pipe"))
    assert cli.main(["synth", *SYNTH_ARGS]) == 141
    assert caplog.records == []
    assert capsys.readouterr().err == ""


def test_closed_stdout_pipe_in_a_real_process_is_quiet() -> None:
    """``jetatag search ... | head -1``: the reader leaves early; no traceback, no 'Exception ignored'."""
    script = (
        "import sys\n"
        "from jetatag import cli\n"
        "def flood(args):\n"
        "    for i in range(1_000_000):\n"
        "        sys.stdout.write(f'line {i}\\n')\n"
        "cli.cmd_synth = flood\n"
        f"sys.exit(cli.main(['synth', *{list(SYNTH_ARGS)!r}]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "line 0\n"
        process.stdout.close()  # what `head -1` does
        assert process.stderr is not None
        err = process.stderr.read()
        process.wait(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 141
    assert err == ""


# --- progress bars -------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_is_silent_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress(range(5), desc="work", unit="item")
    assert bar.disable
    assert list(bar) == [0, 1, 2, 3, 4]  # iteration still yields the items
    with progress(total=10, desc="bytes", unit="B", unit_scale=True) as manual:
        manual.update(4)
        manual.set_postfix(done=4)
    assert capsys.readouterr().err == ""


def test_progress_draws_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = progress(range(3), desc="work", unit="item")
    assert not bar.disable
    assert list(bar) == [0, 1, 2]
    assert "work" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert progress(range(3), disable=True).disable  # the caller can still hide it
    with progress(total=8, desc="manual") as manual:
        manual.update(8)
    assert "8/8" in terminal.getvalue()


def test_progress_checks_stderr_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not at import: the CLI, pytest and notebooks may replace ``sys.stderr`` later."""
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert not progress(total=1).disable
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)  # isatty on a closed stream raises ValueError
    assert progress(total=1).disable


def test_stage_writes_no_progress_bar_to_a_pipe(tiny: tuple[Path, object], tmp_path: Path) -> None:
    """A real stage (labels' probe bar) in a subprocess whose stderr is a pipe: log lines only."""
    raw, _ = tiny
    overlay = tmp_path / "tiny.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"n_tags": 10}}))
    params = ["--params", str(REPO_PARAMS), "--params", str(overlay)]
    result = _jetatag("labels", *params, "--raw", str(raw), "--out", str(tmp_path / "labels"))
    assert result.returncode == 0, result.stderr
    assert "probe" not in result.stderr and "\r" not in result.stderr and "it/s" not in result.stderr
    assert "INFO jetatag.data.labels: labels: top-10 tags" in result.stderr  # the log still comes through
