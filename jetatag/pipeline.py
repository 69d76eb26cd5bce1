"""The pipeline's stage list, declared once: ``dvc.yaml`` and the Snakemake rules are generated from it.

A :class:`Stage` names the ``jetatag`` subcommand it runs, an argument template, its inputs and outputs
(path templates with ``{extractor}``/``{variant}`` wildcards), the params keys that determine its outputs,
and the modules holding its code. ``jetatag pipeline generate`` writes ``dvc.yaml`` and the rule files
``workflow/rules/{data,train,evaluate,report}.smk`` from it, with the same command in both::

    python -m jetatag --log-file <log> <command> --params <params files> <args>

``python -m jetatag`` rather than the ``jetatag`` console script: both front ends run commands from the
repository root, and ``python -m`` puts the working directory first on ``sys.path``, so a command runs
the ``jetatag/`` package of the workspace it runs in. The console script imports whatever the editable
install points at, which for ``dvc exp run --queue`` (run in a temporary copy of the workspace) is the
main checkout's code, not the copy's whose hashes DVC records.

Code dependencies are the stage's modules plus every ``jetatag`` module they import, transitively
(found by parsing the sources, so adding an import updates the DAG; ``jetatag.models`` also brings the
modules of the extractor classes it loads by name), plus the package data their packages keep in a
``data/`` folder (the synthetic generator's tables, ``jetatag/synth/data``); ``jetatag.cli``,
``jetatag.errors`` and ``jetatag.io`` are left out because they only parse arguments, word errors and write
files atomically.
Params that only set parallelism (``*.workers``, ``train.device``, ``evaluate.batch_size``) are not
dependencies: the stages' outputs do not depend on them.
"""

from __future__ import annotations

import ast
import functools
import itertools
import json
import re
import shlex
import shutil
import subprocess
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from jetatag.config import TRAINING_SWITCHES, VARIANTS
from jetatag.extractors import CROP_KEYS, EXTRACTOR_IDS, EXTRACTOR_SPECS

ROOT = Path(__file__).resolve().parent.parent
"""Repository root: every path below is relative to it (both front ends run from there)."""

LOG_DIR = "workflow/logs"
DVC_YAML = "dvc.yaml"
DVC_PARAMS = ("params.yaml",)
"""Params files of the DVC front end (DVC tracks the values of ``params.yaml``)."""

COMMAND = "python -m jetatag"
"""How a stage command starts: the workspace's own package (see the module docstring), not the console script."""

SYNTH_MIRROR = "data/synth"
"""The synthetic mirror: ``synth`` writes it, ``download`` reads it when ``data.source`` is ``synthetic``."""

RULES_DIR = "workflow/rules"
"""Where the generated Snakemake rule files go (``workflow/Snakefile`` includes them)."""

UNTRACKED_MODULES = frozenset({"jetatag.cli", "jetatag.errors", "jetatag.io"})

PACKAGE_DATA = "data"
"""Folder of a package's data files (tables its modules read), which are code dependencies like its modules."""

LOADED_MODULES = {"jetatag.models": tuple(spec.module for spec in EXTRACTOR_SPECS)}
"""Modules that a module imports by name at run time, out of sight of the import parser: the extractor classes."""

EVAL_JSONS = tuple(f"reports/eval/{x}-{v}.json" for x in EXTRACTOR_IDS for v in VARIANTS)
EVAL_ARRAYS = tuple(f"data/eval/{x}-{v}.npz" for x in EXTRACTOR_IDS for v in VARIANTS)
STAGE1_LIVE = tuple(f"reports/train/{x}-stage1" for x in EXTRACTOR_IDS)
"""Stage-1 dvclive folders: Table 1 reads the last epoch's embedding geometry from them."""
FIGURE2_ARRAYS = ("data/eval/hcnn-noje.npz", "data/eval/hcnn-je.npz")
"""Figure 2's t-SNE panels: Harmonic-CNN's embeddings without and with JE."""
PER_TAG_EVALS = (
    "reports/eval/${report.per_tag_extractor}-noje.json",
    "reports/eval/${report.per_tag_extractor}-je.json",
)
"""The per-tag ROC-AUC plot: both variants of the extractor that ``report.per_tag_extractor`` names."""


