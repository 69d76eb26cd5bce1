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
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml

from jetatag import config, pipeline
from jetatag.config import EXTRACTOR_IDS, VARIANTS, ParamsError, load_params, params_to_dict

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
PROFILES = ("profiles/paper.yaml", "profiles/tiny.yaml")
DATA_STAGES = ("download", "labels", "segment")


# --- stage list and generated files ---------------------------------------------------------------


def test_dvc_yaml_is_generated_from_stage_list() -> None:
    assert (ROOT / "dvc.yaml").read_text(encoding="utf-8") == pipeline.dvc_yaml(), (
        "dvc.yaml is stale: run `jetatag pipeline generate`"
    )


def test_every_declared_dependency_exists() -> None:
    params = params_to_dict(load_params(ROOT / "params.yaml"))
    for stage in pipeline.STAGES:
        assert stage.code(), stage.name
        for path in stage.code():
            assert (ROOT / path).is_file(), f"{stage.name}: source {path} does not exist"
        for key in stage.params:
            pipeline.param_value(params, key)  # KeyError names a key missing from params.yaml
        used = set(re.findall(r"(?<!\$)\{(\w+)\}", " ".join([*pipeline.dep_paths(stage), stage.args])))
        fields = set(stage.wildcards) | set(stage.deps) | set(stage.outs)
        assert used <= fields, f"{stage.name}: unknown template fields {used - fields}"


def test_job_grid_matches_the_paper() -> None:
    jobs = {s.name: len(list(s.instances())) for s in pipeline.STAGES}
    assert jobs == {
        "download": 1,
        "labels": 1,
        "segment": 1,
        "stage1": len(EXTRACTOR_IDS),
        "stage2": len(EXTRACTOR_IDS),
        "baseline": len(EXTRACTOR_IDS),
        "evaluate": len(EXTRACTOR_IDS) * len(VARIANTS),
        "table1": 1,
        "figure2": 1,
    }
    outputs = [pipeline.fill(o.path, wc) for s in pipeline.STAGES for wc in s.instances() for o in s.outs.values()]
    assert len(outputs) == len(set(outputs)), "two jobs write the same path"


def test_code_files_follow_imports_transitively() -> None:
    files = pipeline.code_files(("jetatag.train.stage2",))
    assert "jetatag/train/stage2.py" in files
    assert "jetatag/train/stage1.py" in files  # stage2 loads stage-1 checkpoints
    assert "jetatag/models/tagger.py" in files  # through jetatag.train.stage1
    assert not {"jetatag/cli.py", "jetatag/io.py", "jetatag/errors.py"} & set(files)
    assert "jetatag/report/table1.py" not in files
    assert pipeline.code_files(("jetatag.no_such_module",)) == ("jetatag/no_such_module.py",)


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
    merged = pipeline.merged_params(files)
    jsonschema.validate(merged, _schema())
    assert params_to_dict(load_params(files)) == params_to_dict(config.params_from_dict(merged))


def test_schema_rejects_what_jetatag_rejects() -> None:
    bad = pipeline.merged_params([ROOT / "params.yaml"])
    bad["model"]["pair_loss"] = "triplet"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema())
    with pytest.raises(ParamsError):
        config.params_from_dict(bad)


def test_apply_profile_writes_values_and_keeps_comments(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    changed = pipeline.apply_profile(ROOT / "profiles/paper.yaml", params)
    assert "data.source" in changed and "train.stage1_schedule" in changed
    expected = load_params([ROOT / "params.yaml", ROOT / "profiles/paper.yaml"])
    assert load_params(params) == expected
    text = params.read_text(encoding="utf-8")
    assert "# top-N most frequent tags (MTAT top-50)" in text  # comments survive
    assert "- {optimizer: sgd, lr: 1.0e-05, epochs: 100}" in text  # one phase per line
    assert pipeline.apply_profile(ROOT / "profiles/paper.yaml", params) == []


def test_apply_profile_rejects_a_bad_profile(tmp_path: Path) -> None:
    params, profile = tmp_path / "params.yaml", tmp_path / "bad.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    profile.write_text("model:\n  width: -1\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="model.width"):
        pipeline.apply_profile(profile, params)
    assert params.read_text(encoding="utf-8") == (ROOT / "params.yaml").read_text(encoding="utf-8")


