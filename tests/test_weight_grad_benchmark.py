"""benchmarks/weight_grad.py: every method it times gives oneDNN's weight gradient, banded only on tall maps."""

from __future__ import annotations

import pytest

from jetatag.models.conv3x3 import BANDED_FROM_ROWS


@pytest.mark.usefixtures("benchmarks_importable")
@pytest.mark.parametrize(
    ("shape", "methods"),
    [
        ((6, 8, BANDED_FROM_ROWS, 9, 3, 3), {"oneDNN", "taps", "oneDNN banded"}),
        ((40, 8, 1, 243, 1, 3), {"oneDNN", "taps"}),  # one-row maps: Sample-CNN's
    ],
)
def test_times_each_method_on_a_shape_and_checks_it_against_onednn(shape: tuple[int, ...], methods: set[str]) -> None:
    from weight_grad import time_shape

    rows = time_shape(shape, batch=2, rounds=1)
    assert {row["method"] for row in rows} == methods
    for row in rows:
        assert row["ms"] > 0 and row["error"] < 1e-5
    assert next(row for row in rows if row["method"] == "taps")["over_taps"] == 1.0