@dataclass(frozen=True)
class Output:
    """One output of a stage, and how each front end stores it.

    Only flat summary numbers are DVC ``metrics`` (``reports/metrics.json``: each model's headline numbers
    in both protocols, one column each in ``dvc exp show``); Table 1's other numbers (``reports/table1.json``)
    and the nested per-evaluation JSONs are plain outputs. Images are ``plots`` (``dvc
    plots show/diff`` renders them); training curves are the top-level :data:`CURVES`, not stage plots.
    """

    path: str  # path template, may hold the stage's wildcards
    kind: Literal["outs", "metrics", "plots"] = "outs"  # DVC section it is declared in
    cache: bool = True  # DVC: keep the content in DVC's cache (True) or in git (False)
    directory: bool = False  # Snakemake: the output is a folder
    caption: str | None = None  # Snakemake: in `snakemake --report`, with this caption (workflow/report/)


@dataclass(frozen=True)
class Folder:
    """A folder a command is given, and the files in it that the command reads: those files are the inputs.

    A folder that several jobs fill cannot itself be an input (Snakemake has no rule that makes it, and
    DVC would rerun the stage when any file in it changes), so each front end declares the files.
    """

    path: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: a DVC stage (group) and a Snakemake rule of the same name."""

    name: str  # DVC stage (group) name and Snakemake rule name
    desc: str  # one line for `dvc stage list`
    command: str  # the `jetatag` subcommand
    args: str  # argument template: {dep}, {out} and {wildcard} fields (a Folder dep's field is its path)
    deps: Mapping[str, str | Folder]  # data inputs; "${section.key}" in a path is a params value
    outs: Mapping[str, Output]
    params: tuple[str, ...]  # params keys (or whole sections) that determine the outputs
    modules: tuple[str, ...]  # modules holding the stage's code
    wildcards: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> values, in order
    synthetic_only: bool = False  # Snakemake builds it only for data.source: synthetic; DVC always runs it
    gpu: bool = False  # Snakemake: the job holds the `gpu` resource (workflow/profiles/default allows one)
    cache: bool = False  # Snakemake: eligible for the between-workflow cache (outputs depend on code and params only)

    @property
    def log(self) -> str:
        """Log file template: one per job."""
        return f"{LOG_DIR}/" + "-".join([self.name, *(f"{{{w}}}" for w in self.wildcards)]) + ".log"

    def instances(self) -> Iterator[dict[str, str]]:
        """Every wildcard assignment (one job each), in DVC's matrix order."""
        names = list(self.wildcards)
        for values in itertools.product(*self.wildcards.values()):
            yield dict(zip(names, values, strict=True))

    def code(self) -> tuple[str, ...]:
        """Source files the stage runs (its modules and their ``jetatag`` imports), sorted."""
        return code_files(self.modules)

    def render(self, fields: Mapping[str, str], params: str) -> str:
        """The shell command, with ``fields`` filling the template and ``params`` its ``--params`` options."""
        return f"{COMMAND} --log-file {fields['log']} {self.command} {params} {self.args.format_map(fields)}"

    def job(self, wildcards: Mapping[str, str], params: Sequence[str] = DVC_PARAMS) -> str:
        """The command of the job with ``wildcards`` (concrete values, or DVC's ``${item.x}``)."""
        fields = {**wildcards, "log": fill(self.log, wildcards)}
        fields |= {k: fill(v.path if isinstance(v, Folder) else v, wildcards) for k, v in self.deps.items()}
        fields |= {k: fill(o.path, wildcards) for k, o in self.outs.items()}
        return self.render(fields, params_args(params))


def fill(template: str, wildcards: Mapping[str, str]) -> str:
    """Replace the ``{wildcard}`` fields of a path template, leaving ``${params.key}`` references alone."""
    return re.sub(r"(?<!\$)\{(\w+)\}", lambda m: wildcards[m[1]], template)


def params_args(paths: Sequence[str]) -> str:
    """``--params`` options for ``paths`` (later files override earlier ones)."""
    return " ".join(f"--params {shlex.quote(str(p))}" for p in paths)


_X = {"extractor": EXTRACTOR_IDS}
_XV = {"extractor": EXTRACTOR_IDS, "variant": VARIANTS}
_TRAIN = (
    "train.batch_size",
    "train.seed",
    "train.precision",
    "train.conv_l2",
    "train.valid_crops",
    "train.optimizer_state",
    "train.batch_order",
)

