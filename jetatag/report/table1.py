"""Stage ``table1``: the paper's Table 1 beside ours, in both protocols, a flat metrics file for DVC and the rest, flat.

Reads every ``<extractor>-<variant>.json`` written by ``evaluate`` and, for the JE − no-JE differences,
the two models' arrays files, whose stored bootstrap resamples are shared (same clips, same seed), so
the differences of their per-resample values form a paired bootstrap. Beside them: the ``probe``
stage's log-mel + logistic-regression reference row, the k-NN tag agreement of Figure 2's panels
(``figure2.json``) and the joint embedding's geometry after stage 1 (:mod:`jetatag.report.geometry`).
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jetatag.config import TRAINING_SWITCHES, VARIANTS, Params, param_value, params_to_dict
from jetatag.errors import StageError
from jetatag.evaluate.arrays import load_arrays
from jetatag.evaluate.bootstrap import paired_difference
from jetatag.extractors import EXTRACTOR_IDS, extractor_spec
from jetatag.io import atomic_open, read_json_object, write_json
from jetatag.report.figure2 import PANELS, panel_titles
from jetatag.report.geometry import GEOMETRY_KEYS, Geometry, load_geometry
from jetatag.report.paper import PAPER_TABLE1

log = logging.getLogger(__name__)

Evals = dict[tuple[str, str], dict[str, Any]]
"""Evaluation reports keyed by (extractor, variant)."""

HEADLINE_METRICS = {"paper": ("roc_auc", "pr_auc"), "literature": ("roc_auc", "ap")}
"""Each model's headline numbers, per protocol: its DVC metrics, and the JE − no-JE differences with a paired CI."""

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


def _dataset(report: Mapping[str, Any]) -> tuple[str, str, int, int]:
    """(name, source, test clips, tags) of an evaluation or probe report."""
    return (report["dataset"]["name"], report["dataset"]["source"], report["n_test_clips"], report["dataset"]["n_tags"])


def dataset_line(evals: Evals, eval_dir: Path) -> str:
    """The one dataset every evaluation used; StageError when they disagree (a table mixing data is wrong)."""
    seen = {_dataset(r) for r in evals.values()}
    if len(seen) > 1:
        raise StageError(f"{eval_dir}: evaluations come from different datasets {sorted(seen)}; re-run evaluate")
    name, source, n_clips, n_tags = seen.pop()
    return f"**{name}** (source `{source}`; {n_clips} test clips, {n_tags} tags)"


def training_switches(params: Params) -> dict[str, Any]:
    """The values of the :data:`TRAINING_SWITCHES` in this run's params, by dotted key."""
    values = params_to_dict(params)
    return {key: param_value(values, key) for key in TRAINING_SWITCHES}


def switches_line(switches: dict[str, Any]) -> str:
    """A run's :func:`training_switches` as ``key=value`` pairs (README "Training switches")."""
    return " · ".join(f"`{key}={_yaml_value(value)}`" for key, value in switches.items())


def _yaml_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_probe(path: Path, evals: Evals) -> dict[str, Any]:
    """The ``probe`` stage's report; StageError when it is missing, malformed or scored on other test clips."""
    probe = read_json_object(path, "probe report", "run `jetatag probe` first")
    try:
        dataset = _dataset(probe)
        _ = probe["model"], probe["literature"]["roc_auc"], probe["literature"]["ap"], probe["literature"]["ci95"]
    except (KeyError, TypeError) as err:
        raise StageError(f"{path}: not a jetatag probe report (missing {err})") from err
    others = {_dataset(r) for r in evals.values()}
    if others and others != {dataset}:
        raise StageError(f"{path}: probe scored on {dataset}, evaluations on {sorted(others)}; re-run probe")
    return probe


