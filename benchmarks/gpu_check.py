"""The paper profile on one GPU: one prepared check that measures it in minutes and projects a full Table 1.

    python benchmarks/gpu_check.py --out benchmarks/results/     # on the GPU machine (≤ 8 min by default)
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu-check # same code paths on CPU, tiny sizes (≤ 3 min)
    python benchmarks/gpu_check.py --resume benchmarks/results/gpu_check.json --out /tmp/next  # fill the gaps

Writes ``gpu_check.json`` (atomically) and ``gpu_check.md`` into ``--out``. Sections, in order:

1. **environment**: torch / CUDA / cuDNN versions, GPU name and memory, whether bf16 and ``torch.compile``
   work (a tiny compiled function; the error is recorded, not raised).
2. **data**: a synthetic MTAT-layout mirror of ``--clips`` clips of 29.1 s built with all cores
   (``jetatag synth``, then ``download`` with ``data.source: synthetic``), then ``labels`` and ``segment``.
3. **extractors**: per extractor at the paper's width and crops (``profiles/paper.yaml``), in a fresh
   process each: steps/s of a stage-1 step (extractor + projection + tag AE, ``L_AE + L_pair``) and of a
   no-JE baseline step (extractor + classifier, BCE), batch 16, Adam with the run's parameter groups, for
   the variants fp32, bf16 autocast (what jetatag trains with on CUDA), bf16 + channels-last weights
   (2-D Harmonic-CNN only; the 1-D models already run channels-last internally), bf16 + ``torch.compile``
   of the extractor, and bf16 + compile with CUDA graphs (``mode="reduce-overhead"``). Each rate is
   measured twice: queued freely (one sync at the end) and with one host sync per step, as
   ``jetatag.train.loop.fit`` does (its NaN guard reads the loss terms every step). Also: the peak GPU
   memory (``torch.cuda.max_memory_allocated``), the inference rate (crops/s, eval mode, batch 16 crops,
   as the JE embedding cache and evaluation run), and the loader rate: crops/s of
   ``jetatag.data.dataset.TrainCrops`` through a DataLoader with W workers against the steps/s × 16 a
   step needs. A variant is *sound* when every loss it produced is finite and its first loss, on the same
   batch from the same initial weights, is within ``0.02 + 5 %`` of fp32's (dropout masks of compiled
   variants differ from eager ones, which the tolerance absorbs). The fastest sound variant is picked.
   CUDA-only variants are recorded as skipped on CPU.
4. **concurrency**: total stage-1 steps/s of 1-4 separate training processes on the one GPU (bf16, a
   host sync per step, the extractor with the largest projected cost), hence the Snakemake ``gpu``
   resource to run with (``snakemake --resources gpu=N``; the profiles are not edited).
5. **projection** of the full Table 1 wall time on this GPU (below).
6. **dag slice**: a real ``dvc repro evaluate@hcnn-je evaluate@hcnn-noje`` of the paper profile in a
   temporary copy of the repository, on a small synthetic mirror, every schedule phase cut to 1 epoch;
   the wall time of each stage and the evaluation metrics.

Projection method (section 5). Per extractor, with r = steps/s (limited by the loader: min(r, loader
crops/s / 16)), f = inference crops/s, 952 = ⌊15,247 / 16⌋ steps per epoch (the last partial batch is
dropped) and 1,529 × ``train.valid_crops`` (4) validation crops forwarded after every epoch:

* stage 1 = 100 × (952 / r_stage1 + 1,529 · 4 / f)
* no-JE baseline = 200 × (952 / r_baseline + 1,529 · 4 / f)
* JE stage 2 = (15,247 · 16 + 1,529 · 4) / f: the embedding cache (``train.je_cache_crops`` = 16 crops per
  train clip, one forward pass) plus the cached validation crops; its 200 classifier-only epochs on
  cached h take seconds and are left out
* evaluation = 2 models × 4,332 test clips × 16 crops / f

The sum over the six extractors is the serial GPU time; divided by the concurrency gain (total
throughput of the recommended number of concurrent jobs over one job) it is the projected wall time
of the 18 trainings + 12 evaluations, which is set against the goal of 4 GPU-hours. It is given twice:
"today" (bf16 eager, as ``jetatag`` trains now) and "best" (the fastest sound variant per extractor).
Not included: downloading and segmenting real MTAT (CPU), the probe and report stages, the bootstrap
(CPU), process start-up and compilation time per job.

Budget: ``--budget-s`` (default 480) bounds the wall time of the whole check. Each section ends by a
cumulative share of it (:data:`WEIGHTS`: data 15 %, eager variants of every extractor 23 %, compiled
variants 24 %, concurrency 13 %, DAG slice 25 %), so a section gets what an earlier one left; what does
not fit is skipped and recorded as skipped (``{"skipped": "budget"}``), never overrun. Compilation is the
slow part (tens of seconds per extractor and mode): with the default budget some compiled variants may be
skipped. A second window fills them in: ``--resume benchmarks/results/gpu_check.json`` keeps every
section and variant that report completed and splits the budget over the rest (rows carried over are
marked "earlier run").
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

from jetatag import pipeline
from jetatag.config import ModelParams, Params, load_params, params_from_dict
from jetatag.extractors import EXTRACTOR_IDS, extractor_spec
from jetatag.io import atomic_open, write_json

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "profiles/paper.yaml"
N_TAGS = 50
SAMPLE_RATE = 16000
MTAT = {"train": 15247, "valid": 1529, "test": 4332}  # clips per split on real MTAT
EPOCHS = {"stage1": 100, "stage2": 200}
GOAL_H = 4.0  # full Table 1 on one GPU, hours (issue 14)
LOSS_TOLERANCE = (0.02, 0.05)  # |loss − fp32 loss| ≤ abs + rel · |fp32 loss| on the same batch and weights
WEIGHTS = {"data": 0.15, "eager": 0.23, "compiled": 0.24, "concurrency": 0.13, "dag_slice": 0.25}
"""Share of the budget per section, in run order; the sections that run split the whole budget in these ratios."""
"""Cumulative share of the budget by the end of each section: a later section gets what an earlier one left."""
DAG_TARGETS = ("evaluate@hcnn-je", "evaluate@hcnn-noje")

_T0 = time.monotonic()


# --- settings ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one check: the GPU defaults, or tiny CPU ones for ``--dry-run``."""

    device: str  # "cuda" or "cpu"
    model: ModelParams  # extractor sizes and crops (paper's, at width 1.0 or 0.125)
    batch: int  # training batch (the paper's 16)
    steps: int  # timed steps per rate
    warmup: int  # untimed steps before timing (after the first, compiling call)
    clips: int  # synthetic mirror for the throughput sections
    clip_seconds: float
    dag_clips: int  # synthetic mirror of the DAG slice
    dag_clip_seconds: float
    loader_workers: tuple[int, ...]  # DataLoader worker counts to measure
    loader_batches: int  # batches timed per loader measurement
    concurrency: tuple[int, ...]  # concurrent job counts to measure
    concurrency_s: float  # seconds each concurrent round runs
    cores: int

    @staticmethod
    def make(dry_run: bool, device: str) -> Settings:
        paper = load_params([ROOT / "params.yaml", PAPER])
        cores = os.cpu_count() or 1
        if dry_run:
            return Settings(
                device="cpu",
                model=dataclasses.replace(paper.model, width=0.125, sinc_taps=251),
                batch=2,
                steps=1,
                warmup=0,
                clips=32,
                clip_seconds=6.0,
                dag_clips=32,
                dag_clip_seconds=6.0,
                loader_workers=(1,),
                loader_batches=8,
                concurrency=(1, 2),
                concurrency_s=1.0,
                cores=cores,
            )
        return Settings(
            device=device,
            model=paper.model,
            batch=paper.train.batch_size,
            steps=10,
            warmup=3,
            clips=256,
            clip_seconds=29.1,
            dag_clips=64,
            dag_clip_seconds=29.1,
            loader_workers=tuple(sorted({paper.train.workers, cores})),
            loader_batches=200,
            concurrency=(1, 2, 3, 4),
            concurrency_s=6.0,
            cores=cores,
        )


