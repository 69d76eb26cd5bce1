"""Markdown of ``dvc metrics diff``, ``dvc params diff`` and the changed image outputs, for CI comments.

The comment has three sections: the metrics that changed since a git revision, the params that
changed, and the images (PNG, SVG, ...) among the DVC-tracked outputs that were added, modified or
deleted. A base revision or a workspace without metrics is an error (StageError, so exit 1 from the
CLI) that names the revision and the missing files: DVC itself only warns on stderr and prints an
empty table, which read as "no metric changed". A shallow clone or an unknown revision gives no base
at all; the report then says so and shows the current metrics instead of failing the CI job.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from jetatag.errors import StageError
from jetatag.io import atomic_open

log = logging.getLogger(__name__)

NO_BASE = (
    "No revision `{base}` in this clone (a shallow clone, or the revision does not exist), so there is "
    "nothing to compare with. Fetch more history (e.g. `git fetch --unshallow` or "
    "`actions/checkout` with `fetch-depth: 0`) to get the diff."
)
NO_METRICS_HINT = (
    "Run the pipeline (`dvc repro`) and commit `dvc.lock` and the metrics files on the base revision, "
    "or compare with a revision that has them."
)
IMAGE_SUFFIXES = frozenset({".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp"})
"""Outputs listed under "Changed plots" (images a reviewer opens from the reports artifact)."""


def has_revision(base: str, repo: Path) -> bool:
    """Whether ``base`` names a commit of the git repository at ``repo``."""
    return _commit(base, repo) is not None


def _commit(base: str, repo: Path) -> str | None:
    """Short hash of the commit ``base`` names in ``repo``, or None if there is none (or no git)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "--short", f"{base}^{{commit}}"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:  # no git at all
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def dvc(args: list[str], repo: Path) -> str:
    """Stdout of ``dvc <args>`` run in ``repo``; StageError with DVC's message if it fails."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise StageError(f"{repo}: `dvc {' '.join(args)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def workspace_metrics(repo: Path) -> dict[str, bool]:
    """Metrics files declared in the workspace's ``dvc.yaml``s → whether each one loads."""
    shown: dict[str, Any] = json.loads(dvc(["metrics", "show", "--json"], repo) or "{}")
    files: dict[str, bool] = {}
    for revision in shown.values():  # one entry, the workspace (DVC names it "" or "workspace")
        if "error" in revision:
            raise StageError(f"{repo}: `dvc metrics show` could not read the workspace: {revision['error']}")
        for path, entry in revision.get("data", {}).items():
            files[path] = "error" not in entry
    return files


def base_metrics(base: str, repo: Path) -> set[str]:
    """Metrics files that hold at least one value at revision ``base`` (as ``dvc metrics diff`` reads them)."""
    diff: dict[str, dict[str, dict[str, Any]]] = json.loads(
        dvc(["metrics", "diff", "--json", "--all", base], repo) or "{}"
    )
    return {path for path, values in diff.items() if any(v.get("old") is not None for v in values.values())}


def check_metrics(base: str, commit: str | None, repo: Path) -> list[str]:
    """Raise StageError when the workspace or ``base`` has no metrics; return the files only the workspace has.

    Every metrics file the workspace declares must load there (the pipeline just wrote them). The base
    must hold at least one of them; files it lacks (metrics new in this branch) are returned so that the
    report can say so rather than fail.
    """
    declared = workspace_metrics(repo)
    if not declared:
        raise StageError(f"{repo}: the workspace declares no metrics (no `metrics:` in dvc.yaml): nothing to compare")
    problems = []
    missing_here = sorted(path for path, loaded in declared.items() if not loaded)
    if missing_here:
        problems.append(f"the workspace has no {', '.join(missing_here)} (did `dvc repro` run?)")
    new = sorted(set(declared) - base_metrics(base, repo)) if commit else []
    if commit and len(new) == len(declared):
        problems.append(f"the base revision `{base}` ({commit}) has no metrics: {', '.join(new)} missing")
    if problems:
        raise StageError(f"metrics-diff against `{base}`: {'; '.join(problems)}. {NO_METRICS_HINT}")
    return new


def changed_images(base: str, repo: Path) -> list[tuple[str, str]]:
    """``(status, path)`` of the image outputs DVC tracks that differ from ``base``, sorted by path.

    From ``dvc diff``, which compares the hashes recorded in ``dvc.lock``: it needs no cached copy of the
    base's files, but lists the files inside a changed folder only when the base's folder listing is in
    the local DVC cache.
    """
    diff: dict[str, list[dict[str, Any]]] = json.loads(dvc(["diff", "--json", base], repo) or "{}")
    images = [
        (status, entry["path"])
        for status in ("added", "modified", "deleted")
        for entry in diff.get(status, [])
        if PurePosixPath(entry["path"]).suffix.lower() in IMAGE_SUFFIXES
    ]
    return sorted(images, key=lambda item: item[1])


def metrics_diff_markdown(base: str, repo: Path) -> str:
    """The report: metric, param and image changes since ``base``, or the current metrics when it is unknown."""
    lines = [f"## Metrics and params against `{base}`", ""]
    commit = _commit(base, repo)
    new = check_metrics(base, commit, repo)
    if commit is None:
        log.warning("metrics-diff: no revision %r in %s; reporting current metrics only", base, repo)
        current = _table(dvc(["metrics", "show", "--md"], repo), "No metrics yet.")
        return "\n".join([*lines, NO_BASE.format(base=base), "", "### Current metrics", "", current, ""])
    metrics = _table(dvc(["metrics", "diff", "--md", base], repo), "No metric changed.")
    if new:
        metrics += f"\n\nNot in `{base}` (new in this branch): {', '.join(f'`{path}`' for path in new)}."
    params = _table(dvc(["params", "diff", "--md", base], repo), "No param changed.")
    images = changed_images(base, repo)
    plots = "\n".join(f"* `{path}` ({status})" for status, path in images) if images else "No image changed."
    return "\n".join(
        [*lines, "### Metrics", "", metrics, "", "### Params", "", params, "", "### Changed plots", "", plots, ""]
    )


def _table(markdown: str, empty: str) -> str:
    """``markdown`` if the table DVC printed has rows, else the sentence ``empty``."""
    return markdown if len(markdown.splitlines()) > 2 else empty


def write_metrics_diff(base: str, out: Path, *, repo: Path = Path()) -> None:
    """Write :func:`metrics_diff_markdown` for ``base`` to ``out``; nothing is written when it fails."""
    text = metrics_diff_markdown(base, Path(repo))
    with atomic_open(out, "w", encoding="utf-8") as handle:
        handle.write(text)
    log.info("metrics-diff against %s -> %s", base, out)
