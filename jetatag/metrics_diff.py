"""Markdown of ``dvc metrics diff`` and ``dvc params diff`` against a git revision, for CI comments.

A shallow clone or an unknown revision gives no base to compare with; the report then says so and
shows the current metrics instead of failing the CI job.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from jetatag.errors import StageError
from jetatag.io import atomic_open

log = logging.getLogger(__name__)

NO_BASE = (
    "No revision `{base}` in this clone (a shallow clone, or the revision does not exist), so there is "
    "nothing to compare with. Fetch more history (e.g. `git fetch --unshallow` or "
    "`actions/checkout` with `fetch-depth: 0`) to get the diff."
)


def has_revision(base: str, repo: Path) -> bool:
    """Whether ``base`` names a commit of the git repository at ``repo``."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:  # no git at all
        return False
    return result.returncode == 0


def dvc(args: list[str], repo: Path) -> str:
    """Stdout of ``dvc <args>`` run in ``repo``; StageError with DVC's message if it fails."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise StageError(f"{repo}: `dvc {' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def metrics_diff_markdown(base: str, repo: Path) -> str:
    """The report: metric and param changes since ``base``, or the current metrics when ``base`` is unknown."""
    lines = [f"## Metrics and params against `{base}`", ""]
    if not has_revision(base, repo):
        log.warning("metrics-diff: no revision %r in %s; reporting current metrics only", base, repo)
        current = _table(dvc(["metrics", "show", "--md"], repo), "No metrics yet.")
        return "\n".join([*lines, NO_BASE.format(base=base), "", "### Current metrics", "", current, ""])
    metrics = _table(dvc(["metrics", "diff", "--md", base], repo), "No metric changed.")
    params = _table(dvc(["params", "diff", "--md", base], repo), "No param changed.")
    return "\n".join([*lines, "### Metrics", "", metrics, "", "### Params", "", params, ""])


def _table(markdown: str, empty: str) -> str:
    """``markdown`` if the table DVC printed has rows, else the sentence ``empty``."""
    return markdown if len(markdown.splitlines()) > 2 else empty


def write_metrics_diff(base: str, out: Path, *, repo: Path = Path()) -> None:
    """Write :func:`metrics_diff_markdown` for ``base`` to ``out``."""
    text = metrics_diff_markdown(base, Path(repo))
    with atomic_open(out, "w", encoding="utf-8") as handle:
        handle.write(text)
    log.info("metrics-diff against %s -> %s", base, out)
