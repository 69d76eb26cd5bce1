"""The pipeline front ends: the stage list, dvc.yaml, the Snakemake workflow, profiles and metric diffs.

The slow tests run the real tools on ``profiles/tiny.yaml`` in throw-away copies of the repository:
one full ``dvc repro`` and one full ``snakemake --cores 2`` run (each builds the whole DAG), whose
results every check below reuses.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import jsonschema
import pytest
import yaml

import jetatag
from jetatag import config, pipeline
from jetatag.config import VARIANTS, ParamsError, load_params, params_to_dict
from jetatag.extractors import EXTRACTOR_IDS
from jetatag.profiles import apply_profile

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
PROFILES = ("profiles/paper.yaml", "profiles/authors-a21.yaml", "profiles/tiny.yaml")
DATA_STAGES = ("synth", "download", "labels", "segment")


# --- stage list and generated files ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(pipeline.generated_files()))
def test_generated_files_are_up_to_date(name: str) -> None:
    # dvc.yaml and the Snakemake rule files: both front ends read what the stage list says
    assert (ROOT / name).read_text(encoding="utf-8") == pipeline.generated_files()[name], (
        f"{name} is stale: run `jetatag pipeline generate`"
    )


def test_generate_writes_what_is_stale_and_check_names_it(tmp_path: Path) -> None:
    from jetatag.errors import StageError

    (tmp_path / pipeline.RULES_DIR).mkdir(parents=True)
    assert pipeline.write_generated(tmp_path) == list(pipeline.generated_files())
    assert pipeline.write_generated(tmp_path, check=True) == []
    (tmp_path / "workflow/rules/report.smk").write_text("# edited\n", encoding="utf-8")
    with pytest.raises(StageError, match="workflow/rules/report.smk"):
        pipeline.write_generated(tmp_path, check=True)


def test_every_stage_has_one_literal_rule() -> None:
    ruled = [name for f in pipeline.RULE_FILES for name in f.stages]
    assert sorted(ruled) == sorted(s.name for s in pipeline.STAGES)
    included = (ROOT / "workflow/Snakefile").read_text(encoding="utf-8")
    assert all(f'include: "rules/{f.name}"' in included for f in pipeline.RULE_FILES)
    rule = pipeline.smk_rule(pipeline.stage("stage2"))
    assert 'stage1="models/{extractor}/je/stage1.pt",' in rule  # paths, not helper calls
    assert "--stage1 {input.stage1} --out {output.model}" in rule


def test_every_path_a_command_uses_is_declared() -> None:
    # a command's paths are template fields naming inputs and outputs; a folder it is given holds the
    # files it reads from there, which are the declared inputs
    for stage in pipeline.STAGES:
        values = stage.args.split()[1::2]
        literal = [v for v in values if not re.fullmatch(r"\{\w+\}", v)]
        assert all("/" not in v for v in literal), f"{stage.name}: literal paths {literal}"
        for dep in stage.deps.values():
            if isinstance(dep, pipeline.Folder):
                assert all(f.startswith(f"{dep.path}/") for f in dep.files), dep


def test_every_declared_dependency_exists() -> None:
    params = params_to_dict(load_params(ROOT / "params.yaml"))
    for stage in pipeline.STAGES:
        assert stage.code(), stage.name
        for path in stage.code():
            assert (ROOT / path).is_file(), f"{stage.name}: source {path} does not exist"
        for key in stage.params:
            config.param_value(params, key)  # KeyError names a key missing from params.yaml
        used = set(re.findall(r"(?<!\$)\{(\w+)\}", " ".join([*pipeline.dep_paths(stage), stage.args])))
        fields = set(stage.wildcards) | set(stage.deps) | set(stage.outs)
        assert used <= fields, f"{stage.name}: unknown template fields {used - fields}"


def test_job_grid_matches_the_paper() -> None:
    jobs = {s.name: len(list(s.instances())) for s in pipeline.STAGES}
    assert jobs == {
        "synth": 1,
        "download": 1,
        "labels": 1,
        "segment": 1,
        "stage1": len(EXTRACTOR_IDS),
        "stage2": len(EXTRACTOR_IDS),
        "baseline": len(EXTRACTOR_IDS),
        "evaluate": len(EXTRACTOR_IDS) * len(VARIANTS),
        "probe": 1,
        "figure2": 1,
        "table1": 1,
    }
    outputs = [pipeline.fill(o.path, wc) for s in pipeline.STAGES for wc in s.instances() for o in s.outs.values()]
    assert len(outputs) == len(set(outputs)), "two jobs write the same path"


def test_report_inputs_are_outputs_of_other_jobs() -> None:
    # table1 reads the probe, Figure 2's statistics and every stage-1 dvclive folder: each is some job's output
    written = {pipeline.fill(o.path, wc) for s in pipeline.STAGES for wc in s.instances() for o in s.outs.values()}
    table1 = pipeline.dep_paths(pipeline.stage("table1"))
    assert {"reports/eval/probe.json", "reports/figure2.json"} <= set(table1)
    assert {f"reports/train/{x}-stage1" for x in EXTRACTOR_IDS} <= set(table1)
    assert set(table1) <= written
    assert "probe.workers" not in pipeline.stage("probe").params  # parallelism only


def test_only_flat_summaries_are_dvc_metrics() -> None:
    dvc = yaml.safe_load(pipeline.dvc_yaml())
    metrics = [out for s in dvc["stages"].values() for out in s.get("metrics", [])]
    assert metrics == [{"reports/metrics.json": {"cache": False}}]
    assert {"reports/table1.json": {"cache": False}} in dvc["stages"]["table1"]["outs"]  # the other numbers, plain
    stage_plots = [next(iter(out)) for s in dvc["stages"].values() for out in s.get("plots", [])]
    assert sorted(stage_plots) == ["reports/figure2.png", "reports/per_tag_auc.png"]  # images, in git
    evaluate = dvc["stages"]["evaluate"]["outs"]
    assert {"reports/eval/${item.extractor}-${item.variant}.json": {"cache": False}} in evaluate


def test_curves_read_dvclive_files_of_training_jobs() -> None:
    dvc = yaml.safe_load(pipeline.dvc_yaml())
    plots = {plot_id: spec for entry in dvc["plots"] for plot_id, spec in entry.items()}
    assert len(plots) == len(pipeline.CURVES)
    for curve in pipeline.CURVES:
        spec = plots[curve.id]
        assert spec["x"] == "step"
        training = pipeline.stage(curve.stage)
        assert list(training.wildcards) == ["extractor"]  # one line per extractor
        lives = [pipeline.fill(training.outs["live"].path, wc) for wc in training.instances()]
        assert list(spec["y"]) == [f"{live}/plots/metrics/{curve.metric}.tsv" for live in lives]
        assert set(spec["y"].values()) == {curve.metric.rpartition("/")[2]}  # dvclive's column name


def test_dvc_cache_links_outputs_with_fallbacks() -> None:
    # big data outputs are linked from the cache, not copied, wherever the file system allows it
    from configobj import ConfigObj

    types = ConfigObj(str(ROOT / ".dvc/config"))["cache"]["type"]
    types = [t.strip() for t in (types.split(",") if isinstance(types, str) else types)]
    assert types == ["hardlink", "symlink", "copy"]


def test_dvc_reads_yaml_with_the_c_parser() -> None:
    # ruamel.yaml >= 0.19 falls back to its pure-Python parser without ruamel.yaml.clib: 5x slower on dvc.lock
    from ruamel.yaml import YAML

    yaml_loader = YAML(typ="safe")
    assert yaml_loader.Parser.__module__.startswith("ruamel.yaml.clib"), yaml_loader.Parser
    assert yaml_loader.load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"].keys() >= set(DATA_STAGES)


def test_report_outputs_have_captions() -> None:
    captioned = {o.path: o.caption for s in pipeline.STAGES for o in s.outs.values() if o.caption}
    assert set(captioned) == {"reports/table1.md", "reports/figure2.png", "reports/per_tag_auc.png"}
    for caption in captioned.values():
        assert (ROOT / "workflow/report" / caption).is_file(), caption
    assert 'report: "report/workflow.rst"' in (ROOT / "workflow/Snakefile").read_text(encoding="utf-8")


def test_workflow_is_snakefmt_clean() -> None:
    snakefmt = Path(sys.executable).with_name("snakefmt")
    if not snakefmt.is_file():
        pytest.skip("snakefmt is not installed (pip install -e '.[dev]')")
    checked = subprocess.run([str(snakefmt), "--check", "workflow/"], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr[-3000:]


def _copy_package(dest: Path) -> Path:
    """A workspace at ``dest`` holding this checkout's ``jetatag/`` package and ``params.yaml`` (no install)."""
    shutil.copytree(ROOT / "jetatag", dest / "jetatag", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "params.yaml", dest / "params.yaml")
    return dest


