"""Atomic writes: outputs get the mode an ordinary ``open`` would give them under the process's umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from jetatag.io import write_json


def test_atomic_outputs_get_the_umask_mode(tmp_path: Path) -> None:
    write_json(tmp_path / "out.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o666 & ~mask
