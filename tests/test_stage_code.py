"""The code files each stage depends on (``pipeline.code_files``), against what Python itself imports.

A file of their own so that pytest-xdist runs these interpreter starts on another worker than the tool runs
of ``tests/test_pipeline.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jetatag import pipeline

ROOT = Path(__file__).resolve().parent.parent


def test_code_files_follow_imports_transitively() -> None:
    files = pipeline.code_files(("jetatag.train.stage2",))
    assert "jetatag/train/stage2.py" in files
    assert "jetatag/train/loop.py" in files  # imported by stage2
    assert "jetatag/data/shards.py" in files  # imported by jetatag.data.dataset, imported by loop
    assert not {"jetatag/cli.py", "jetatag/io.py", "jetatag/errors.py"} & set(files)
    assert "jetatag/report/table1.py" not in files
    assert pipeline.code_files(("jetatag.no_such_module",)) == ("jetatag/no_such_module.py",)


def test_code_files_include_package_data() -> None:
    files = pipeline.code_files(("jetatag.synth.stage",))
    assert {"jetatag/synth/data/styles.json", "jetatag/synth/data/fitted.schema.json"} <= set(files)
    assert not {f for f in files if f.startswith("jetatag/data/")}  # a subpackage named data is not package data
    assert "jetatag/synth/data/styles.json" not in pipeline.code_files(("jetatag.data.labels",))


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted({m for s in pipeline.STAGES for m in s.modules}))
def test_code_files_cover_what_python_imports(module: str) -> None:
    # independent check: the jetatag modules a fresh interpreter loads when importing the stage module
    # (package __init__ files loaded only as parents are not dependencies unless imported by name)
    probe = f"import sys, {module}; print(*(m.__file__ for n, m in sys.modules.items() if n.startswith('jetatag')))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    files = {Path(f).resolve().relative_to(ROOT).as_posix() for f in loaded.stdout.split()}
    untracked = {pipeline.module_path(m).as_posix() for m in pipeline.UNTRACKED_MODULES}
    expected = {f for f in files - untracked if not f.endswith("__init__.py")}
    assert expected <= set(pipeline.code_files((module,)))