STAGES: tuple[Stage, ...] = (
    Stage(
        name="synth",
        desc="Synthetic MTAT mirror into data/synth when data.source is synthetic (else a note)",
        command="synth",
        args="--out {mirror}",
        deps={},
        outs={"mirror": Output(SYNTH_MIRROR, directory=True)},
        params=("data.source", "synth.n_clips", "synth.clip_seconds", "synth.seed"),
        modules=("jetatag.synth.stage",),
        synthetic_only=True,
        cache=True,
    ),
    Stage(
        name="download",
        desc="Acquire MTAT (http(s) mirror, local folder, or data/synth for a synthetic source) into data/raw",
        command="download",
        args="--synth {synth} --out {raw}",
        deps={"synth": SYNTH_MIRROR},
        outs={"raw": Output("data/raw", directory=True)},
        params=("data.source",),
        modules=("jetatag.data.download",),
        cache=True,
    ),
    Stage(
        name="labels",
        desc="Top-N tags, split by folder, drop unusable clips",
        command="labels",
        args="--raw {raw} --out {labels}",
        deps={"raw": "data/raw"},
        outs={"labels": Output("data/labels", directory=True)},
        params=("data.n_tags",),
        modules=("jetatag.data.labels",),
        cache=True,
    ),
    Stage(
        name="segment",
        desc="Decode, resample and shard the kept clips",
        command="segment",
        args="--labels {labels} --raw {raw} --out {audio}",
        deps={"labels": "data/labels", "raw": "data/raw"},
        outs={"audio": Output("data/audio", directory=True)},
        params=(
            "audio.sample_rate",
            "audio.peak_normalize",
            "audio.mu_law",
            "audio.dtype",
            "audio.shard_mb",
            "audio.short_clips",
            *(f"model.{key}" for key in CROP_KEYS),
        ),
        modules=("jetatag.data.segment",),
        cache=True,
    ),
    Stage(
        name="stage1",
        desc="JE stage 1: tag autoencoder + extractor + projection head",
        command="stage1",
        args="--extractor {extractor} --audio {audio} --out {model} --live {live}",
        deps={"audio": "data/audio"},
        outs={
            "model": Output("models/{extractor}/je/stage1.pt"),
            "live": Output("reports/train/{extractor}-stage1", directory=True),
        },
        params=("model", *_TRAIN, "train.stage1_schedule", "train.pair_target"),
        modules=("jetatag.train.stage1",),
        wildcards=_X,
        gpu=True,
    ),
    Stage(
        name="stage2",
        desc="JE stage 2: classifier on the frozen stage-1 extractor",
        command="stage2",
        args="--extractor {extractor} --variant je --audio {audio} --stage1 {stage1} --out {model} --live {live}",
        deps={"audio": "data/audio", "stage1": "models/{extractor}/je/stage1.pt"},
        outs={
            "model": Output("models/{extractor}/je/model.pt"),
            "live": Output("reports/train/{extractor}-stage2", directory=True),
        },
        params=(
            "model",
            *_TRAIN,
            "train.stage2_schedule",
            "train.classifier_bias",
            "train.je_embedding_cache",
            "train.je_cache_crops",
        ),
        modules=("jetatag.train.stage2",),
        wildcards=_X,
        gpu=True,
    ),
    Stage(
        name="baseline",
        desc="No-JE baseline: extractor + classifier trained end to end",
        command="stage2",
        args="--extractor {extractor} --variant noje --audio {audio} --out {model} --live {live}",
        deps={"audio": "data/audio"},
        outs={
            "model": Output("models/{extractor}/noje/model.pt"),
            "live": Output("reports/train/{extractor}-baseline", directory=True),
        },
        params=("model", *_TRAIN, "train.stage2_schedule", "train.classifier_bias"),
        modules=("jetatag.train.stage2",),
        wildcards=_X,
        gpu=True,
    ),
    Stage(
        name="evaluate",
        desc="Score the test clips: paper (micro) and literature (macro) metrics, embeddings",
        command="evaluate",
        args="--model {model} --audio {audio} --out {metrics} --arrays {arrays}",
        deps={"model": "models/{extractor}/{variant}/model.pt", "audio": "data/audio"},
        outs={
            "metrics": Output("reports/eval/{extractor}-{variant}.json", cache=False),
            "arrays": Output("data/eval/{extractor}-{variant}.npz"),
        },
        params=("data.source", "evaluate.n_crops", "evaluate.bootstrap", "evaluate.seed"),
        modules=("jetatag.evaluate.stage",),
        wildcards=_XV,
        gpu=True,
    ),
    Stage(
        name="probe",
        desc="Reference row: logistic regression on log-mel mean/std features, train split -> test split",
        command="probe",
        args="--audio {audio} --out {metrics}",
        deps={"audio": "data/audio"},
        outs={"metrics": Output("reports/eval/probe.json", cache=False)},
        params=(
            "data.source",
            "probe.n_mels",
            "probe.n_fft",
            "probe.hop_length",
            "probe.c",
            "probe.max_iter",
            "evaluate.bootstrap",
            "evaluate.seed",
        ),
        modules=("jetatag.evaluate.probe",),
    ),
    Stage(
        name="figure2",
        desc="Figure 2 (t-SNE of Harmonic-CNN h, no JE / tags / JE) with k-NN tag agreement, per-tag ROC-AUC plot",
        command="figure2",
        args="--arrays {arrays} --evals {evals} --out {figure} --out-stats {stats} --out-per-tag {per_tag}",
        deps={"arrays": Folder("data/eval", FIGURE2_ARRAYS), "evals": Folder("reports/eval", PER_TAG_EVALS)},
        outs={
            "figure": Output("reports/figure2.png", kind="plots", cache=False, caption="figure2.rst"),
            "stats": Output("reports/figure2.json", cache=False),
            "per_tag": Output("reports/per_tag_auc.png", kind="plots", cache=False, caption="per_tag_auc.rst"),
        },
        params=("report.tsne_tag", "report.tsne_perplexity", "report.per_tag_extractor", "report.seed"),
        modules=("jetatag.report.figure2",),
    ),
    Stage(
        name="table1",
        desc="Table 1 (markdown), flat metrics.json (headline numbers) and table1.json (the other numbers)",
        command="table1",
        args=(
            "--evals {evals} --arrays {arrays} --probe {probe} --train {train} --figure2 {figure2} "
            "--out-table {table} --out-metrics {metrics} --out-details {details}"
        ),
        deps={
            "evals": Folder("reports/eval", EVAL_JSONS),
            "arrays": Folder("data/eval", EVAL_ARRAYS),
            "probe": "reports/eval/probe.json",
            "train": Folder("reports/train", STAGE1_LIVE),
            "figure2": "reports/figure2.json",
        },
        outs={
            "table": Output("reports/table1.md", cache=False, caption="table1.rst"),
            "metrics": Output("reports/metrics.json", kind="metrics", cache=False),
            "details": Output("reports/table1.json", cache=False),
        },
        params=("report.profile", *TRAINING_SWITCHES),
        modules=("jetatag.report.table1",),
    ),
)


