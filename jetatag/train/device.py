"""Where training runs: pick the device and the matching autocast, pinning and copy settings.

One code path serves CPU and CUDA: on CUDA batches are pinned in host memory and copied without
blocking (no-ops on CPU). ``train.precision`` picks the forward passes' arithmetic: by default bf16
autocast on CUDA and float32 on CPU.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from jetatag.config import Precision
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


def uses_bf16(device: torch.device, precision: Precision) -> bool:
    """Whether ``precision`` trains on ``device`` under bf16 autocast ("auto": on CUDA only)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast where :func:`uses_bf16` says so (no loss scaling needed for bf16), else nothing."""
    if uses_bf16(device, precision):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_precision(device: torch.device, precision: Precision) -> None:
    """Log the arithmetic training will use; warn where bf16 on this CPU is emulated (slower than float32)."""
    bf16 = uses_bf16(device, precision)
    log.info("training arithmetic: %s (train.precision %s)", "bf16 autocast" if bf16 else "float32", precision)
    if bf16 and device.type == "cpu" and not cpu_has_native_bf16():
        log.warning("train.precision is bf16 but this CPU has no AVX512-BF16 or AMX: bf16 runs slower than float32")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles), as torch's CPU feature probe reports."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def pin_memory(device: torch.device) -> bool:
    """Whether DataLoaders should pin batches: only when they are copied to a CUDA device."""
    return device.type == "cuda"


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a (pinned) batch to ``device`` without blocking the host."""
    return tensor.to(device, non_blocking=True)