# --- real tools on the tiny profile ---------------------------------------------------------------


def _env(workspace: Path, **extra: str) -> dict[str, str]:
    """Environment of the tools: this venv's executables, the workspace's own jetatag, no analytics."""
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_OUTPUT_CACHE"}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(workspace),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "jetatag tests",
        "GIT_AUTHOR_EMAIL": "tests@jetatag.invalid",
        "GIT_COMMITTER_NAME": "jetatag tests",
        "GIT_COMMITTER_EMAIL": "tests@jetatag.invalid",
    }
    return env | extra


def _run(cmd: Sequence[str], workspace: Path, *, timeout: float = 900, **extra_env: str) -> str:
    """Run ``cmd`` in ``workspace``; its stdout + stderr, or a test failure showing them."""
    result = subprocess.run(
        list(cmd),
        cwd=workspace,
        env=_env(workspace, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {result.returncode}:\n{output[-6000:]}")
    return output


def _workspace(dest: Path) -> Path:
    """A fresh git repository holding this checkout's files (committed or not) with the tiny profile applied."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    pipeline.apply_profile(dest / "profiles/tiny.yaml", dest / "params.yaml")
    _run(["git", "init", "-q"], dest)
    _run(["git", "add", "-A"], dest)
    _run(["git", "commit", "-q", "-m", "tiny profile"], dest)
    return dest


def _ran(log: str) -> set[str]:
    """DVC stages that a repro/exp run log says it ran."""
    return set(re.findall(r"Running stage '([^']+)'", log))


def _dvc_commands(log: str) -> set[str]:
    return {line[2:].strip() for line in log.splitlines() if line.startswith("> ")}


def _snakemake_commands(log: str) -> set[str]:
    return {line.split(": ", 1)[1].strip() for line in log.splitlines() if line.startswith("Shell command: jetatag")}


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


def _dvc_stage_names() -> set[str]:
    """Names DVC gives the jobs: ``stage`` or ``stage@<wildcard values joined by ->``."""
    return {
        "@".join([s.name, "-".join(wc.values())]) if wc else s.name for s in pipeline.STAGES for wc in s.instances()
    }


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


@pytest.fixture(scope="session")
def dvc_run(tmp_path_factory: pytest.TempPathFactory) -> DvcRun:
    """Full `dvc repro` of the tiny profile, then every DVC check's output, in order."""
    ws = _workspace(tmp_path_factory.mktemp("dvc"))
    repro = _run(["dvc", "repro"], ws)
    _run(["git", "add", "-A"], ws)
    _run(["git", "commit", "-q", "-m", "tiny results"], ws)
    status = _run(["dvc", "status"], ws)
    repro_again = _run(["dvc", "repro"], ws)
    dry = _run(["dvc", "repro", "--dry", "--force"], ws)  # --force: print every stage's command
    snakemake_dry = _run(["snakemake", "-n", "-p", "--forceall"], ws)
    exp_run = _run(["dvc", "exp", "run", "-n", "seed1", "-S", "train.seed=1"], ws)
    exp_show = json.loads(_run(["dvc", "exp", "show", "--json"], ws).strip().splitlines()[-1])
    _run(["jetatag", "metrics-diff", "--base", "HEAD", "--out", "reports/metrics_diff.md"], ws)
    metrics_diff = (ws / "reports/metrics_diff.md").read_text(encoding="utf-8")
    _run(["jetatag", "metrics-diff", "--base", "no-such-revision", "--out", "reports/metrics_diff.md"], ws)
    no_base = (ws / "reports/metrics_diff.md").read_text(encoding="utf-8")
    return DvcRun(ws, repro, status, repro_again, dry, snakemake_dry, exp_run, exp_show, metrics_diff, no_base)


@pytest.mark.slow
def test_dvc_repro_builds_the_whole_dag(dvc_run: DvcRun) -> None:
    assert _ran(dvc_run.repro) == _dvc_stage_names()
    table = (dvc_run.path / "reports/table1.md").read_text(encoding="utf-8")
    assert "tiny" in table
    metrics = json.loads((dvc_run.path / "reports/metrics.json").read_text(encoding="utf-8"))
    assert "hcnn.je.paper.roc_auc" in metrics
    for png in ("reports/figure2.png", "reports/per_tag_auc.png"):
        assert (dvc_run.path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
def test_train_param_change_reruns_training_evaluation_and_reports_only(dvc_run: DvcRun) -> None:
    ran = {name.split("@")[0] for name in _ran(dvc_run.exp_run)}
    assert ran == {"stage1", "stage2", "baseline", "evaluate", "table1", "figure2"}
    assert _ran(dvc_run.exp_run) == _dvc_stage_names() - set(DATA_STAGES)


@pytest.mark.slow
def test_exp_run_records_the_experiment(dvc_run: DvcRun) -> None:
    experiments = [exp for row in dvc_run.exp_show for exp in (row.get("experiments") or [])]
    names = {exp.get("name") for exp in experiments}
    assert "seed1" in names
    (seed1,) = [e for e in experiments if e.get("name") == "seed1"]
    params = seed1["revs"][0]["data"]["params"]["params.yaml"]["data"]
    assert params["train"]["seed"] == 1


@pytest.mark.slow
def test_metrics_diff_reports_param_and_metric_changes(dvc_run: DvcRun) -> None:
    assert re.search(r"\| train\.seed\s*\|\s*0\s*\|\s*1\s*\|", dvc_run.metrics_diff)
    assert "reports/metrics.json" in dvc_run.metrics_diff
    assert "No revision `no-such-revision`" in dvc_run.metrics_diff_no_base
    assert "reports/metrics.json" in dvc_run.metrics_diff_no_base  # current metrics instead


@pytest.mark.slow
def test_snakemake_lint_is_clean() -> None:
    output = _run(["snakemake", "--lint"], ROOT)
    assert "Congratulations, your workflow is in a good condition!" in output


@dataclass(frozen=True)
class SnakemakeRun:
    """A full Snakemake run storing the data stages in the between-workflow cache, and a second workspace."""

    path: Path
    run: str
    again: str
    cached_path: Path
    cached_run: str


@pytest.fixture(scope="session")
def snakemake_run(tmp_path_factory: pytest.TempPathFactory) -> SnakemakeRun:
    cache = tmp_path_factory.mktemp("snakemake-cache")
    ws = _workspace(tmp_path_factory.mktemp("smk"))
    run = _run(["snakemake", "--cores", "2", "--cache"], ws, SNAKEMAKE_OUTPUT_CACHE=str(cache))
    again = _run(["snakemake", "-n"], ws)
    ws2 = _workspace(tmp_path_factory.mktemp("smk2"))
    cached = _run(["snakemake", "--cores", "2", "--cache", "segment"], ws2, SNAKEMAKE_OUTPUT_CACHE=str(cache))
    return SnakemakeRun(ws, run, again, ws2, cached)


@pytest.mark.slow
def test_snakemake_builds_the_whole_dag(snakemake_run: SnakemakeRun) -> None:
    for stage in pipeline.STAGES:
        for wildcards in stage.instances():
            for out in stage.outs.values():
                assert (snakemake_run.path / pipeline.fill(out.path, wildcards)).exists(), out.path
            assert (snakemake_run.path / pipeline.fill(stage.log, wildcards)).is_file()
    assert "Nothing to be done" in snakemake_run.again


@pytest.mark.slow
def test_snakemake_cache_restores_identical_data(snakemake_run: SnakemakeRun, dvc_run: DvcRun) -> None:
    ws = snakemake_run.cached_path
    for name in DATA_STAGES:
        stage = pipeline.stage(name)
        assert not (ws / stage.log).exists(), f"{name} ran instead of coming from the cache"
        for out in stage.outs.values():
            # restored from the cache, identical to what DVC's independent run produced
            assert _differing(ws / out.path, dvc_run.path / out.path) == [], out.path
    assert "from cache" in snakemake_run.cached_run