@dataclass(frozen=True)
class Curve:
    """A top-level DVC plot: one dvclive quantity of one training stage, one line per extractor, against epochs."""

    stage: str  # training stage whose dvclive folder (its ``live`` output) holds the curve
    metric: str  # dvclive metric name, e.g. ``valid/loss``

    @property
    def id(self) -> str:
        return f"{self.stage}: {self.metric}"

    def files(self) -> list[str]:
        """dvclive's TSV of the quantity in each job's folder (``<live>/plots/metrics/<metric>.tsv``)."""
        s = stage(self.stage)
        return [f"{fill(s.outs['live'].path, wc)}/plots/metrics/{self.metric}.tsv" for wc in s.instances()]


CURVES: tuple[Curve, ...] = (
    *(Curve("stage1", m) for m in ("train/loss", "valid/loss", "valid/pair_loss", "valid/zm_erank")),
    *(Curve(name, m) for name in ("stage2", "baseline") for m in ("train/loss", "valid/loss", "valid/roc_auc")),
)
"""Training curves that ``dvc plots show`` draws (dvclive logs one step per epoch)."""


def stage(name: str) -> Stage:
    """The stage called ``name``."""
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no pipeline stage {name!r} (stages: {', '.join(s.name for s in STAGES)})")


def synthetic_only_paths() -> frozenset[str]:
    """Outputs of the stages built only for a synthetic ``data.source`` (``synth``'s mirror)."""
    return frozenset(o.path for s in STAGES if s.synthetic_only for o in s.outs.values())


