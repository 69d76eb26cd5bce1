"""Stage ``table1``: the paper's Table 1 beside ours, in both protocols, and a flat metrics file for DVC.

Reads every ``<extractor>-<variant>.json`` written by ``evaluate`` and, for the JE − no-JE differences,
the two models' arrays files, whose stored bootstrap resamples are shared (same clips, same seed), so
the differences of their per-resample values form a paired bootstrap.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jetatag.config import EXTRACTOR_IDS, VARIANTS, Params
from jetatag.errors import StageError
from jetatag.evaluate.arrays import load_arrays
from jetatag.evaluate.bootstrap import paired_difference
from jetatag.io import atomic_open, write_json
from jetatag.report.paper import EXTRACTOR_NAMES, PAPER_TABLE1

log = logging.getLogger(__name__)

Evals = dict[tuple[str, str], dict[str, Any]]
"""Evaluation reports keyed by (extractor, variant)."""

DIFF_METRICS = {"paper": ("roc_auc", "pr_auc"), "literature": ("roc_auc", "ap")}
"""Metrics whose JE − no-JE difference gets a paired-bootstrap CI, per protocol."""

_REQUIRED = ("extractor", "variant", "dataset", "n_test_clips", "paper", "exact_micro", "literature", "retrieval")


def load_evaluations(eval_dir: Path) -> Evals:
    """Every ``<extractor>-<variant>.json`` in ``eval_dir``; StageError naming a malformed file."""
    eval_dir = Path(eval_dir)
    if not eval_dir.is_dir():
        raise StageError(f"{eval_dir}: evaluation folder not found; run `jetatag evaluate` first")
    evals: Evals = {}
    for extractor in EXTRACTOR_IDS:
        for variant in VARIANTS:
            path = eval_dir / f"{extractor}-{variant}.json"
            if not path.is_file():
                continue
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise StageError(f"{path}: not readable JSON: {err}") from err
            missing = [k for k in _REQUIRED if k not in report]
            if missing:
                raise StageError(f"{path}: not a jetatag evaluation (missing {', '.join(missing)})")
            if (report["extractor"], report["variant"]) != (extractor, variant):
                raise StageError(f"{path}: holds {report['extractor']}-{report['variant']}, not {extractor}-{variant}")
            evals[extractor, variant] = report
    return evals


def dataset_line(evals: Evals, eval_dir: Path) -> str:
    """The one dataset every evaluation used; StageError when they disagree (a table mixing data is wrong)."""
    seen = {
        (r["dataset"]["name"], r["dataset"]["source"], r["n_test_clips"], r["dataset"]["n_tags"])
        for r in evals.values()
    }
    if len(seen) > 1:
        raise StageError(f"{eval_dir}: evaluations come from different datasets {sorted(seen)}; re-run evaluate")
    name, source, n_clips, n_tags = seen.pop()
    return f"**{name}** (source `{source}`; {n_clips} test clips, {n_tags} tags)"


def paired_differences(arrays_dir: Path, extractor: str, evals: Evals) -> dict[str, dict[str, dict]] | None:
    """JE − no-JE differences of ``extractor`` with paired-bootstrap CIs, or None if a model is missing.

    Returns ``{protocol: {metric: {"diff", "ci95"}}}``. StageError when the two arrays files were not
    scored on the same clips with the same bootstrap resamples.
    """
    if (extractor, "noje") not in evals or (extractor, "je") not in evals:
        return None
    paths = {v: Path(arrays_dir) / f"{extractor}-{v}.npz" for v in VARIANTS}
    noje, je = load_arrays(paths["noje"]), load_arrays(paths["je"])
    if not noje.paired_with(je):
        raise StageError(
            f"{paths['noje']} and {paths['je']}: different test clips or bootstrap settings; re-run evaluate for both"
        )
    return {
        protocol: {
            metric: paired_difference(
                evals[extractor, "noje"][protocol][metric],
                evals[extractor, "je"][protocol][metric],
                noje.boot[f"{protocol}_{metric}"],
                je.boot[f"{protocol}_{metric}"],
            )
            for metric in metrics
        }
        for protocol, metrics in DIFF_METRICS.items()
    }


def flat_metrics(evals: Evals, diffs: Mapping[str, dict | None]) -> dict[str, float | None]:
    """Flat ``<extractor>.<variant|je_minus_noje>.<protocol>.<metric>`` mapping for ``dvc metrics``."""
    flat: dict[str, float | None] = {}
    for (extractor, variant), r in evals.items():
        prefix = f"{extractor}.{variant}"
        flat[f"{prefix}.paper.roc_auc"] = r["paper"]["roc_auc"]
        flat[f"{prefix}.paper.pr_auc"] = r["paper"]["pr_auc"]
        flat[f"{prefix}.exact_micro.roc_auc"] = r["exact_micro"]["roc_auc"]
        flat[f"{prefix}.exact_micro.ap"] = r["exact_micro"]["ap"]
        flat[f"{prefix}.literature.roc_auc"] = r["literature"]["roc_auc"]
        flat[f"{prefix}.literature.ap"] = r["literature"]["ap"]
        for ranking, result in r["retrieval"].items():
            flat[f"{prefix}.retrieval.{ranking}_map"] = result["map"]
    for extractor, diff in diffs.items():
        for protocol, metrics in (diff or {}).items():
            for metric, value in metrics.items():
                flat[f"{extractor}.je_minus_noje.{protocol}.{metric}"] = value["diff"]
    return dict(sorted(flat.items(), key=lambda kv: (EXTRACTOR_IDS.index(kv[0].split(".")[0]), kv[0])))


def git_revision() -> str:
    """Short git revision of the working directory, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.4f}"