def _argv(command: str) -> list[str]:
    """A rendered stage command as argv, with this interpreter for ``python``."""
    argv = shlex.split(command)
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


def test_stage_commands_run_the_workspace_code(tmp_path: Path) -> None:
    # dvc exp run --queue runs a job in a temporary copy of the workspace: its command must import the
    # copy's jetatag (whose file hashes DVC records), not the editable install's
    assert all(cmd.startswith(f"{pipeline.COMMAND} --log-file ") for cmd in pipeline.all_commands())
    ws = _copy_package(tmp_path / "ws")
    marker = "labels code of the workspace copy"
    with (ws / "jetatag/data/labels.py").open("a", encoding="utf-8") as handle:
        handle.write(f"\nraise SystemExit({marker!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    job = pipeline.stage("labels").job({})
    ran = subprocess.run(_argv(job), cwd=ws, env=env, capture_output=True, text=True, timeout=120)
    assert marker in ran.stderr, ran.stderr[-2000:]
    assert (ws / "workflow/logs/labels.log").is_file()  # --log-file keeps its meaning
    # the console script of the editable install runs this checkout's code instead: the reason for python -m
    script = Path(sys.executable).with_name("jetatag")
    if script.is_file() and Path(jetatag.__file__).resolve().is_relative_to(ROOT):
        installed = subprocess.run(
            [str(script), *_argv(job)[3:]], cwd=ws, env=env, capture_output=True, text=True, timeout=120
        )
        assert marker not in installed.stderr


# --- params: schema, profiles ---------------------------------------------------------------------


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def test_schema_documents_every_param_with_its_default() -> None:
    schema = _schema()
    defaults = params_to_dict(config.Params())
    assert set(schema["properties"]) == set(defaults)
    for section, values in defaults.items():
        props = schema["properties"][section]["properties"]
        assert set(props) == set(values), f"{section}: schema and jetatag.config disagree"
        for key, value in values.items():
            assert props[key].get("description"), f"{section}.{key}: no description"
            assert props[key].get("default") == value, f"{section}.{key}: schema default is not {value!r}"


@pytest.mark.parametrize("overlay", [None, *PROFILES])
def test_params_and_profiles_validate(overlay: str | None) -> None:
    files = [ROOT / "params.yaml", *([ROOT / overlay] if overlay else [])]
    jsonschema.validate(params_to_dict(load_params(files)), _schema())


@pytest.mark.parametrize("profile", ["profiles/paper.yaml", "profiles/authors-a21.yaml"])
def test_reproduction_profiles_set_every_training_switch(profile: str) -> None:
    overlay = yaml.safe_load((ROOT / profile).read_text(encoding="utf-8"))
    unset = [key for key in config.TRAINING_SWITCHES if key.split(".")[1] not in overlay.get(key.split(".")[0], {})]
    assert not unset, f"{profile} leaves {unset} at the demo's values"


def test_authors_a21_profile_takes_the_a21_switches() -> None:
    params = load_params([ROOT / "params.yaml", ROOT / "profiles/authors-a21.yaml"])
    assert (params.model.pair_loss, params.model.tag_encoder_norm, params.model.hcnn_head) == ("a21", "none", "a21")
    assert params.train.conv_l2 == 0.0 and params.report.profile == "authors-a21"
    assert params.audio.mu_law and params.model.sinc_design == "a21"
    assert (params.model.hcnn_front_end, params.model.init_and_bn) == ("a21", "a21")
    assert (params.train.optimizer_state, params.train.batch_order) == ("carry", "annotation")


def test_schema_rejects_what_jetatag_rejects() -> None:
    bad = params_to_dict(load_params(ROOT / "params.yaml"))
    bad["model"]["pair_loss"] = "triplet"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema())
    with pytest.raises(ParamsError):
        config.params_from_dict(bad)


