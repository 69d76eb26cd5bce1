"""Where training runs: pick the device and the matching autocast, pinning and copy settings.

One code path serves CPU and CUDA: on CUDA the forward pass runs under bf16 autocast, batches are
pinned in host memory and copied without blocking; on CPU these are no-ops and arithmetic stays float32.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from jetatag.errors import StageError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``train.device`` ("auto", "cpu" or "cuda") as a torch device; "auto" picks CUDA when present."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise StageError("train.device is 'cuda' but torch sees no CUDA device; set train.device to auto or cpu")
    if name not in ("cpu", "cuda"):
        raise StageError(f"train.device: unknown device {name!r} (auto, cpu or cuda)")
    device = torch.device(name)
    if device.type == "cuda":
        # crops have one fixed length per extractor, so cuDNN's per-shape autotuning pays for itself at once;
        # benchmarks/results/gpu_check.json measured every CUDA rate with it on
        torch.backends.cudnn.benchmark = True
    log.info("training device: %s", torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA (no loss scaling needed for bf16); nothing on CPU, so CPU runs stay float32."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pin_memory(device: torch.device) -> bool:
    """Whether DataLoaders should pin batches: only when they are copied to a CUDA device."""
    return device.type == "cuda"


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a (pinned) batch to ``device`` without blocking the host."""
    return tensor.to(device, non_blocking=True)