def skipped_paths(config: Mapping[str, Any]) -> frozenset[str]:
    """Outputs of the stages that ``config`` does not need (``synth`` unless ``data.source`` is synthetic).

    dvc.yaml is static, so DVC runs every stage (``synth`` then writes a constant note); Snakemake leaves
    these stages out of the DAG and the jobs reading them out of their inputs (their commands ignore them).
    """
    from jetatag.config import SYNTHETIC_SOURCE

    if str(config["data"]["source"]).strip() == SYNTHETIC_SOURCE:
        return frozenset()
    return synthetic_only_paths()


def files_of(dep: str | Folder) -> tuple[str, ...]:
    """The input paths a dependency stands for: a Folder's files, else the path itself."""
    return dep.files if isinstance(dep, Folder) else (dep,)


def dep_paths(s: Stage) -> list[str]:
    """All data input path templates of ``s``, flattened in declaration order."""
    return [p for v in s.deps.values() for p in files_of(v)]


def resolve_params(path: str, config: Mapping[str, Any]) -> str:
    """Fill ``${section.key}`` params references in ``path`` from ``config`` (what DVC does for dvc.yaml)."""
    while "${" in path:
        start = path.index("${")
        end = path.index("}", start)
        value: Any = config
        for part in path[start + 2 : end].split("."):
            value = value[part]
        path = f"{path[:start]}{value}{path[end + 1 :]}"
    return path


def copy_checkout(dest: Path, *, exclude: Sequence[str] = ()) -> None:
    """Copy this checkout's files (tracked, and untracked but not ignored) into ``dest``.

    ``dvc.lock`` stays behind, so that the copy starts its own runs; so does every path under a folder
    prefix in ``exclude``. Used by the end-to-end tests and the GPU check to run the pipeline on the
    code as it is now, in a repository of their own.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file() and name != "dvc.lock" and not name.startswith(tuple(exclude)):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


# --- code dependencies ----------------------------------------------------------------------------


def module_path(module: str, root: Path = ROOT) -> Path | None:
    """Source file of ``jetatag`` module ``module`` relative to ``root``, or None if there is none."""
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / candidate).is_file():
            return candidate
    return None


def package_data(path: Path, root: Path = ROOT) -> list[str]:
    """Package data beside the module at ``path``: the files of its package's ``data/`` folder, sorted.

    Only a plain folder counts (``jetatag/data`` is a subpackage, whose modules are found through imports).
    """
    folder = root / path.parent / PACKAGE_DATA
    if not folder.is_dir() or (folder / "__init__.py").is_file():
        return []
    return [p.relative_to(root).as_posix() for p in sorted(folder.iterdir()) if p.is_file()]


def module_imports(module: str, path: Path, root: Path = ROOT) -> set[str]:
    """``jetatag`` modules that ``module`` (source ``root / path``) imports anywhere in its body."""
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: climb level - 1 packages above this one
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # names may be submodules
    return {m for m in found if m.split(".")[0] == "jetatag" and module_path(m, root) is not None}


@functools.cache
def code_files(modules: tuple[str, ...]) -> tuple[str, ...]:
    """Source files of ``modules`` and of every ``jetatag`` module they import, transitively; sorted.

    A module whose file does not exist yet is listed under its expected path, so the front ends report
    it as a missing input instead of silently dropping it.
    """
    seen: set[str] = set()
    files: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen or module in UNTRACKED_MODULES:
            continue
        seen.add(module)
        path = module_path(module)
        if path is None:
            files.add(Path(*module.split(".")).with_suffix(".py").as_posix())
            continue
        files.add(path.as_posix())
        files.update(package_data(path))
        todo.extend(module_imports(module, path))
        todo.extend(LOADED_MODULES.get(module, ()))
    return tuple(sorted(files))


# --- dvc.yaml ------------------------------------------------------------------------------------

DVC_HEADER = """\
# Generated from jetatag/pipeline.py by `jetatag pipeline generate`: edit the stage list there, not here.
# The Snakemake front end (workflow/Snakefile) builds the same commands from the same list.
"""


def _dvc_stage(s: Stage) -> dict[str, Any]:
    """The dvc.yaml entry of ``s``: a plain stage, or a ``matrix`` over its wildcards."""
    item = {w: f"${{item.{w}}}" for w in s.wildcards}
    entry: dict[str, Any] = {"desc": s.desc}
    if s.wildcards:
        entry["matrix"] = {w: _FlowList(values) for w, values in s.wildcards.items()}
    entry["cmd"] = s.job(item)
    entry["deps"] = [fill(p, item) for p in dep_paths(s)] + list(s.code())
    entry["params"] = list(s.params)
    for kind in ("outs", "metrics", "plots"):
        outs = [o for o in s.outs.values() if o.kind == kind]
        if outs:
            entry[kind] = [fill(o.path, item) if o.cache else {fill(o.path, item): {"cache": False}} for o in outs]
    return entry


class _FlowList(list):
    """A list that dvc.yaml shows on one line (the wildcard values of a matrix)."""


class _DvcDumper(yaml.SafeDumper):
    """SafeDumper that writes :class:`_FlowList` in flow style."""


_DvcDumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _dvc_plot(curve: Curve) -> dict[str, Any]:
    """The top-level ``plots`` entry of ``curve``: the TSV column dvclive names after the metric's last part."""
    column = curve.metric.rpartition("/")[2]
    spec = {"title": curve.id, "x": "step", "x_label": "epoch", "y_label": curve.metric}
    return {curve.id: {**spec, "y": {path: column for path in curve.files()}}}