class Budget:
    """Wall-clock budget of the check; each section that runs ends by its cumulative share (:data:`WEIGHTS`)."""

    def __init__(self, seconds: float, sections: Iterable[str] = WEIGHTS) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        running = [name for name in WEIGHTS if name in set(sections)]
        total = sum(WEIGHTS[name] for name in running)
        self.ends = dict(zip(running, itertools.accumulate(WEIGHTS[name] / total for name in running), strict=True))

    def left(self) -> float:
        """Seconds left of the whole budget."""
        return self.seconds - (time.monotonic() - self.start)

    def deadline(self, section: str) -> float:
        """``time.monotonic()`` by which ``section`` must end."""
        return self.start + self.seconds * self.ends[section]


def say(message: str) -> None:
    """A progress line with a wall-clock timestamp and the seconds since start."""
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp} +{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


def skipped(reason: str) -> dict[str, Any]:
    """The record of a section or measurement that did not run."""
    return {"skipped": reason}


def guarded(section: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``, or ``{"error": ...}`` when it raises: one failing section must not cost the others their run."""
    try:
        return run()
    except Exception as err:  # recorded in the report and printed; the check goes on
        say(f"{section}: failed: {type(err).__name__}: {err}")
        return {"error": f"{type(err).__name__}: {err}"[:2000]}


# --- 1. environment --------------------------------------------------------------------------------


def check_environment(device: str) -> dict[str, Any]:
    """Versions, the GPU, and whether bf16 and ``torch.compile`` work here (errors recorded, not raised)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": device,
        "cpu_cores": os.cpu_count(),
        "gpu": None,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = {
            "name": props.name,
            "memory_gib": props.total_memory / 2**30,
            "capability": f"{props.major}.{props.minor}",
            "count": torch.cuda.device_count(),
        }
        env["bf16_supported"] = torch.cuda.is_bf16_supported()
    else:
        env["bf16_supported"] = None  # CPU training stays float32 (jetatag.train.device)
    dev = torch.device(device)
    tic = time.perf_counter()
    try:
        double_sin = torch.compile(lambda x: torch.sin(x) * 2 + 1)
        x = torch.linspace(-1, 1, 64, device=dev)
        ok = torch.allclose(double_sin(x), torch.sin(x) * 2 + 1, atol=1e-5)
        env["compile"] = {"ok": bool(ok), "seconds": time.perf_counter() - tic}
    except Exception as err:  # any backend failure (no compiler, triton missing) is a finding, not a crash
        env["compile"] = {"ok": False, "error": f"{type(err).__name__}: {err}"[:2000]}
    return env


# --- 2. data ---------------------------------------------------------------------------------------


def data_params(*, clips: int, seconds: float, workers: int, extra: dict[str, Any] | None = None) -> Params:
    """Paper params with a synthetic source of ``clips`` clips of ``seconds``, built with ``workers`` processes."""
    raw = yaml.safe_load(PAPER.read_text(encoding="utf-8"))
    base = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    from jetatag.config import deep_merge

    merged = deep_merge(
        deep_merge(base, raw),
        {
            "data": {"source": "synthetic"},
            "synth": {"n_clips": clips, "clip_seconds": seconds, "workers": workers},
            "audio": {"workers": workers},
            **(extra or {}),
        },
    )
    return params_from_dict(merged)


def build_data(settings: Settings, work: Path) -> dict[str, Any]:
    """``synth`` → ``download`` → ``labels`` → ``segment`` in ``work/data``; seconds per step."""
    from jetatag.data.download import run_download
    from jetatag.data.labels import run_labels
    from jetatag.data.segment import run_segment
    from jetatag.synth.stage import run_synth

    params = data_params(clips=settings.clips, seconds=settings.clip_seconds, workers=settings.cores)
    data = work / "data"
    times: dict[str, float] = {}
    steps: tuple[tuple[str, Callable[[], None]], ...] = (
        ("synth", lambda: run_synth(params, out_dir=data / "synth")),
        ("download", lambda: run_download(params, out_dir=data / "raw", synth_dir=data / "synth")),
        ("labels", lambda: run_labels(params, raw_dir=data / "raw", out_dir=data / "labels")),
        (
            "segment",
            lambda: run_segment(params, labels_dir=data / "labels", raw_dir=data / "raw", out_dir=data / "audio"),
        ),
    )
    for name, run in steps:
        tic = time.perf_counter()
        run()
        times[name] = time.perf_counter() - tic
        say(f"data: {name} {times[name]:.1f} s")
    from jetatag.data.dataset import AudioIndex

    index = AudioIndex(data / "audio")
    return {
        "clips": settings.clips,
        "clip_seconds": settings.clip_seconds,
        "workers": settings.cores,
        "seconds": times,
        "clips_per_s": settings.clips / times["synth"],
        "splits": {split: len(index.frame(split)) for split in ("train", "valid", "test")},
        "audio_dir": str(data / "audio"),
    }


# --- 3. extractors (worker side) ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of running a training step."""

    name: str
    amp: bool = False  # bf16 autocast
    channels_last: bool = False  # weights in channels-last memory format
    compile_mode: str | None = None  # torch.compile mode of the extractor
    cuda_only: bool = True
    two_d_only: bool = False  # only for the 2-D extractors (ExtractorSpec.two_d: Harmonic-CNN)


VARIANTS = (
    Variant("fp32", cuda_only=False),
    Variant("bf16", amp=True),
    Variant("bf16+channels_last", amp=True, channels_last=True, two_d_only=True),
    Variant("bf16+compile", amp=True, compile_mode="default"),
    Variant("bf16+compile+cudagraphs", amp=True, compile_mode="reduce-overhead"),
)
PASSES = {
    "eager": ("fp32", "bf16", "bf16+channels_last"),
    "compiled": ("bf16+compile", "bf16+compile+cudagraphs"),
}
"""Variants by budget section: the eager ones of every extractor come first, compilation gets what is left."""
TODAY = {"cuda": "bf16", "cpu": "fp32"}
"""The variant ``jetatag`` trains with on each device (jetatag.train.device.autocast)."""


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[object]:
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step: Callable[[], torch.Tensor], n: int, device: torch.device, *, sync_each: bool) -> tuple[float, list]:
    """Steps/s over ``n`` calls of ``step`` (syncing the host after each when ``sync_each``); the losses."""
    losses = []
    _sync(device)
    tic = time.perf_counter()
    for _ in range(n):
        loss = step()
        losses.append(loss.item() if sync_each else loss)  # .item() is the per-step host sync fit() has
    _sync(device)
    elapsed = time.perf_counter() - tic
    return n / elapsed, [float(v) for v in losses]


def measure_variant(extractor: str, variant: Variant, job: dict[str, Any]) -> dict[str, Any]:
    """Stage-1 and baseline steps/s of ``variant`` (fresh seeded weights), first losses, peak memory, inference."""
    from jetatag.config import Phase
    from jetatag.models import h_dim
    from jetatag.models.heads import Classifier
    from jetatag.models.losses import classification_loss
    from jetatag.models.tagger import Tagger, build_joint_embedding
    from jetatag.train.schedule import l2_convs_of, make_optimizer, param_groups
    from jetatag.train.stage1 import joint_losses

    dev = torch.device(job["device"])
    model = ModelParams(**job["model"])
    batch, seed = job["batch"], job["seed"]
    torch._dynamo.reset()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    generator = torch.Generator().manual_seed(seed)
    wave = (torch.rand(batch, model.crop_samples(extractor), generator=generator) * 2 - 1).to(dev)  # (B, L)
    tags = (torch.rand(batch, N_TAGS, generator=generator) < 0.1).float().to(dev)  # (B, n_tags)

    torch.manual_seed(seed)
    joint = build_joint_embedding(extractor, model, n_tags=N_TAGS, sample_rate=SAMPLE_RATE).to(dev).train()
    classifier = Classifier(h_dim(joint.extractor), N_TAGS)
    tagger = Tagger.from_joint(joint, classifier).to(dev).train()  # shares the extractor
    if variant.channels_last:
        tagger.to(memory_format=torch.channels_last)
    tic = time.perf_counter()
    if variant.compile_mode:
        joint.extractor.compile(mode=variant.compile_mode)  # in place: stage 1 and baseline share the compiled code
    phase = Phase(optimizer="adam", lr=1e-4, epochs=1)
    l2_convs = l2_convs_of(extractor, joint.extractor)  # as training decays
    stage1_opt = make_optimizer(phase, param_groups(joint, conv_l2=1e-4, l2_convs=l2_convs))
    baseline_opt = make_optimizer(phase, param_groups(tagger, conv_l2=1e-4, l2_convs=l2_convs))

    def begin() -> None:
        if variant.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # a new training step: earlier graph outputs may be reused

    def stage1(update: bool = True) -> torch.Tensor:
        begin()
        stage1_opt.zero_grad(set_to_none=True)
        with _autocast(dev, variant.amp):
            loss = joint_losses(joint(wave, tags), tags, model)["loss"]
        loss.backward()
        if update:
            stage1_opt.step()
        return loss.detach()

    def baseline(update: bool = True) -> torch.Tensor:
        begin()
        baseline_opt.zero_grad(set_to_none=True)
        with _autocast(dev, variant.amp):
            loss = classification_loss(tagger(wave).float(), tags)
        loss.backward()
        if update:
            baseline_opt.step()
        return loss.detach()

    # first losses from the initial weights, same batch and dropout seed as fp32 (this also compiles)
    torch.manual_seed(seed)
    first = {"stage1": float(stage1(update=False))}
    torch.manual_seed(seed)
    first["baseline"] = float(baseline(update=False))
    _sync(dev)
    row: dict[str, Any] = {"variant": variant.name, "first_loss": first, "first_call_s": time.perf_counter() - tic}
    losses: list[float] = list(first.values())
    for name, step in (("stage1", stage1), ("baseline", baseline)):
        for _ in range(job["warmup"]):
            step()
        row[f"{name}_steps_per_s"], free = _rate(step, job["steps"], dev, sync_each=False)
        row[f"{name}_synced_steps_per_s"], synced = _rate(step, job["steps"], dev, sync_each=True)
        losses += free + synced
    row["losses_finite"] = all(math.isfinite(v) for v in losses)
    row["peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    if variant.name == TODAY[dev.type]:
        row["inference_crops_per_s"] = _inference_rate(tagger, wave, dev, variant, job)
    return row


@torch.inference_mode()
def _inference_rate(
    tagger: torch.nn.Module, wave: torch.Tensor, dev: torch.device, variant: Variant, job: dict
) -> float:
    """Crops/s of the extractor in eval mode, batches of 16 crops, as the embedding cache and evaluation run it."""
    extractor = tagger.extractor.eval()
    crops = wave.repeat(max(1, 16 // len(wave)), 1)  # (16, L): the cache's batch of train.batch_size crops

    def forward() -> torch.Tensor:
        with _autocast(dev, variant.amp):
            return extractor(crops).float().sum()

    for _ in range(job["warmup"] + 1):
        forward()
    rate, _ = _rate(forward, job["steps"], dev, sync_each=False)
    return rate * len(crops)


def extractor_worker(job: dict[str, Any]) -> None:
    """Worker process: one JSON line per variant of ``job["extractor"]``, in order, until the deadline."""
    from jetatag.runtime import keep_freed_memory

    keep_freed_memory()  # as the `jetatag` training commands do
    torch.set_num_threads(job["threads"])
    if job["device"] == "cuda":
        torch.backends.cudnn.benchmark = True
    extractor = job["extractor"]
    for variant in VARIANTS:
        if variant.name not in job["variants"]:
            continue
        if time.time() > job["deadline"]:
            print(json.dumps({"variant": variant.name, "skipped": "budget"}), flush=True)
            continue
        try:
            row = measure_variant(extractor, variant, job)
        except Exception as err:  # a failing variant (compile error, OOM) is recorded, the next one still runs
            row = {"variant": variant.name, "error": f"{type(err).__name__}: {err}"[:2000]}
            if job["device"] == "cuda":
                torch.cuda.empty_cache()
        print(json.dumps(row), flush=True)


# --- 3. extractors (parent side) ---------------------------------------------------------------------


def _worker_command(flag: str, job: dict[str, Any]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), flag, json.dumps(job)]


def _stream(command: list[str], deadline: float) -> Iterator[str]:
    """Lines a subprocess prints, until it exits or ``deadline`` (monotonic) passes: then it is killed."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    try:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not sel.select(timeout=min(left, 5.0)):
                    continue
                line = proc.stdout.readline()
                if not line:
                    break
                yield line
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def variant_names(extractor: str, device: str) -> list[str]:
    """Variants that apply to ``extractor`` on ``device``; the others are recorded with the reason."""
    return [
        v.name
        for v in VARIANTS
        if not (v.cuda_only and device != "cuda") and not (v.two_d_only and not extractor_spec(extractor).two_d)
    ]


def _not_run(variant: Variant, extractor: str, device: str) -> str | None:
    if variant.cuda_only and device != "cuda":
        return "needs CUDA"
    if variant.two_d_only and not extractor_spec(extractor).two_d:
        return "1-D model: already runs channels-last internally (jetatag.models.common)"
    return None


def is_sound(row: dict[str, Any], fp32: dict[str, Any] | None) -> bool:
    """Finite losses, and first losses within :data:`LOSS_TOLERANCE` of fp32's on the same batch and weights."""
    if "stage1_steps_per_s" not in row or not row.get("losses_finite"):
        return False
    if fp32 is None or "first_loss" not in fp32:
        return row["variant"] == "fp32"
    tol_abs, tol_rel = LOSS_TOLERANCE
    return all(
        abs(row["first_loss"][k] - fp32["first_loss"][k]) <= tol_abs + tol_rel * abs(fp32["first_loss"][k])
        for k in ("stage1", "baseline")
    )


def _run_pass(settings: Settings, extractor: str, names: list[str], *, share: float, end: float) -> dict[str, Any]:
    """Variants ``names`` of ``extractor`` in one worker process; it skips variants after ``share`` seconds."""
    job = {
        "extractor": extractor,
        "model": dataclasses.asdict(settings.model),
        "device": settings.device,
        "batch": settings.batch,
        "steps": settings.steps,
        "warmup": settings.warmup,
        "seed": 0,
        "threads": settings.cores,
        "variants": names,
        "deadline": time.time() + share,
    }
    rows: dict[str, Any] = {}
    for line in _stream(_worker_command("--extractor-worker", job), deadline=end):
        with contextlib.suppress(json.JSONDecodeError):
            row = json.loads(line)
            rows[row["variant"]] = row
            say(f"extractors: {extractor} {_row_text(row)}")
    return rows


def measured_rows(earlier: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The variant rows an earlier report measured (not skipped, not failed), by extractor and variant."""
    rows: dict[str, dict[str, Any]] = {x: {} for x in EXTRACTOR_IDS}
    for extractor, result in ((earlier or {}).get("extractors") or {}).items():
        for row in result.get("variants", []) if isinstance(result, dict) else []:
            if "stage1_steps_per_s" in row:
                rows[extractor][row["variant"]] = {"from_earlier_run": True} | row
    return rows


def measure_extractors(settings: Settings, budget: Budget, earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every extractor, pass by pass (:data:`PASSES`), one worker process per extractor and pass.

    Each pass ends by its share of the budget; within a pass each extractor gets an even share of what is
    left, so the cheap eager variants of every extractor are measured before any compilation starts.
    Variants that ``earlier`` (a previous report, ``--resume``) measured are kept, not measured again.
    """
    rows = measured_rows(earlier)
    for section, variants in PASSES.items():
        if section not in budget.ends:
            continue
        end = budget.deadline(section)
        todo = [
            (x, [v for v in variant_names(x, settings.device) if v in variants and v not in rows[x]])
            for x in EXTRACTOR_IDS
        ]
        todo = [(x, names) for x, names in todo if names]
        for i, (extractor, names) in enumerate(todo):
            left = end - time.monotonic()
            if left < 5:
                say(f"extractors: {extractor} {', '.join(names)} skipped (budget)")
                continue
            rows[extractor] |= _run_pass(settings, extractor, names, share=left / (len(todo) - i), end=end)
    results: dict[str, Any] = {}
    for extractor, found in rows.items():
        for variant in VARIANTS:
            reason = _not_run(variant, extractor, settings.device)
            found.setdefault(variant.name, {"variant": variant.name, "skipped": reason or "budget"})
        fp32 = found.get("fp32")
        for row in found.values():
            if "skipped" not in row and "error" not in row:
                row["sound"] = is_sound(row, fp32)
        results[extractor] = {
            "crop_samples": settings.model.crop_samples(extractor),
            "variants": [found[v.name] for v in VARIANTS],
            "today": TODAY[settings.device],
            "best": pick_best(found),
            "inference_crops_per_s": found[TODAY[settings.device]].get("inference_crops_per_s"),
        }
        say(f"extractors: {extractor} best variant {results[extractor]['best']}")
    return results


def _row_text(row: dict[str, Any]) -> str:
    if "skipped" in row or "error" in row:
        return f"{row['variant']}: {row.get('skipped') or row.get('error')}"
    return (
        f"{row['variant']}: stage 1 {row['stage1_steps_per_s']:.2f} steps/s "
        f"(synced {row['stage1_synced_steps_per_s']:.2f}), baseline {row['baseline_steps_per_s']:.2f} "
        f"(synced {row['baseline_synced_steps_per_s']:.2f}), first call {row['first_call_s']:.1f} s, "
        f"losses {row['first_loss']['stage1']:.4f}/{row['first_loss']['baseline']:.4f}"
    )


def pick_best(rows: dict[str, dict[str, Any]]) -> str | None:
    """The sound variant with the highest synced stage-1 + baseline throughput (harmonic: time per step pair)."""
    sound = [r for r in rows.values() if r.get("sound")]
    if not sound:
        return None
    return min(sound, key=lambda r: 1 / r["stage1_synced_steps_per_s"] + 1 / r["baseline_synced_steps_per_s"])[
        "variant"
    ]


# --- 3b. loader throughput ---------------------------------------------------------------------------


class _Repeated(torch.utils.data.Dataset):
    """``times`` passes over a dataset as one (so a few hundred clips feed a long enough measurement)."""

    def __init__(self, base: torch.utils.data.Dataset, times: int) -> None:
        self.base, self.times = base, times

    def __len__(self) -> int:
        return len(self.base) * self.times

    def __getitem__(self, index: int) -> Any:
        return self.base[index % len(self.base)]


def loader_rate(audio_dir: Path, *, crop: int, workers: int, batch: int, batches: int, pin: bool) -> dict[str, float]:
    """Crops/s of ``TrainCrops`` through a shuffled DataLoader (after its first batch) and its start-up seconds."""
    from jetatag.data.dataset import TrainCrops

    crops = TrainCrops(audio_dir, split="train", crop_samples=crop, seed=0)
    data = _Repeated(crops, math.ceil(batches * batch / len(crops)))
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=pin,
        generator=torch.Generator().manual_seed(0),
    )
    tic = time.perf_counter()
    n = 0
    for i, (wave, _) in enumerate(loader):
        if i == 0:
            start, startup = time.perf_counter(), time.perf_counter() - tic
        else:
            n += len(wave)
        if i == batches:
            break
    return {"workers": workers, "crops_per_s": n / (time.perf_counter() - start), "startup_s": startup}


def measure_loaders(settings: Settings, audio_dir: Path, budget: Budget) -> dict[str, Any]:
    """Loader crops/s per distinct crop length and worker count."""
    out: dict[str, Any] = {}
    for crop in sorted({settings.model.crop_samples(x) for x in EXTRACTOR_IDS}):
        rows = []
        for workers in settings.loader_workers:
            if budget.deadline("data") - time.monotonic() < 5:
                rows.append({"workers": workers, **skipped("budget")})
                continue
            row = loader_rate(
                audio_dir,
                crop=crop,
                workers=workers,
                batch=settings.batch,
                batches=settings.loader_batches,
                pin=settings.device == "cuda",
            )
            say(f"loader: crop {crop}, {workers} workers: {row['crops_per_s']:.0f} crops/s")
            rows.append(row)
        out[str(crop)] = rows
    return out


def _loader_crops_per_s(loaders: dict[str, Any], crop: int) -> float | None:
    """The best measured loader rate for ``crop`` (what a job with that many workers gets)."""
    rates = [r["crops_per_s"] for r in loaders.get(str(crop), []) if "crops_per_s" in r]
    return max(rates) if rates else None


# --- 4. concurrency ----------------------------------------------------------------------------------


def concurrent_worker(job: dict[str, Any]) -> None:
    """Worker: stage-1 steps (today's variant, host sync per step) for ``job["seconds"]`` after "go" on stdin."""
    from jetatag.config import Phase
    from jetatag.models.tagger import build_joint_embedding
    from jetatag.runtime import keep_freed_memory
    from jetatag.train.schedule import l2_convs_of, make_optimizer, param_groups
    from jetatag.train.stage1 import joint_losses

    keep_freed_memory()
    torch.set_num_threads(job["threads"])
    dev = torch.device(job["device"])
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = ModelParams(**job["model"])
    generator = torch.Generator().manual_seed(0)
    wave = (torch.rand(job["batch"], model.crop_samples(job["extractor"]), generator=generator) * 2 - 1).to(dev)
    tags = (torch.rand(job["batch"], N_TAGS, generator=generator) < 0.1).float().to(dev)
    joint = build_joint_embedding(job["extractor"], model, n_tags=N_TAGS, sample_rate=SAMPLE_RATE).to(dev).train()
    l2_convs = l2_convs_of(job["extractor"], joint.extractor)
    optimizer = make_optimizer(
        Phase(optimizer="adam", lr=1e-4, epochs=1), param_groups(joint, conv_l2=1e-4, l2_convs=l2_convs)
    )

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(dev, dev.type == "cuda"):
            loss = joint_losses(joint(wave, tags), tags, model)["loss"]
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(job["warmup"] + 1):
        step()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    n, tic = 0, time.perf_counter()
    while time.perf_counter() - tic < job["seconds"]:
        step()
        n += 1
    elapsed = time.perf_counter() - tic
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    print(json.dumps({"steps": n, "seconds": elapsed, "peak_mib": peak}), flush=True)


def run_concurrent(job: dict[str, Any], k: int, timeout: float) -> dict[str, Any]:
    """``k`` workers started together, released together; their summed steps/s."""
    procs = [
        subprocess.Popen(
            _worker_command("--concurrent-worker", job),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            start_new_session=True,
        )
        for _ in range(k)
    ]
    try:
        for proc in procs:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a concurrent worker failed to start")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        rows = [json.loads(proc.communicate(timeout=timeout)[0]) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return {
        "jobs": k,
        "total_steps_per_s": sum(r["steps"] / r["seconds"] for r in rows),
        "per_job_steps_per_s": [r["steps"] / r["seconds"] for r in rows],
        "peak_mib": [r["peak_mib"] for r in rows],
    }


def measure_concurrency(settings: Settings, extractor: str, budget: Budget, gpu_gib: float | None) -> dict[str, Any]:
    """Total throughput of 1..4 concurrent jobs and the ``gpu`` resource it recommends (≥ 10 % gain per job added)."""
    job = {
        "extractor": extractor,
        "model": dataclasses.asdict(settings.model),
        "device": settings.device,
        "batch": settings.batch,
        "warmup": settings.warmup,
        "seconds": settings.concurrency_s,
        "threads": max(1, settings.cores // max(settings.concurrency)),
    }
    rounds = []
    for k in settings.concurrency:
        left = budget.deadline("concurrency") - time.monotonic()
        if left < settings.concurrency_s + 10:
            rounds.append({"jobs": k, **skipped("budget")})
            continue
        try:
            row = run_concurrent(job, k, timeout=left)
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as err:
            row = {"jobs": k, "error": f"{type(err).__name__}: {err}"}
        say(f"concurrency: {k} jobs: {row.get('total_steps_per_s', row.get('skipped') or row.get('error'))}")
        rounds.append(row)
    measured = [r for r in rounds if "total_steps_per_s" in r]
    recommended, gain = 1, 1.0
    if measured and measured[0]["jobs"] == 1:
        single = measured[0]["total_steps_per_s"]
        for row in measured[1:]:
            fits = gpu_gib is None or all(p is None or p * row["jobs"] < 0.9 * gpu_gib * 1024 for p in row["peak_mib"])
            if fits and row["total_steps_per_s"] >= single * gain * (1 + 0.1 * (row["jobs"] - recommended)):
                recommended, gain = row["jobs"], row["total_steps_per_s"] / single
    return {
        "extractor": extractor,
        "variant": TODAY[settings.device],
        "rounds": rounds,
        "recommended_gpu_resource": recommended,
        "throughput_gain": gain,
        "note": f"snakemake --resources gpu={recommended} (workflow/profiles/*/config.yaml set gpu: 1; not edited)",
    }


# --- 5. projection -----------------------------------------------------------------------------------


def project(
    extractors: dict[str, Any],
    loaders: dict[str, Any],
    *,
    batch: int,
    valid_crops: int,
    je_cache_crops: int,
    eval_crops: int,
    gain: float,
) -> dict[str, Any]:
    """Full-Table-1 GPU hours per extractor and in all, today and with the best variant (method: module docstring)."""
    steps_per_epoch = MTAT["train"] // batch
    valid_fwd = MTAT["valid"] * valid_crops
    plans: dict[str, Any] = {}
    for which in ("today", "best"):
        per: dict[str, Any] = {}
        for extractor, result in extractors.items():
            rows = {r["variant"]: r for r in result.get("variants", [])}
            row = rows.get(result.get(which) or "")
            infer = result.get("inference_crops_per_s")
            if not row or "stage1_synced_steps_per_s" not in row or not infer:
                per[extractor] = skipped("not measured")
                continue
            loader = _loader_crops_per_s(loaders, result["crop_samples"])
            cap = loader / batch if loader else math.inf
            s1, base = min(row["stage1_synced_steps_per_s"], cap), min(row["baseline_synced_steps_per_s"], cap)
            seconds = {
                "stage1": EPOCHS["stage1"] * (steps_per_epoch / s1 + valid_fwd / infer),
                "baseline": EPOCHS["stage2"] * (steps_per_epoch / base + valid_fwd / infer),
                "je_stage2": (MTAT["train"] * je_cache_crops + valid_fwd) / infer,
                "evaluate": 2 * MTAT["test"] * eval_crops / infer,
            }
            per[extractor] = {
                "variant": row["variant"],
                "loader_bound": cap < min(row["stage1_synced_steps_per_s"], row["baseline_synced_steps_per_s"]),
                "hours": {k: v / 3600 for k, v in seconds.items()},
                "total_h": sum(seconds.values()) / 3600,
            }
        measured = [p["total_h"] for p in per.values() if "total_h" in p]
        serial = sum(measured)
        complete = len(measured) == len(EXTRACTOR_IDS)
        plans[which] = {
            "per_extractor": per,
            "serial_gpu_h": serial,
            "complete": complete,
            "wall_h": serial / gain,
            "meets_goal": (serial / gain <= GOAL_H) if complete else None,
        }
    return {
        "goal_h": GOAL_H,
        "concurrency_gain": gain,
        "inputs": {
            "train_clips": MTAT["train"],
            "valid_clips": MTAT["valid"],
            "test_clips": MTAT["test"],
            "batch": batch,
            "steps_per_epoch": steps_per_epoch,
            "stage1_epochs": EPOCHS["stage1"],
            "stage2_epochs": EPOCHS["stage2"],
            "valid_crops": valid_crops,
            "je_cache_crops": je_cache_crops,
            "eval_crops": eval_crops,
        },
        **plans,
    }


# --- 6. DAG slice ------------------------------------------------------------------------------------


def copy_checkout(dest: Path) -> None:
    """This checkout's files (tracked and untracked, not ignored; no dvc.lock) into a fresh git repository."""
    pipeline.copy_checkout(dest, exclude=("benchmarks/results/",))
    env = _tool_env(dest)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "gpu check slice"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)


def _tool_env(workspace: Path) -> dict[str, str]:
    """Environment of dvc and the stage commands: this interpreter's executables, the workspace's jetatag first.

    The caller's ``PYTHONPATH`` stays after the workspace: on a machine where the dependencies were installed
    with ``pip install --target`` (the GPU machine here) it is how dvc and the stages find them.
    """
    env = {k: v for k, v in os.environ.items() if k != "SNAKEMAKE_OUTPUT_CACHE"}
    return env | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(workspace), env.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "gpu check",
        "GIT_AUTHOR_EMAIL": "gpu-check@jetatag.invalid",
        "GIT_COMMITTER_NAME": "gpu check",
        "GIT_COMMITTER_EMAIL": "gpu-check@jetatag.invalid",
    }


def slice_override(settings: Settings, *, dry_run: bool) -> dict[str, Any]:
    """The params written over the paper profile for the slice: small synthetic data, 1 epoch per phase."""
    paper = load_params([ROOT / "params.yaml", PAPER])
    one = [{"optimizer": p.optimizer, "lr": p.lr, "epochs": 1} for p in paper.train.stage1_schedule]
    two = [{"optimizer": p.optimizer, "lr": p.lr, "epochs": 1} for p in paper.train.stage2_schedule]
    override: dict[str, Any] = {
        "data": {"source": "synthetic"},
        "synth": {"n_clips": settings.dag_clips, "clip_seconds": settings.dag_clip_seconds, "workers": settings.cores},
        "audio": {"workers": settings.cores},
        "train": {"workers": min(paper.train.workers, settings.cores), "stage1_schedule": one, "stage2_schedule": two},
        "evaluate": {"bootstrap": 100},
    }
    if dry_run:
        override["model"] = {"width": settings.model.width, "sinc_taps": settings.model.sinc_taps}
        override["train"]["workers"] = 0
    return override


def run_dag_slice(settings: Settings, budget: Budget, *, dry_run: bool) -> dict[str, Any]:
    """``dvc repro`` of the Harmonic-CNN evaluations in a temporary copy; seconds per stage and the metrics."""
    from jetatag.profiles import apply_profile

    timeout = budget.deadline("dag_slice") - time.monotonic()
    if timeout < 30:
        return skipped("budget")
    with tempfile.TemporaryDirectory(prefix="jetatag-gpu-check-") as tmp:
        ws = Path(tmp)
        copy_checkout(ws)
        apply_profile(ws / "profiles/paper.yaml", ws / "params.yaml")
        override = slice_override(settings, dry_run=dry_run)
        (ws / "gpu_check_override.yaml").write_text(yaml.safe_dump(override, sort_keys=False), encoding="utf-8")
        apply_profile(ws / "gpu_check_override.yaml", ws / "params.yaml")
        command = ["dvc", "repro", *DAG_TARGETS]
        say(f"dag slice: {' '.join(command)} in {ws} (timeout {timeout:.0f} s)")
        proc = subprocess.Popen(
            command,
            cwd=ws,
            env=_tool_env(ws),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        starts: list[tuple[str, float]] = []
        tail: list[str] = []
        tic = time.monotonic()
        timed_out = False
        try:
            for line in _lines_until(proc, tic + timeout):
                tail = (tail + [line.rstrip()])[-40:]
                if line.startswith("Running stage '"):
                    name = line.split("'")[1]
                    starts.append((name, time.monotonic()))
                    say(f"dag slice: running {name}")
        except TimeoutError:
            timed_out = True
        end = time.monotonic()
        stages = {
            name: (starts[i + 1][1] if i + 1 < len(starts) else end) - start for i, (name, start) in enumerate(starts)
        }
        result: dict[str, Any] = {
            "command": " ".join(command),
            "override": override,
            "returncode": None if timed_out else proc.returncode,
            "timed_out": timed_out,
            "seconds": end - tic,
            "stage_seconds": stages,
        }
        if timed_out or proc.returncode != 0:
            result["log_tail"] = tail
        result["metrics"] = {}
        for target in DAG_TARGETS:
            path = ws / "reports/eval" / f"{target.split('@')[1]}.json"
            if path.is_file():
                record = json.loads(path.read_text(encoding="utf-8"))
                result["metrics"][target] = {
                    "paper": _numbers(record.get("paper")),
                    "literature": _numbers(record.get("literature")),
                }
    return result


def _lines_until(proc: subprocess.Popen[str], deadline: float) -> Iterator[str]:
    """Lines of ``proc`` until it exits; kill its process group and raise TimeoutError at ``deadline``."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.killpg(proc.pid, 9)
                proc.wait()
                raise TimeoutError
            if sel.select(timeout=min(left, 5.0)):
                line = proc.stdout.readline()
                if not line:
                    proc.wait()
                    return
                yield line


def _numbers(section: Any) -> dict[str, float]:
    """The top-level numbers of an evaluation section (``roc_auc``, ``pr_auc``, ...)."""
    return {k: v for k, v in (section or {}).items() if isinstance(v, int | float)}


# --- report ------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".2f") -> str:
    return format(value, spec) if isinstance(value, int | float) else "—"


def markdown(report: dict[str, Any]) -> str:
    """The human summary of ``report``."""
    env = report["environment"]
    gpu = env.get("gpu") or {}
    width = report["settings"]["model"]["width"]
    dry = (
        f"**Dry run** (CPU, width {width:g}, tiny counts): the numbers show that the code paths work, not GPU speed. "
        if report["dry_run"]
        else ""
    )
    lines = [
        "# GPU check: the paper profile on one GPU",
        "",
        dry + f"Device: {gpu.get('name', 'cpu')} ({_fmt(gpu.get('memory_gib'), '.0f')} GiB); torch {env['torch']}, "
        f"CUDA {env['cuda']}, bf16 {env.get('bf16_supported')}, torch.compile "
        f"{'works' if env.get('compile', {}).get('ok') else 'fails: ' + str(env.get('compile', {}).get('error'))}. "
        f"Wall time {report['wall_s']:.0f} s of a {report['budget_s']:.0f} s budget.",
        "",
        "## Steps/s per extractor (batch "
        f"{report['settings']['batch']}; synced = one host sync per step, as `fit()` does)",
        "",
        "| extractor | variant | stage 1 | stage 1 synced | baseline | baseline synced | peak MiB | first losses "
        "| sound |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for extractor, result in report["extractors"].items():
        if "skipped" in result:
            lines.append(f"| {extractor} | — | skipped: {result['skipped']} | | | | | | |")
            continue
        for row in result["variants"]:
            if "stage1_steps_per_s" not in row:
                lines.append(
                    f"| {extractor} | {row['variant']} | {row.get('skipped') or row.get('error')} | | | | | | |"
                )
                continue
            best = " **(best)**" if row["variant"] == result["best"] else ""
            best += " (earlier run)" if row.get("from_earlier_run") else ""
            lines.append(
                f"| {extractor} | {row['variant']}{best} | {row['stage1_steps_per_s']:.2f} | "
                f"{row['stage1_synced_steps_per_s']:.2f} | {row['baseline_steps_per_s']:.2f} | "
                f"{row['baseline_synced_steps_per_s']:.2f} | {_fmt(row['peak_mib'], '.0f')} | "
                f"{row['first_loss']['stage1']:.4f} / {row['first_loss']['baseline']:.4f} | {row['sound']} |"
            )
    lines += [
        "",
        "Inference (eval mode, batch 16 crops): "
        + ", ".join(
            f"{x} {_fmt(r.get('inference_crops_per_s'), '.0f')} crops/s" for x, r in report["extractors"].items()
        ),
        "",
    ]
    lines += ["## Loader", "", "| crop | workers | crops/s | start-up s |", "|---|---|---|---|"]
    for crop, rows in report["loaders"].items():
        if isinstance(rows, list):
            for r in rows:
                lines.append(
                    f"| {crop} | {r['workers']} | {_fmt(r.get('crops_per_s'), '.0f')} | "
                    f"{_fmt(r.get('startup_s'), '.1f')} |"
                )
    lines.append("")
    conc = report["concurrency"]
    lines += ["## Concurrent jobs on the one GPU", ""]
    if "rounds" in conc:
        lines += [
            f"Stage-1 steps of {conc['extractor']} ({conc['variant']}, synced):",
            "",
            "| jobs | total steps/s | per job |",
            "|---|---|---|",
        ]
        for r in conc["rounds"]:
            per_job = ", ".join(f"{v:.2f}" for v in r.get("per_job_steps_per_s", []))
            lines.append(
                f"| {r['jobs']} | {_fmt(r.get('total_steps_per_s'))} | "
                f"{per_job or r.get('skipped') or r.get('error')} |"
            )
        lines += [
            "",
            f"Recommended Snakemake `gpu` resource: **{conc['recommended_gpu_resource']}** "
            f"(throughput × {conc['throughput_gain']:.2f}); {conc['note']}.",
            "",
        ]
    else:
        lines += [f"not measured: {conc.get('skipped') or conc.get('error')}", ""]
    proj = report["projection"]
    lines += [
        "## Projection: full Table 1 on this GPU",
        "",
        "Per extractor, r = synced steps/s (capped by loader crops/s ÷ batch), f = inference crops/s, "
        f"{proj['inputs']['steps_per_epoch']} steps per epoch (⌊15,247 / 16⌋), 1,529 × {proj['inputs']['valid_crops']} "
        "validation crops forwarded per epoch: stage 1 = 100 × (952 / r₁ + 6,116 / f); baseline = 200 × (952 / r_b + "
        f"6,116 / f); JE stage 2 = (15,247 × {proj['inputs']['je_cache_crops']} + 6,116) / f (the embedding cache; "
        "classifier-only epochs are negligible); evaluation = 2 × 4,332 × 16 / f. Serial GPU hours are summed over "
        f"the six extractors; wall = serial ÷ concurrency gain (× {proj['concurrency_gain']:.2f}). Not included: "
        "download/segment of real MTAT, probe, reports, process start-up and compilation.",
        "",
        "| extractor | today: variant | stage 1 h | baseline h | JE stage 2 h | eval h | total h | best: variant "
        "| total h |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for extractor in report["extractors"]:
        t, b = proj["today"]["per_extractor"].get(extractor, {}), proj["best"]["per_extractor"].get(extractor, {})
        h = t.get("hours", {})
        lines.append(
            f"| {extractor} | {t.get('variant', '—')} | {_fmt(h.get('stage1'))} | {_fmt(h.get('baseline'))} | "
            f"{_fmt(h.get('je_stage2'))} | {_fmt(h.get('evaluate'))} | {_fmt(t.get('total_h'))} | "
            f"{b.get('variant', '—')} | {_fmt(b.get('total_h'))} |"
        )
    lines.append("")
    for which in ("today", "best"):
        plan = proj[which]
        verdict = {True: "meets", False: "misses", None: "cannot be judged (not every extractor measured)"}[
            plan["meets_goal"]
        ]
        lines.append(
            f"* **{which}**: {plan['serial_gpu_h']:.1f} GPU-hours serial, {plan['wall_h']:.1f} h wall "
            f"→ {verdict} the goal of ≤ {proj['goal_h']:g} GPU-hours."
        )
    lines.append("")
    dag = report["dag_slice"]
    lines += ["## DAG slice", ""]
    if "command" not in dag:
        lines += [f"not run: {dag.get('skipped') or dag.get('error')}", ""]
    else:
        lines += [
            f"`{dag['command']}` (paper profile, {dag['override']['synth']['n_clips']} synthetic clips, 1 epoch "
            f"per phase): exit {dag['returncode']}{' (timed out)' if dag['timed_out'] else ''}, "
            f"{dag['seconds']:.0f} s.",
            "",
            "| stage | s |",
            "|---|---|",
        ]
        lines += [f"| {name} | {s:.1f} |" for name, s in dag["stage_seconds"].items()]
        lines += [
            "",
            "| evaluation | paper ROC-AUC | paper PR-AUC | macro ROC-AUC | macro AP |",
            "|---|---|---|---|---|",
        ]
        for target, m in dag["metrics"].items():
            lines.append(
                f"| {target} | {_fmt(m['paper'].get('roc_auc'), '.4f')} | {_fmt(m['paper'].get('pr_auc'), '.4f')}"
                f" | {_fmt(m['literature'].get('roc_auc'), '.4f')} | {_fmt(m['literature'].get('ap'), '.4f')} |"
            )
        lines.append("")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------


def completed(record: Any) -> bool:
    """Whether a section's record in a report holds results (it was neither skipped nor failed)."""
    return isinstance(record, dict) and bool(record) and not {"skipped", "error"} & set(record)


def sections_to_run(earlier: dict[str, Any] | None) -> list[str]:
    """Budget sections still to run: all, or those an earlier report (``--resume``) did not complete."""
    if earlier is None:
        return list(WEIGHTS)
    done = {
        "data": completed(earlier.get("data")) and completed(earlier.get("loaders")),
        "concurrency": completed(earlier.get("concurrency")),
        "dag_slice": completed(earlier.get("dag_slice")) and earlier["dag_slice"].get("returncode") == 0,
    }
    return [name for name in WEIGHTS if not done.get(name, False)]


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    """All sections in order within ``args.budget_s``; the report (also written to ``args.out``).

    With ``--resume EARLIER.json`` (a report of an earlier check on the same kind of GPU) the sections and
    variants it completed are carried over and only the rest are measured, so a second short window on a
    GPU fills in what the first one's budget left out.
    """
    earlier = json.loads(args.resume.read_text(encoding="utf-8")) if args.resume else None
    sections = sections_to_run(earlier)
    budget = Budget(args.budget_s, sections)
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    settings = Settings.make(args.dry_run, device)
    if args.clips:
        settings = dataclasses.replace(settings, clips=args.clips)
    say(f"gpu check: device {device}, budget {args.budget_s:.0f} s, dry run {args.dry_run}")
    paper = load_params([ROOT / "params.yaml", PAPER])
    report: dict[str, Any] = {
        "dry_run": args.dry_run,
        "budget_s": args.budget_s,
        "settings": dataclasses.asdict(settings),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sections_run": sections,
    }
    report["environment"] = check_environment(device)
    say(f"environment: {json.dumps(report['environment'])}")
    if earlier is not None:
        report["earlier_run"] = {k: earlier.get(k) for k in ("started", "budget_s", "wall_s", "environment")}
        say(f"resuming {args.resume} (started {earlier.get('started')}): running {', '.join(sections)}")
    if "data" in sections:
        with tempfile.TemporaryDirectory(prefix="jetatag-gpu-data-") as tmp:
            report["data"] = guarded("data", lambda: build_data(settings, Path(tmp)))
            audio = report["data"].get("audio_dir")
            report["loaders"] = (
                guarded("loader", lambda: measure_loaders(settings, Path(audio), budget))
                if audio
                else skipped("no data")
            )
    else:
        report["data"], report["loaders"] = earlier["data"], earlier["loaders"]
    report["extractors"] = measure_extractors(settings, budget, earlier)
    gpu_gib = (report["environment"].get("gpu") or {}).get("memory_gib")
    loaders = report["loaders"] if completed(report["loaders"]) else {}
    first = project(
        report["extractors"],
        loaders,
        batch=paper.train.batch_size,
        valid_crops=paper.train.valid_crops,
        je_cache_crops=paper.train.je_cache_crops,
        eval_crops=paper.evaluate.n_crops,
        gain=1.0,
    )
    costly = max(first["today"]["per_extractor"].items(), key=lambda kv: kv[1].get("total_h", -1.0))[0]
    report["concurrency"] = (
        guarded("concurrency", lambda: measure_concurrency(settings, costly, budget, gpu_gib))
        if "concurrency" in sections
        else earlier["concurrency"]
    )
    report["projection"] = project(
        report["extractors"],
        loaders,
        batch=paper.train.batch_size,
        valid_crops=paper.train.valid_crops,
        je_cache_crops=paper.train.je_cache_crops,
        eval_crops=paper.evaluate.n_crops,
        gain=report["concurrency"].get("throughput_gain", 1.0),
    )
    for which in ("today", "best"):
        plan = report["projection"][which]
        say(
            f"projection ({which}): {plan['serial_gpu_h']:.1f} GPU-h serial, {plan['wall_h']:.1f} h wall, "
            f"goal {GOAL_H:g} h met: {plan['meets_goal']}"
        )
    report["dag_slice"] = (
        guarded("dag slice", lambda: run_dag_slice(settings, budget, dry_run=args.dry_run))
        if "dag_slice" in sections
        else earlier["dag_slice"]
    )
    report["wall_s"] = time.monotonic() - budget.start
    write_json(args.out / "gpu_check.json", report)
    with atomic_open(args.out / "gpu_check.md", "w", encoding="utf-8") as handle:
        handle.write(markdown(report) + "\n")
    say(f"wrote {args.out / 'gpu_check.json'} and gpu_check.md in {report['wall_s']:.0f} s")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results", help="folder for the outputs")
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget of the whole check")
    parser.add_argument("--dry-run", action="store_true", help="CPU, width 0.125, tiny counts (≤ 3 min on 2 cores)")
    parser.add_argument("--clips", type=int, help="synthetic clips for the throughput sections (multiple of 16)")
    parser.add_argument(
        "--resume", type=Path, metavar="EARLIER.json", help="keep what an earlier gpu_check.json measured; run the rest"
    )
    parser.add_argument("--extractor-worker", metavar="JOB", help=argparse.SUPPRESS)
    parser.add_argument("--concurrent-worker", metavar="JOB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.extractor_worker:
        extractor_worker(json.loads(args.extractor_worker))
    elif args.concurrent_worker:
        concurrent_worker(json.loads(args.concurrent_worker))
    else:
        run_check(args)


if __name__ == "__main__":
    main()