def test_apply_profile_writes_values_and_keeps_comments(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    changed = apply_profile(ROOT / "profiles/paper.yaml", params)
    assert "data.source" in changed and "train.stage1_schedule" in changed
    expected = load_params([ROOT / "params.yaml", ROOT / "profiles/paper.yaml"])
    assert load_params(params) == expected
    text = params.read_text(encoding="utf-8")
    assert "# top-N most frequent tags (MTAT top-50)" in text  # comments survive
    assert "- {optimizer: sgd, lr: 1.0e-05, epochs: 100}" in text  # one phase per line
    assert apply_profile(ROOT / "profiles/paper.yaml", params) == []


def test_apply_profile_rejects_a_bad_profile(tmp_path: Path) -> None:
    params, profile = tmp_path / "params.yaml", tmp_path / "bad.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    profile.write_text("model:\n  width: -1\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="model.width"):
        apply_profile(profile, params)
    assert params.read_text(encoding="utf-8") == (ROOT / "params.yaml").read_text(encoding="utf-8")


# --- real tools on the tiny profile ---------------------------------------------------------------
# DVC and Snakemake each build the whole DAG once, in their own copy of the repository, at the same
# time (DVC runs one job at a time, so the two share the 2 cores well); every check reuses those runs.

TOOL_TIMEOUT_S = 1800