def _with_ci(value: float | None, ci: list[float | None] | None, signed: bool = False) -> str:
    fmt = _signed if signed else _num
    if value is None:
        return "–"
    if not ci or ci[0] is None or ci[1] is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(cells: list[str]) -> list[str]:
    return [_row(cells), _row(["---"] + ["---:"] * (len(cells) - 1))]


def _paper_section(evals: Evals, n_crops: int) -> list[str]:
    """Our tf-style micro AUCs beside the paper's Table 1 and the difference."""
    lines = [
        "## Paper protocol",
        "",
        f"Micro ROC-AUC and PR-AUC over every (test segment, tag) pair ({n_crops} crops per clip), computed as "
        "`tf.keras.metrics.AUC` does with its defaults (200 thresholds; PR by Davis–Goadrich interpolation). "
        "*paper*: the paper's Table 1; Δ = ours − paper.",
        "",
    ]
    columns = ["Extractor"]
    for label in ("ROC-AUC", "PR-AUC"):
        columns += [f"{label} no JE", "paper", "Δ", f"{label} JE", "paper", "Δ"]
    lines += _header(columns)
    for x in EXTRACTOR_IDS:
        cells = [EXTRACTOR_NAMES[x]]
        for metric in ("roc_auc", "pr_auc"):
            for variant in VARIANTS:
                paper = PAPER_TABLE1[x][variant][metric]
                if (x, variant) not in evals:
                    cells += ["missing", _num(paper), "–"]
                    continue
                ours = evals[x, variant]["paper"][metric]
                cells += [_num(ours), _num(paper), _signed(ours - paper)]
        lines.append(_row(cells))
    return lines


def _effect_section(diffs: Mapping[str, dict | None], resamples: int) -> list[str]:
    """JE − no-JE differences with paired-bootstrap CIs, beside the paper's differences."""
    lines = [
        "## Effect of JE (JE − no JE)",
        "",
        f"Paired bootstrap over test clips ({resamples} resamples, 95 % percentile CI): both models are scored on "
        "the same resampled clips. An interval never excludes its estimate: where the percentile interval would, "
        "it is widened to it (the estimate is then one end).",
        "",
    ]
    lines += _header(
        ["Extractor", "Δ ROC-AUC (paper protocol)", "paper", "Δ PR-AUC (paper protocol)", "paper"]
        + ["Δ macro ROC-AUC (literature)", "Δ macro AP (literature)"]
    )
    for x in EXTRACTOR_IDS:
        paper = {m: PAPER_TABLE1[x]["je"][m] - PAPER_TABLE1[x]["noje"][m] for m in ("roc_auc", "pr_auc")}
        diff = diffs.get(x)

        def cell(protocol: str, metric: str, diff: dict | None = diff) -> str:
            if diff is None:
                return "missing"
            return _with_ci(diff[protocol][metric]["diff"], diff[protocol][metric]["ci95"], signed=True)

        lines.append(
            _row(
                [EXTRACTOR_NAMES[x], cell("paper", "roc_auc"), _signed(paper["roc_auc"])]
                + [cell("paper", "pr_auc"), _signed(paper["pr_auc"])]
                + [cell("literature", "roc_auc"), cell("literature", "ap")]
            )
        )
    return lines