def dvc_yaml() -> str:
    """Text of ``dvc.yaml`` for :data:`STAGES` and :data:`CURVES`."""
    pipeline = {"stages": {s.name: _dvc_stage(s) for s in STAGES}, "plots": [_dvc_plot(c) for c in CURVES]}
    return DVC_HEADER + yaml.dump(pipeline, Dumper=_DvcDumper, sort_keys=False, width=1000)


# --- Snakemake rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFile:
    """One generated file of Snakemake rules under :data:`RULES_DIR`: what its stages do, and the stages."""

    name: str
    about: str
    stages: tuple[str, ...]


RULE_FILES: tuple[RuleFile, ...] = (
    RuleFile(
        "data.smk",
        "Data stages: the synthetic mirror (only for data.source: synthetic), acquire MTAT, select the top-N "
        "tags, decode into shards. Their outputs depend only on the code and the params they read, so they "
        "are eligible for the between-workflow cache: `snakemake --cache` with SNAKEMAKE_OUTPUT_CACHE set "
        "reuses them across clones.",
        ("synth", "download", "labels", "segment"),
    ),
    RuleFile(
        "train.smk",
        "Training: JE stage 1, JE stage 2 on the frozen stage-1 extractor, and the no-JE baseline. Each job "
        "holds the `gpu` resource; workflow/profiles/default allows one at a time.",
        ("stage1", "stage2", "baseline"),
    ),
    RuleFile(
        "evaluate.smk",
        "Evaluation of every trained model on the test clips (both metric protocols, embeddings for "
        "Figure 2), and the reference probe.",
        ("evaluate", "probe"),
    ),
    RuleFile(
        "report.smk",
        "Reports: Figure 2 with its k-NN agreements and the per-tag ROC-AUC plot, then Table 1 with "
        "metrics.json (headline numbers) and table1.json (the other numbers).",
        ("figure2", "table1"),
    ),
)

SMK_HEADER = """\
# Generated from jetatag/pipeline.py by `jetatag pipeline generate`: edit the stage list there, not here.
# The helpers named in the rules (inputs and params that depend on the config) are in common.smk.
"""

_TAB = "    "


def _q(text: str) -> str:
    """``text`` as a double-quoted Python string literal (snakefmt's quotes)."""
    return json.dumps(text)


def _exploded(head: str, items: Sequence[str], close: str, depth: int) -> str:
    """``head`` + one item a line + ``close``, with the trailing comma that keeps snakefmt from joining them."""
    return head + "".join(f"\n{_TAB * (depth + 1)}{item}," for item in items) + f"\n{_TAB * depth}{close}"


def _call(name: str, args: Sequence[str], depth: int) -> str:
    """``name(args)``: on one line for a single argument, else one argument a line."""
    return f"{name}({args[0]})" if len(args) == 1 else _exploded(f"{name}(", args, ")", depth)


def _smk_input(key: str, dep: str | Folder) -> str:
    """A named input: literal paths; helper calls (common.smk) where the paths depend on the config."""
    paths = [_q(p) for p in files_of(dep)]
    if dep in synthetic_only_paths():
        return f"{key}=synthetic_only({_q(dep)})"
    if "${" in "".join(paths):
        return f"{key}={_call('config_paths', paths, 2)}"
    return f"{key}={_exploded('[', paths, ']', 2) if isinstance(dep, Folder) else paths[0]}"


