"""`jetatag metrics-diff` in a throwaway git + DVC repository: real `git` and `dvc` runs, no mocks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jetatag.errors import StageError
from jetatag.metrics_diff import metrics_diff_markdown

DVC_YAML = """\
stages:
  score:
    cmd: python score.py
    deps: [score.py]
    params: [score.scale]
    outs: [curve.png, model.bin]
    metrics:
    - metrics.json:
        cache: false
"""

SCORE_PY = """\
import json
import yaml

scale = yaml.safe_load(open("params.yaml"))["score"]["scale"]
with open("metrics.json", "w") as f:
    json.dump({"auc": 0.25 * scale, "n_clips": 3}, f)
with open("curve.png", "wb") as f:
    f.write(b"\\x89PNG\\r\\n\\x1a\\n" + bytes([scale]))
with open("model.bin", "wb") as f:
    f.write(bytes([scale]))
"""


def _run(args: list[str], repo: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(args, cwd=repo, capture_output=True, text=True, env=env, check=check)


def _dvc(args: list[str], repo: Path) -> None:
    _run([sys.executable, "-m", "dvc", *args], repo)


def _set_scale(repo: Path, scale: int) -> None:
    (repo / "params.yaml").write_text(f"score:\n  scale: {scale}\n", encoding="utf-8")


def _commit(repo: Path, message: str) -> None:
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-q", "-m", message], repo)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git + DVC repository with one stage (metrics.json, curve.png, model.bin); nothing run or committed yet."""
    _run(["git", "init", "-q", "-b", "main"], tmp_path)
    _dvc(["init", "-q"], tmp_path)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    (tmp_path / "score.py").write_text(SCORE_PY, encoding="utf-8")
    _set_scale(tmp_path, 1)
    return tmp_path


@pytest.fixture
def reproduced(repo: Path) -> Path:
    """``repo`` with scale 1 run and committed, then scale 2 run in the workspace (not committed)."""
    _dvc(["repro", "-q"], repo)
    _commit(repo, "scale 1")
    _set_scale(repo, 2)
    _dvc(["repro", "-q"], repo)
    return repo


@pytest.mark.slow
def test_reports_metric_param_and_image_changes(reproduced: Path) -> None:
    text = metrics_diff_markdown("HEAD", reproduced)
    assert text.startswith("## Metrics and params against `HEAD`")
    metrics = _section(text, "Metrics")
    assert _rows(metrics) == [["metrics.json", "auc", "0.25", "0.5", "0.25"]]  # n_clips did not change
    assert _rows(_section(text, "Params")) == [["params.yaml", "score.scale", "1", "2"]]
    assert _section(text, "Changed plots") == "* `curve.png` (modified)"  # model.bin changed too, but is no image
    assert "No metric changed" not in text


@pytest.mark.slow
def test_unchanged_workspace_says_so(reproduced: Path) -> None:
    _commit(reproduced, "scale 2")
    text = metrics_diff_markdown("HEAD", reproduced)
    assert _section(text, "Metrics") == "No metric changed."
    assert _section(text, "Params") == "No param changed."
    assert _section(text, "Changed plots") == "No image changed."


@pytest.mark.slow
def test_base_without_metrics_fails_naming_revision_and_files(repo: Path) -> None:
    _commit(repo, "pipeline, never run")
    _dvc(["repro", "-q"], repo)
    short = _run(["git", "rev-parse", "--short", "HEAD"], repo).stdout.strip()
    with pytest.raises(StageError, match=rf"base revision `HEAD` \({short}\) has no metrics: metrics\.json"):
        metrics_diff_markdown("HEAD", repo)


@pytest.mark.slow
def test_workspace_without_metrics_fails(reproduced: Path) -> None:
    (reproduced / "metrics.json").unlink()
    with pytest.raises(StageError, match=r"the workspace has no metrics\.json"):
        metrics_diff_markdown("HEAD", reproduced)


@pytest.mark.slow
def test_cli_exits_1_with_the_message_and_writes_nothing(repo: Path) -> None:
    _commit(repo, "pipeline, never run")
    _dvc(["repro", "-q"], repo)
    out = repo / "comment.md"
    command = [sys.executable, "-m", "jetatag", "metrics-diff", "--base", "HEAD", "--out", str(out)]
    result = _run(command, repo, check=False)
    assert result.returncode == 1
    assert "base revision `HEAD`" in result.stderr and "metrics.json" in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_unknown_base_reports_current_metrics(reproduced: Path) -> None:
    text = metrics_diff_markdown("no-such-revision", reproduced)
    assert "No revision `no-such-revision`" in text
    assert "| metrics.json" in _section(text, "Current metrics")


def _rows(table: str) -> list[list[str]]:
    """Cells of a markdown table's rows, below its header and rule."""
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in table.splitlines()[2:]]


def _section(markdown: str, title: str) -> str:
    """The text under ``### title`` up to the next heading, stripped."""
    body = markdown.split(f"### {title}\n", 1)[1]
    return textwrap.dedent(body.split("\n### ", 1)[0]).strip()