def _literature_section(evals: Evals, resamples: int) -> list[str]:
    """Macro ROC-AUC and AP over tags with bootstrap CIs, and the tags excluded from the means."""
    lines = [
        "## Literature protocol",
        "",
        "Macro ROC-AUC and average precision over tags on clip-level scores (mean of the crops), as Won et al. "
        f"(2020) report them; 95 % bootstrap CI over test clips ({resamples} resamples), each tag resampled "
        "stratified (its numbers of positive and negative clips kept), so every resample averages the same tags. "
        "Tags without a positive or without a negative test clip are excluded (listed below).",
        "",
    ]
    lines += _header(["Extractor", "ROC-AUC no JE", "ROC-AUC JE", "AP no JE", "AP JE", "tags"])
    excluded: set[str] = set()
    for x in EXTRACTOR_IDS:
        present = {v: evals[x, v]["literature"] for v in VARIANTS if (x, v) in evals}
        cells = [EXTRACTOR_NAMES[x]]
        for metric in ("roc_auc", "ap"):
            for variant in VARIANTS:
                lit = present.get(variant)
                cells.append("missing" if lit is None else _with_ci(lit[metric], lit["ci95"][metric]))
        cells.append(str(next(iter(present.values()))["n_tags"]) if present else "–")
        for lit in present.values():
            excluded.update(lit["excluded_tags"])
        lines.append(_row(cells))
    if excluded:
        lines += ["", f"Excluded tags: {', '.join(sorted(excluded))}."]
    return lines


def _retrieval_section(evals: Evals) -> list[str]:
    """mAP of single-tag queries, by classifier score and by the joint embedding."""
    lines = [
        "## Retrieval",
        "",
        "Mean average precision of single-tag queries over the test clips: clips ranked by the classifier's score "
        "for the tag, or (JE models) by the cosine between the clip's projected embedding z_m and the tag "
        "encoder's embedding z_t of the one-hot query.",
        "",
    ]
    lines += _header(["Extractor", "no JE: classifier", "JE: classifier", "JE: z_m · z_t"])
    for x in EXTRACTOR_IDS:
        noje, je = evals.get((x, "noje")), evals.get((x, "je"))
        joint = None if je is None else je["retrieval"].get("joint_embedding")
        cells = [
            "missing" if noje is None else _num(noje["retrieval"]["classifier"]["map"]),
            "missing" if je is None else _num(je["retrieval"]["classifier"]["map"]),
            "missing" if joint is None else _num(joint["map"]),
        ]
        lines.append(_row([EXTRACTOR_NAMES[x], *cells]))
    return lines


def render_table(evals: Evals, diffs: Mapping[str, dict | None], *, header: str) -> str:
    """Markdown of Table 1 (paper protocol), the JE effect, the literature protocol and retrieval."""
    any_report = next(iter(evals.values()))
    resamples = any_report["bootstrap"]["resamples"]
    missing = [f"{x}-{v}" for x in EXTRACTOR_IDS for v in VARIANTS if (x, v) not in evals]
    lines = ["# Table 1: music auto-tagging with and without joint embeddings (JE)", "", header, ""]
    if missing:
        lines += [f"Missing evaluations: {', '.join(missing)}.", ""]
    for section in (
        _paper_section(evals, any_report["n_crops"]),
        _effect_section(diffs, resamples),
        _literature_section(evals, resamples),
        _retrieval_section(evals),
    ):
        lines += [*section, ""]
    return "\n".join(lines)


def run_table1(params: Params, *, eval_dir: Path, arrays_dir: Path, out_table: Path, out_metrics: Path) -> None:
    """Write ``out_table`` (markdown Table 1) and ``out_metrics`` (flat JSON) from the evaluations."""
    evals = load_evaluations(eval_dir)
    if not evals:
        raise StageError(f"{eval_dir}: no <extractor>-<variant>.json evaluations found; run `jetatag evaluate` first")
    diffs = {x: paired_differences(arrays_dir, x, evals) for x in EXTRACTOR_IDS}
    header = (
        f"Dataset: {dataset_line(evals, Path(eval_dir))} · profile: **{params.report.profile}** · "
        f"git revision: `{git_revision()}`"
    )
    with atomic_open(out_table, "w", encoding="utf-8") as handle:
        handle.write(render_table(evals, diffs, header=header))
    write_json(out_metrics, flat_metrics(evals, diffs))
    log.info("table1: %d of %d evaluations -> %s, %s", len(evals), 2 * len(EXTRACTOR_IDS), out_table, out_metrics)
