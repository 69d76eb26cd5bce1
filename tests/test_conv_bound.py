"""benchmarks/conv_bound.py: the conv FLOPs it counts for a training step, against Harmonic-CNN's layer table."""

from __future__ import annotations

import pytest

from jetatag.models.hcnn import BLOCKS

BANDS, FRAMES = 128, 313
"""Harmonic-CNN's front end output for an 80,000-sample crop: 128 bands × 313 frames."""


@pytest.mark.usefixtures("benchmarks_importable")
def test_counts_every_conv_three_times_over_harmonic_cnns_maps() -> None:
    """Forward, weight and input gradient of each 3×3 conv (the first one's input too: its front end learns)."""
    from conv_bound import count_conv_flops

    batch, expected, channels, rows, cols = 2, 0, 6, BANDS, FRAMES
    for out_channels, residual, (pool_f, pool_t) in BLOCKS:
        convs = [(channels, channels)] * 2 if residual else [(channels, out_channels)]
        expected += sum(2 * batch * rows * cols * c_in * c_out * 9 for c_in, c_out in convs)
        channels, rows, cols = out_channels, rows // pool_f, cols // pool_t
    count = count_conv_flops("hcnn", batch=batch)
    assert count.flops == 3 * expected
    assert count.largest_flops == 2 * batch * (BANDS // 2) * (FRAMES // 2) * 128 * 128 * 9  # block 2's convs