def load_figure2_stats(path: Path) -> dict[str, Any]:
    """The ``figure2`` stage's k-NN agreements; StageError when missing or malformed."""
    stats = read_json_object(path, "Figure 2 statistics", "run `jetatag figure2` first")
    agreement = stats.get("knn_agreement")
    missing = [k for k in ("extractor", "tag", "k", "n_clips", "n_tagged", "base_rate") if k not in stats]
    missing += [f"knn_agreement.{p}" for p in PANELS if not isinstance(agreement, dict) or p not in agreement]
    if missing:
        raise StageError(f"{path}: not a Figure 2 statistics file (missing {', '.join(missing)})")
    if stats["extractor"] not in EXTRACTOR_IDS:
        raise StageError(f"{path}: unknown extractor {stats['extractor']!r}")
    return stats


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
        for protocol, metrics in HEADLINE_METRICS.items()
    }


def _by_extractor(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``flat`` (keys ``<extractor>.…``) in :data:`EXTRACTOR_IDS` order, then by key: a stable, readable file."""
    return dict(sorted(flat.items(), key=lambda kv: (EXTRACTOR_IDS.index(kv[0].split(".")[0]), kv[0])))


def summary_metrics(evals: Evals, *, probe: Mapping[str, Any]) -> dict[str, float | None]:
    """The DVC metrics: each model's :data:`HEADLINE_METRICS`, then the probe's, few enough for `dvc exp show`.

    Keys: ``<extractor>.<variant>.<protocol>.<metric>`` and ``probe.literature.{roc_auc,ap}``.
    """
    flat = {
        f"{extractor}.{variant}.{protocol}.{metric}": report[protocol][metric]
        for (extractor, variant), report in evals.items()
        for protocol, metrics in HEADLINE_METRICS.items()
        for metric in metrics
    }
    return {
        **_by_extractor(flat),
        "probe.literature.roc_auc": probe["literature"]["roc_auc"],
        "probe.literature.ap": probe["literature"]["ap"],
    }


def detail_values(
    evals: Evals,
    diffs: Mapping[str, dict | None],
    *,
    figure2: Mapping[str, Any],
    geometry: Geometry,
    switches: Mapping[str, Any],
) -> dict[str, Any]:
    """Table 1's other numbers, flat, for a plain output: too many for DVC metrics, still one diff away.

    Keys: ``<extractor>.<variant>.exact_micro.{roc_auc,ap}``, ``<extractor>.<variant>.retrieval.<ranking>_map``,
    ``<extractor>.je_minus_noje.<protocol>.<metric>``, ``<extractor>.stage1.valid.<key>`` (geometry after
    stage 1), ``figure2.{base_rate,knn_agreement.<panel>}`` and ``switches.<params key>`` (:func:`training_switches`).
    """
    flat: dict[str, Any] = {}
    for (extractor, variant), r in evals.items():
        prefix = f"{extractor}.{variant}"
        flat[f"{prefix}.exact_micro.roc_auc"] = r["exact_micro"]["roc_auc"]
        flat[f"{prefix}.exact_micro.ap"] = r["exact_micro"]["ap"]
        for ranking, result in r["retrieval"].items():
            flat[f"{prefix}.retrieval.{ranking}_map"] = result["map"]
    for extractor, diff in diffs.items():
        for protocol, metrics in (diff or {}).items():
            for metric, value in metrics.items():
                flat[f"{extractor}.je_minus_noje.{protocol}.{metric}"] = value["diff"]
    for extractor, values in geometry.items():
        for key, value in values.items():
            flat[f"{extractor}.stage1.valid.{key}"] = value
    flat = _by_extractor(flat)
    flat["figure2.base_rate"] = figure2["base_rate"]
    for panel in PANELS:
        flat[f"figure2.knn_agreement.{panel}"] = figure2["knn_agreement"][panel]
    for key, value in switches.items():
        flat[f"switches.{key}"] = value
    return flat


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


def paper_figure(extractor: str, variant: str, metric: str) -> float | None:
    """The paper's Table 1 figure, or None for an extractor the paper did not report (shown as "–")."""
    return PAPER_TABLE1.get(extractor, {}).get(variant, {}).get(metric)


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


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
        cells = [extractor_spec(x).name]
        for metric in ("roc_auc", "pr_auc"):
            for variant in VARIANTS:
                paper = paper_figure(x, variant, metric)
                if (x, variant) not in evals:
                    cells += ["missing", _num(paper), "–"]
                    continue
                ours = evals[x, variant]["paper"][metric]
                cells += [_num(ours), _num(paper), _signed(None if paper is None else ours - paper)]
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
        paper = {m: _difference(paper_figure(x, "je", m), paper_figure(x, "noje", m)) for m in ("roc_auc", "pr_auc")}
        diff = diffs.get(x)

        def cell(protocol: str, metric: str, diff: dict | None = diff) -> str:
            if diff is None:
                return "missing"
            return _with_ci(diff[protocol][metric]["diff"], diff[protocol][metric]["ci95"], signed=True)

        lines.append(
            _row(
                [extractor_spec(x).name, cell("paper", "roc_auc"), _signed(paper["roc_auc"])]
                + [cell("paper", "pr_auc"), _signed(paper["pr_auc"])]
                + [cell("literature", "roc_auc"), cell("literature", "ap")]
            )
        )
    return lines


def _literature_section(evals: Evals, probe: Mapping[str, Any], resamples: int) -> list[str]:
    """Macro ROC-AUC and AP over tags with bootstrap CIs, the probe's reference row, the excluded tags."""
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
        cells = [extractor_spec(x).name]
        for metric in ("roc_auc", "ap"):
            for variant in VARIANTS:
                lit = present.get(variant)
                cells.append("missing" if lit is None else _with_ci(lit[metric], lit["ci95"][metric]))
        cells.append(str(next(iter(present.values()))["n_tags"]) if present else "–")
        for lit in present.values():
            excluded.update(lit["excluded_tags"])
        lines.append(_row(cells))
    lit = probe["literature"]
    excluded.update(lit.get("excluded_tags", []))
    lines.append(
        _row(
            [probe["model"], _with_ci(lit["roc_auc"], lit["ci95"]["roc_auc"]), "–"]
            + [_with_ci(lit["ap"], lit["ci95"]["ap"]), "–", str(lit.get("n_tags", "–"))]
        )
    )
    lines += [
        "",
        "The probe row is a reference with no JE variant (its values sit in the no-JE columns): one L2 logistic "
        "regression per tag on standardised per-clip log-mel mean/std features, fitted on the train split with fixed "
        "settings (nothing chosen on test); same test clips and bootstrap resamples as the models.",
    ]
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
        lines.append(_row([extractor_spec(x).name, *cells]))
    return lines


def _figure2_section(stats: Mapping[str, Any]) -> list[str]:
    """The k-NN tag agreement of each Figure 2 panel, beside the base rate."""
    names = panel_titles(stats["extractor"])
    k, tag = stats["k"], stats["tag"]
    lines = [
        "## Figure 2: k-NN tag agreement",
        "",
        f"For each test clip with the tag '{tag}' ({stats['n_tagged']} of {stats['n_clips']}), the share of its {k} "
        "nearest neighbours in the panel's 2-D t-SNE map that also carry it, averaged over those clips. A map that "
        f"ignores the tag scores about the base rate, {_num(stats['base_rate'])}.",
        "",
    ]
    lines += _header(["Panel", f"{k}-NN agreement", "base rate"])
    for panel in PANELS:
        lines.append(_row([names[panel], _num(stats["knn_agreement"][panel]), _num(stats["base_rate"])]))
    return lines


def _geometry_section(geometry: Geometry) -> list[str]:
    """Mean pairwise cosine and effective rank of z_t and z_m after stage 1, per extractor."""
    lines = [
        "## JE geometry after stage 1",
        "",
        "Mean pairwise cosine and effective rank of the tag embeddings z_t and the audio embeddings z_m on the "
        "validation clips after the last stage-1 epoch (dvclive `reports/train/<extractor>-stage1/metrics.json`). "
        "A mean cosine near 1 and a small effective rank mean the embeddings collapsed onto a few directions. "
        "n/a: the stage-1 run did not log the value.",
        "",
    ]
    lines += _header(["Extractor", "z_t mean cos", "z_t eff. rank", "z_m mean cos", "z_m eff. rank"])
    for x in EXTRACTOR_IDS:
        cells = [extractor_spec(x).name]
        for key in GEOMETRY_KEYS:
            value = geometry[x][key]
            cells.append("n/a" if value is None else f"{value:.2f}" if key.endswith("erank") else _num(value))
        lines.append(_row(cells))
    return lines


def render_table(
    evals: Evals,
    diffs: Mapping[str, dict | None],
    *,
    probe: Mapping[str, Any],
    figure2: Mapping[str, Any],
    geometry: Geometry,
    header: str,
) -> str:
    """Markdown of Table 1: paper protocol, JE effect, literature protocol (+ probe), retrieval, Figure 2, geometry."""
    any_report = next(iter(evals.values()))
    resamples = any_report["bootstrap"]["resamples"]
    missing = [f"{x}-{v}" for x in EXTRACTOR_IDS for v in VARIANTS if (x, v) not in evals]
    lines = ["# Table 1: music auto-tagging with and without joint embeddings (JE)", "", header, ""]
    if missing:
        lines += [f"Missing evaluations: {', '.join(missing)}.", ""]
    for section in (
        _paper_section(evals, any_report["n_crops"]),
        _effect_section(diffs, resamples),
        _literature_section(evals, probe, resamples),
        _retrieval_section(evals),
        _figure2_section(figure2),
        _geometry_section(geometry),
    ):
        lines += [*section, ""]
    return "\n".join(lines)


def run_table1(
    params: Params,
    *,
    eval_dir: Path,
    arrays_dir: Path,
    probe_json: Path,
    train_dir: Path,
    figure2_json: Path,
    out_table: Path,
    out_metrics: Path,
    out_details: Path,
) -> None:
    """Write ``out_table`` (markdown Table 1), ``out_metrics`` (flat DVC metrics) and ``out_details`` (the rest, flat).

    Inputs: the evaluations in ``eval_dir`` (and their arrays in ``arrays_dir``), the probe report
    ``probe_json``, the stage-1 dvclive folders ``<train_dir>/<extractor>-stage1/`` and Figure 2's
    statistics ``figure2_json``.
    """
    evals = load_evaluations(eval_dir)
    if not evals:
        raise StageError(f"{eval_dir}: no <extractor>-<variant>.json evaluations found; run `jetatag evaluate` first")
    switches = training_switches(params)
    header = (
        f"Dataset: {dataset_line(evals, Path(eval_dir))} · profile: **{params.report.profile}** · "
        f"git revision: `{git_revision()}`\n\n"
        f"Training switches: {switches_line(switches)}"
    )
    probe = load_probe(probe_json, evals)
    figure2 = load_figure2_stats(figure2_json)
    geometry = load_geometry(train_dir)
    diffs = {x: paired_differences(arrays_dir, x, evals) for x in EXTRACTOR_IDS}
    with atomic_open(out_table, "w", encoding="utf-8") as handle:
        handle.write(render_table(evals, diffs, probe=probe, figure2=figure2, geometry=geometry, header=header))
    write_json(out_metrics, summary_metrics(evals, probe=probe))
    details = detail_values(evals, diffs, figure2=figure2, geometry=geometry, switches=switches)
    write_json(out_details, details)
    outs = ", ".join(map(str, (out_table, out_metrics, out_details)))
    log.info("table1: %d of %d evaluations -> %s", len(evals), 2 * len(EXTRACTOR_IDS), outs)