def _env(workspace: Path, **extra: str) -> dict[str, str]:
    """Environment of the tools: this venv's executables, no analytics.

    No PYTHONPATH: the stage commands (``python -m jetatag``) must find the workspace's own package by themselves.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("SNAKEMAKE_OUTPUT_CACHE", "PYTHONPATH")}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "jetatag tests",
        "GIT_AUTHOR_EMAIL": "tests@jetatag.invalid",
        "GIT_COMMITTER_NAME": "jetatag tests",
        "GIT_COMMITTER_EMAIL": "tests@jetatag.invalid",
    }
    return env | extra


class Tool:
    """A command started in a workspace now; :meth:`output` waits for it and fails the test if it failed.

    Its stdout and stderr go to temporary files, not pipes: a run left in the background while other tests
    go on (Snakemake's) would otherwise block on a full 64 KiB pipe until someone read it.
    """

    def __init__(self, cmd: Sequence[str], workspace: Path, **extra_env: str) -> None:
        self.cmd = list(cmd)
        # closed by output(), or by stop() for a run nobody waited for
        self._out = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self._err = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.cmd, cwd=workspace, env=_env(workspace, **extra_env), stdout=self._out, stderr=self._err, text=True
        )
        self._result: tuple[str, str] | None = None

    def output(self, *, stdout_only: bool = False) -> str:
        if self._result is None:
            try:
                self.process.wait(timeout=TOOL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self._result = (self._read(self._out), self._read(self._err))
        out, err = self._result
        if self.process.returncode != 0:
            pytest.fail(f"`{' '.join(self.cmd)}` exited {self.process.returncode}:\n{(out + err)[-6000:]}")
        return out if stdout_only else out + err

    def stop(self) -> None:
        """Kill the command if it still runs (a test failed before waiting for it) and close its output files."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._out.close()
        self._err.close()

    @staticmethod
    def _read(spool: IO[str]) -> str:
        spool.seek(0)
        text = spool.read()
        spool.close()
        return text


def _run(cmd: Sequence[str], workspace: Path, *, stdout_only: bool = False, **extra_env: str) -> str:
    """Run ``cmd`` in ``workspace`` to completion; its output, or a test failure showing it."""
    return Tool(cmd, workspace, **extra_env).output(stdout_only=stdout_only)


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's files (committed or not), copied once with the tiny profile applied.

    Every workspace starts from this one copy, so they run the same code even while the checkout is edited.
    """
    dest = tmp_path_factory.mktemp("checkout")
    pipeline.copy_checkout(dest)
    apply_profile(dest / "profiles/tiny.yaml", dest / "params.yaml")
    return dest


def _workspace(checkout: Path, dest: Path) -> Path:
    """A fresh git repository at ``dest`` holding the files of ``checkout``, committed."""
    shutil.copytree(checkout, dest, dirs_exist_ok=True)
    _run(["git", "init", "-q"], dest)
    _run(["git", "add", "-A"], dest)
    _run(["git", "commit", "-q", "-m", "tiny profile"], dest)
    return dest


def _ran(log: str) -> set[str]:
    """DVC stages that a repro/exp run log says it ran."""
    return set(re.findall(r"Running stage '([^']+)'", log))


def _dvc_stage_names(stages: Sequence[str] | None = None) -> set[str]:
    """Names DVC gives the jobs (``stage`` or ``stage@<wildcard values joined by ->``), of ``stages`` or all."""
    return {
        "@".join([s.name, "-".join(wc.values())]) if wc else s.name
        for s in pipeline.STAGES
        for wc in s.instances()
        if stages is None or s.name in stages
    }


def _dvc_commands(log: str) -> set[str]:
    return {line[2:].strip() for line in log.splitlines() if line.startswith("> ")}


def _snakemake_commands(log: str) -> set[str]:
    prefix = f"Shell command: {pipeline.COMMAND}"
    return {line.split(": ", 1)[1].strip() for line in log.splitlines() if line.startswith(prefix)}


def _files(folder: Path) -> set[Path]:
    """Files under ``folder``, relative to it, following symlinks (cache restores link into the cache)."""
    return {Path(d, f).relative_to(folder) for d, _, names in os.walk(folder, followlinks=True) for f in names}


def _differing(a: Path, b: Path) -> list[str]:
    """Files that differ between folders ``a`` and ``b``, including those present on one side only."""
    return sorted(
        str(f)
        for f in _files(a) | _files(b)
        if not ((a / f).is_file() and (b / f).is_file() and filecmp.cmp(a / f, b / f, shallow=False))
    )


@dataclass(frozen=True)
class SnakemakeStart:
    """A full Snakemake run of the tiny profile, started in the background, storing data stages in a cache."""

    path: Path
    cache: Path
    run: Tool


@pytest.fixture(scope="session")
def snakemake_start(tmp_path_factory: pytest.TempPathFactory, checkout: Path) -> Iterator[SnakemakeStart]:
    ws = _workspace(checkout, tmp_path_factory.mktemp("smk"))
    cache = tmp_path_factory.mktemp("snakemake-cache")
    run = Tool(["snakemake", "--cores", "2", "--cache"], ws, SNAKEMAKE_OUTPUT_CACHE=str(cache))
    yield SnakemakeStart(ws, cache, run)
    run.stop()  # a test failed early: do not leave it running


@dataclass(frozen=True)
class DvcRun:
    """One tiny workspace driven by DVC, and what each step printed."""

    path: Path
    repro: str
    status: str
    repro_again: str
    dry: str
    snakemake_dry: str
    exp_run: str
    exp_show: list
    metrics_diff: str
    metrics_diff_no_base: str
    plots: dict


N_METRICS = len(EXTRACTOR_IDS) * len(VARIANTS) * 4 + 2
"""Columns of reports/metrics.json: paper ROC/PR-AUC and literature ROC-AUC/AP per model, the probe's two."""

NEW_CACHE_CROPS = "train.je_cache_crops=2"
"""A JE stage-2 param: its experiment reruns 14 of the 37 jobs, and none upstream of JE stage 2."""


@pytest.fixture(scope="session")
def dvc_run(tmp_path_factory: pytest.TempPathFactory, checkout: Path, snakemake_start: SnakemakeStart) -> DvcRun:
    """Full `dvc repro` of the tiny profile, then every DVC check's output, in order."""
    ws = _workspace(checkout, tmp_path_factory.mktemp("dvc"))
    repro = _run(["dvc", "repro"], ws)
    _run(["git", "add", "-A"], ws)
    _run(["git", "commit", "-q", "-m", "tiny results"], ws)
    status = _run(["dvc", "status"], ws)
    repro_again = _run(["dvc", "repro"], ws)
    dry = _run(["dvc", "repro", "--dry", "--force"], ws)  # --force: print every stage's command
    snakemake_dry = _run(["snakemake", "-n", "-p", "--forceall"], ws)
    exp_run = _run(["dvc", "exp", "run", "-n", "cache-crops", "-S", NEW_CACHE_CROPS], ws)
    exp_show = json.loads(_run(["dvc", "exp", "show", "--json"], ws, stdout_only=True))
    _run(["jetatag", "metrics-diff", "--base", "HEAD", "--out", "reports/metrics_diff.md"], ws)
    metrics_diff = (ws / "reports/metrics_diff.md").read_text(encoding="utf-8")
    _run(["jetatag", "metrics-diff", "--base", "no-such-revision", "--out", "reports/metrics_diff.md"], ws)
    no_base = (ws / "reports/metrics_diff.md").read_text(encoding="utf-8")
    plots = json.loads(_run(["dvc", "plots", "show", "--json"], ws, stdout_only=True))
    return DvcRun(ws, repro, status, repro_again, dry, snakemake_dry, exp_run, exp_show, metrics_diff, no_base, plots)


@pytest.mark.slow
def test_dvc_repro_builds_the_whole_dag(dvc_run: DvcRun) -> None:
    assert _ran(dvc_run.repro) == _dvc_stage_names()
    assert "profile: **tiny**" in (dvc_run.path / "reports/table1.md").read_text(encoding="utf-8")
    metrics = json.loads((dvc_run.path / "reports/metrics.json").read_text(encoding="utf-8"))
    assert {"hcnn.je.paper.roc_auc", "hcnn.noje.literature.ap", "probe.literature.roc_auc"} <= set(metrics)
    assert len(metrics) == N_METRICS
    details = json.loads((dvc_run.path / "reports/table1.json").read_text(encoding="utf-8"))
    moved = {"figure2.knn_agreement.h_je", "hcnn.stage1.valid.zt_erank", "hcnn.je_minus_noje.paper.roc_auc"}
    assert moved <= set(details) and not set(metrics) & set(details)
    probe = json.loads((dvc_run.path / "reports/eval/probe.json").read_text(encoding="utf-8"))
    hcnn = json.loads((dvc_run.path / "reports/eval/hcnn-je.json").read_text(encoding="utf-8"))
    assert probe["n_test_clips"] == hcnn["n_test_clips"]
    for png in ("reports/figure2.png", "reports/per_tag_auc.png"):
        assert (dvc_run.path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_dvc_repro_links_data_outputs_to_its_cache(dvc_run: DvcRun) -> None:
    # the shards exist once on disk: hard-linked into .dvc/cache by the commit after the stage ran,
    # and read-only so that an edit cannot corrupt the cache
    shards = [p for p in (dvc_run.path / "data/audio").iterdir() if p.is_file()]
    assert shards
    for shard in shards:
        assert shard.stat().st_nlink >= 2, f"{shard} is a copy, not a link to the cache"
        assert shard.stat().st_mode & 0o222 == 0, f"{shard} is writable"


def _experiment_rev(workspace: Path, name: str) -> str:
    """The git revision of experiment ``name`` in ``dvc exp show``."""
    table = json.loads(_run(["dvc", "exp", "show", "--json"], workspace, stdout_only=True))
    revs = {rev["name"]: rev["rev"] for row in table for exp in row.get("experiments") or [] for rev in exp["revs"]}
    assert name in revs, f"no experiment {name!r} in dvc exp show: {sorted(revs)}"
    return revs[name]


@pytest.mark.slow
def test_queued_experiment_runs_its_own_code(dvc_run: DvcRun) -> None:
    # a queued experiment runs in a temporary copy of the workspace as it was when queued: a code change
    # queued with it must reach its outputs even after the workspace has gone back to the old code
    ws, module = dvc_run.path, dvc_run.path / "jetatag/report/table1.py"
    original = module.read_text(encoding="utf-8")
    assert original.count('f"Training switches: {') == 1
    module.write_text(original.replace('f"Training switches: {', 'f"Training switches (queued code): {'), "utf-8")
    try:
        _run(["dvc", "exp", "run", "--queue", "-n", "queued-code"], ws)
    finally:
        module.write_text(original, encoding="utf-8")
    _run(["dvc", "queue", "start", "-j", "1"], ws)
    deadline = time.monotonic() + 600
    while re.search(r"\b(Queued|Running)\b", status := _run(["dvc", "queue", "status"], ws)):
        assert time.monotonic() < deadline, status
        time.sleep(2)
    log = _run(["dvc", "queue", "logs", "queued-code"], ws)
    assert re.search(r"queued-code\s.*\bSuccess\b", status), status + log
    assert _ran(log) == {"table1"}  # only the stage whose code changed
    rev = _experiment_rev(ws, "queued-code")
    table = _run(["git", "show", f"{rev}:reports/table1.md"], ws, stdout_only=True)
    assert "Training switches (queued code): " in table
    # the workspace keeps the old code, and its own outputs stay as they were
    assert "Training switches: `" in (ws / "reports/table1.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_dvc_is_up_to_date_after_repro(dvc_run: DvcRun) -> None:
    assert "Data and pipelines are up to date." in dvc_run.status
    assert _ran(dvc_run.repro_again) == set()


@pytest.mark.slow
def test_both_front_ends_print_the_same_commands(dvc_run: DvcRun) -> None:
    expected = pipeline.all_commands()
    assert _dvc_commands(dvc_run.dry) == expected
    assert _snakemake_commands(dvc_run.snakemake_dry) == expected


@pytest.mark.slow
def test_train_param_change_reruns_only_what_reads_it(dvc_run: DvcRun) -> None:
    # train.je_cache_crops: the JE stage 2, its evaluations and the reports; never stage 1 (whose checkpoint
    # JE stage 2 reads), the data stages, the no-JE baselines or their evaluations
    je_evals = {f"evaluate@{x}-je" for x in EXTRACTOR_IDS}
    assert _ran(dvc_run.exp_run) == _dvc_stage_names(["stage2", "table1", "figure2"]) | je_evals


@pytest.mark.slow
def test_exp_run_records_the_experiment(dvc_run: DvcRun) -> None:
    experiments = {exp["name"]: exp for row in dvc_run.exp_show for exp in (row.get("experiments") or [])}
    assert "cache-crops" in experiments
    data = experiments["cache-crops"]["revs"][0]["data"]
    params = data["params"]["params.yaml"]["data"]
    assert params["train"]["je_cache_crops"] == 2
    # one flat metrics file: a column per headline number, not thousands of per-tag values
    assert set(data["metrics"]) == {"reports/metrics.json"}
    values = data["metrics"]["reports/metrics.json"]["data"]
    assert all(not isinstance(v, dict | list) for v in values.values())
    assert len(values) == N_METRICS


@pytest.mark.slow
def test_dvc_plots_show_curves_across_extractors_and_the_figures(dvc_run: DvcRun) -> None:
    data = dvc_run.plots["data"]
    assert {c.id for c in pipeline.CURVES} | {"reports/figure2.png", "reports/per_tag_auc.png"} == set(data)
    for curve in pipeline.CURVES:
        if curve.metric.endswith("loss"):  # ROC-AUC may be undefined on the tiny profile's few valid clips
            assert [p["type"] for p in data[curve.id]] == ["vega"], curve.id
    assert data["reports/figure2.png"][0]["type"] == "image"


@pytest.mark.slow
def test_metrics_diff_reports_param_and_metric_changes(dvc_run: DvcRun) -> None:
    assert "| params.yaml | train.je_cache_crops" in dvc_run.metrics_diff
    assert re.search(r"\| reports/metrics\.json\s*\| hcnn\.je\.", dvc_run.metrics_diff)
    assert "No revision `no-such-revision`" in dvc_run.metrics_diff_no_base
    assert "reports/metrics.json" in dvc_run.metrics_diff_no_base  # the current metrics instead


@pytest.mark.slow
def test_snakemake_leaves_synth_out_for_a_real_source(tmp_path: Path) -> None:
    overlay = tmp_path / "real.yaml"
    overlay.write_text(f"data:\n  source: {tmp_path}\n", encoding="utf-8")
    dry = _run(["snakemake", "-n", "-p", "--forceall", "--configfile", str(overlay)], ROOT)
    assert "rule synth:" not in dry and "rule download:" in dry
    download = [c for c in _snakemake_commands(dry) if " download " in c]
    assert download and "--synth data/synth" in download[0]  # the same command; download ignores the folder


@pytest.mark.slow
def test_snakemake_lint_is_clean() -> None:
    assert "Congratulations, your workflow is in a good condition!" in _run(["snakemake", "--lint"], ROOT)


@dataclass(frozen=True)
class SnakemakeRun:
    """The finished full Snakemake run, a dry run after it, and a second workspace served from the cache."""

    path: Path
    run: str
    again: str
    cached_path: Path
    cached_run: str
    report: str


@pytest.fixture(scope="session")
def snakemake_run(
    tmp_path_factory: pytest.TempPathFactory, checkout: Path, snakemake_start: SnakemakeStart
) -> SnakemakeRun:
    run = snakemake_start.run.output()
    again = _run(["snakemake", "-n"], snakemake_start.path)
    ws2 = _workspace(checkout, tmp_path_factory.mktemp("smk2"))
    cached = _run(
        ["snakemake", "segment", "--cores", "2", "--cache"], ws2, SNAKEMAKE_OUTPUT_CACHE=str(snakemake_start.cache)
    )
    _run(["snakemake", "--report", "reports/report.html"], snakemake_start.path)
    report = (snakemake_start.path / "reports/report.html").read_text(encoding="utf-8")
    return SnakemakeRun(snakemake_start.path, run, again, ws2, cached, report)


@pytest.mark.slow
def test_snakemake_builds_the_whole_dag(snakemake_run: SnakemakeRun) -> None:
    for stage in pipeline.STAGES:
        for wildcards in stage.instances():
            for out in stage.outs.values():
                assert (snakemake_run.path / pipeline.fill(out.path, wildcards)).exists(), out.path
            assert (snakemake_run.path / pipeline.fill(stage.log, wildcards)).is_file()
    assert "Nothing to be done" in snakemake_run.again


@pytest.mark.slow
def test_snakemake_report_holds_table1_and_both_figures(snakemake_run: SnakemakeRun) -> None:
    report = snakemake_run.report
    assert "Table 1: music auto-tagging with and without joint embeddings (JE)" in report  # the table itself
    assert "profile: **tiny**" in report
    for name in ("figure2.png", "per_tag_auc.png", "table1.md"):
        assert name in report
    assert report.count("data:image/png;base64") >= 2 or report.count("image/png") >= 2


@pytest.mark.slow
def test_snakemake_cache_restores_identical_data(snakemake_run: SnakemakeRun, dvc_run: DvcRun) -> None:
    ws = snakemake_run.cached_path
    for name in DATA_STAGES:
        stage = pipeline.stage(name)
        log = ws / stage.log  # Snakemake creates it empty for a job it takes from the cache
        assert not log.exists() or log.stat().st_size == 0, f"{name} ran instead of coming from the cache"
        for out in stage.outs.values():
            # restored from the cache, byte for byte what DVC's independent run produced, except
            # Snakemake's folder marker and the download stage's bookkeeping (mtimes of the files it verified)
            differing = _differing(ws / out.path, dvc_run.path / out.path)
            assert set(differing) <= {".snakemake_timestamp", "downloads/verified.json"}, out.path
    assert "from cache" in snakemake_run.cached_run