def _smk_output(key: str, out: Output) -> str:
    """A named output: a folder marked ``directory``, a captioned result marked for ``snakemake --report``."""
    path = f"directory({_q(out.path)})" if out.directory else _q(out.path)
    if out.caption is not None:
        path = _call("report", [path, f"caption={_q('../report/' + out.caption)}", 'category="Results"'], 2)
    return f"{key}={path}"


def _smk_shell(s: Stage) -> str:
    """The stage's command with Snakemake's placeholders: the dvc.yaml command once Snakemake fills them.

    A Folder is given by its path (its files are the inputs); so is an input that only a synthetic source
    builds, because for another source it is no input (and the command ignores it).
    """
    fields = {"log": "{log}", **{w: f"{{params.{w}}}" for w in s.wildcards}}
    for key, dep in s.deps.items():
        if isinstance(dep, Folder):
            fields[key] = dep.path
        else:
            fields[key] = dep if dep in synthetic_only_paths() else f"{{input.{key}}}"
    fields |= {key: f"{{output.{key}}}" for key in s.outs}
    return s.render(fields, "{params.configfiles}")


def _directive(name: str, items: Sequence[str]) -> str:
    """A rule directive holding one item a line, each with a trailing comma."""
    return f"{_TAB}{name}:" + "".join(f"\n{_TAB * 2}{item}," for item in items)


def _codes(s: Stage) -> list[str]:
    """The stage's source files as string literals."""
    return [_q(path) for path in s.code()]


def smk_rule(s: Stage) -> str:
    """The literal Snakemake rule of ``s``, preceded by its description."""
    params = [f'{w}="{{{w}}}"' for w in s.wildcards]  # a params entry, so the between-workflow cache keys on it
    params += [f"values={_call('param_values', [_q(k) for k in s.params], 2)}", "configfiles=params_options()"]
    lines = [
        f"# {s.desc}",
        f"rule {s.name}:",
        _directive("input", [*(_smk_input(k, d) for k, d in s.deps.items()), _exploded("code=[", _codes(s), "]", 2)]),
        _directive("output", [_smk_output(k, o) for k, o in s.outs.items()]),
        _directive("log", [_q(s.log)]),
        *([f"{_TAB}cache: True"] if s.cache else []),
        f"{_TAB}conda:\n{_TAB * 2}CONDA_ENV",
        *([_directive("resources", ["gpu=1"])] if s.gpu else []),
        _directive("params", params),
        f"{_TAB}shell:\n{_TAB * 2}{_q(_smk_shell(s))}",
    ]
    return "\n".join(lines) + "\n"


def rule_file_text(rule_file: RuleFile) -> str:
    """Text of one generated rule file: the header, what its stages do, and their rules."""
    about = "".join(f"# {line}\n" for line in textwrap.wrap(rule_file.about, width=100))
    return SMK_HEADER + about + "".join(f"\n\n{smk_rule(stage(name))}" for name in rule_file.stages)


# --- generated files -----------------------------------------------------------------------------


def generated_files() -> dict[str, str]:
    """Every file generated from the stage list (path relative to the root -> text)."""
    rules = {f"{RULES_DIR}/{f.name}": rule_file_text(f) for f in RULE_FILES}
    return {DVC_YAML: dvc_yaml(), **rules}


def write_generated(root: Path = ROOT, *, check: bool = False) -> list[str]:
    """Write the generated files that differ under ``root``; with ``check``, only raise StageError if any is stale."""
    from jetatag.errors import StageError
    from jetatag.io import atomic_open

    files = generated_files()
    stale = [
        name
        for name, text in files.items()
        if not (root / name).is_file() or (root / name).read_text(encoding="utf-8") != text
    ]
    if check and stale:
        raise StageError(f"out of date with jetatag/pipeline.py: {', '.join(stale)}; run `jetatag pipeline generate`")
    if not check:
        for name in stale:
            with atomic_open(root / name, "w", encoding="utf-8") as handle:
                handle.write(files[name])
    return stale


def all_commands(params: Sequence[str] = DVC_PARAMS) -> set[str]:
    """Every job's command, as both front ends print them (``dvc repro --dry``, ``snakemake -n -p``)."""
    return {s.job(wc, params) for s in STAGES for wc in s.instances()}
