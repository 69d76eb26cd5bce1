"""Milliseconds per training step and peak memory for each extractor, at paper size and demo size.

A step is forward + backward + Adam update (lr 1e-4, built as training builds its optimizers) on one batch
(default 16) of random crops:
* "stage 1" — the JE stage-1 model (extractor + projection + tag autoencoder, pair + reconstruction
  loss). The no-JE baseline's step (extractor + classifier, BCE) costs the same to within the heads.
* "je stage 2" — the tagger with its extractor frozen (no extractor gradients) and the classifier trained.

Each configuration runs in a fresh process, so the CPU figure "peak RSS" is that configuration's own
(``resource.getrusage`` max RSS, libraries included; "model RSS" is the RSS before the first step).
On CUDA the peak is ``torch.cuda.max_memory_allocated``. Steps run in ``--precision`` as training does
(``train.precision``; default "auto": bf16 autocast on CUDA, float32 on CPU); several values time each in turn.

    python benchmarks/train_step.py --extractors hcnn --sizes paper --precision float32 bf16   # CPU bf16 (AMX)
The table ends with the full-MTAT training time each step time implies (15,247 clips / batch 16 =
953 steps per epoch; stage 1 100 epochs, stage 2 200 epochs; data loading not included).

    python benchmarks/train_step.py                       # every extractor, paper and demo size
    python benchmarks/train_step.py --extractors samplecnn hcnn --sizes demo --steps 5

Before/after: ``--against REV`` times the no-JE training step (extractor + classifier, BCE, Adam) of
this working tree and of git revision REV side by side, each with the optimizer its own training builds
(torch's fused Adam since ``f2cb346``, the per-tensor one before), in lockstep: two long-lived worker processes,
one importing each tree's ``jetatag``, take steps in alternation (the order swaps every round), so both
see the same machine load; it prints the median ms per step of each and their ratio.

    python benchmarks/train_step.py --against e43ee53 --sizes paper demo --steps 7

Where the time goes: ``--profile N`` prints torch.profiler's top N operators (self CPU time) over one
no-JE step per configuration, after three warm-up steps.

    python benchmarks/train_step.py --profile 12 --extractors hcnn --sizes paper
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import importlib
import importlib.util
import itertools
import json
import math
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

import jetatag.models  # h_dim is looked up when measuring: the trees that --against imports may predate it
from jetatag.config import EXTRACTOR_IDS, ModelParams, load_params  # config: --against trees predate jetatag.extractors
from jetatag.models.heads import Classifier
from jetatag.models.losses import classification_loss, pair_loss, reconstruction_loss
from jetatag.models.tagger import Tagger, build_joint_embedding

PAPER_MODEL = ModelParams(width=1.0, hcnn_crop_samples=80000, samplecnn_crop_samples=59049, sinc_taps=2501)
MTAT_TRAIN_CLIPS = 15247
STAGE1_EPOCHS, STAGE2_EPOCHS = 100, 200
N_TAGS = 50
PRECISIONS = ("auto", "float32", "bf16")
"""``train.precision``'s values, spelled out: the trees that ``--against`` imports predate the setting."""


def _rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def time_steps(step: Any, steps: int, device: torch.device) -> tuple[float, float]:
    """Run ``step`` once to warm up, then ``steps`` times; median wall and process-CPU milliseconds per step.

    CPU time (all threads of this process) is much less sensitive than wall time to other jobs
    sharing the machine: on an idle machine wall ≈ CPU / threads when the threads are busy.
    """
    step()
    wall, cpu = [], []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall.append(1e3 * (time.perf_counter() - start))
        cpu.append(1e3 * (time.process_time() - start_cpu))
    return statistics.median(wall), statistics.median(cpu)


def measure(
    extractor: str,
    size: str,
    model: ModelParams,
    *,
    batch: int,
    steps: int,
    device: str,
    precision: str,
    threads: int,
    seed: int,
) -> dict[str, Any]:
    """Time the stage-1 and je stage-2 steps of one extractor configuration (runs in a fresh process)."""
    from jetatag.runtime import configure_process
    from jetatag.train.device import autocast

    configure_process()  # as the `jetatag` training commands do
    torch.set_num_threads(threads)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    generator = torch.Generator().manual_seed(seed)
    length = model.crop_samples(extractor)
    wave = (torch.rand(batch, length, generator=generator) * 2 - 1).to(dev)  # (B, L)
    tags = (torch.rand(batch, N_TAGS, generator=generator) < 0.1).float().to(dev)  # (B, n_tags)

    joint = build_joint_embedding(extractor, model, n_tags=N_TAGS, sample_rate=16000).to(dev).train()
    n_params = sum(p.numel() for p in joint.extractor.parameters() if p.requires_grad)
    optimizer = training_optimizer(joint.parameters())

    def stage1_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(dev, precision):
            out = joint(wave, tags)
        loss = reconstruction_loss(tags, out["tags_hat"].float()) + pair_loss(out["z_m"].float(), out["z_t"].float())
        loss.backward()
        optimizer.step()

    model_rss = _rss_mib()
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    stage1_ms, stage1_cpu_ms = time_steps(stage1_step, steps, dev)
    peak = (
        torch.cuda.max_memory_allocated(dev) / 2**20
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    )

    classifier = Classifier(jetatag.models.h_dim(joint.extractor), N_TAGS)
    tagger = Tagger.from_joint(joint, classifier).to(dev).freeze_extractor().train()
    optimizer2 = training_optimizer(tagger.classifier.parameters())

    def stage2_step() -> None:
        optimizer2.zero_grad(set_to_none=True)
        with autocast(dev, precision):
            logits = tagger(wave)
        classification_loss(logits.float(), tags).backward()
        optimizer2.step()

    stage2_ms, stage2_cpu_ms = time_steps(stage2_step, steps, dev)
    return {
        "extractor": extractor,
        "size": size,
        "precision": precision,
        "width": model.width,
        "input": length,
        "params": n_params,
        "stage1_ms": stage1_ms,
        "stage1_cpu_ms": stage1_cpu_ms,
        "je_stage2_ms": stage2_ms,
        "je_stage2_cpu_ms": stage2_cpu_ms,
        "peak_mib": peak,
        "model_rss_mib": model_rss if not cuda else None,
        "device": torch.cuda.get_device_name(dev) if cuda else f"cpu ({threads} threads)",
    }


def implied_hours(stage1_ms: float, je_stage2_ms: float, batch: int) -> dict[str, float]:
    """Full-MTAT training time implied by the step times (hours; stage 2 noje ≈ stage-1 step cost)."""
    steps_per_epoch = math.ceil(MTAT_TRAIN_CLIPS / batch)
    hours = steps_per_epoch / 3.6e6
    return {
        "stage1_h": STAGE1_EPOCHS * stage1_ms * hours,
        "stage2_noje_h": STAGE2_EPOCHS * stage1_ms * hours,
        "stage2_je_h": STAGE2_EPOCHS * je_stage2_ms * hours,
    }


def training_optimizer(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam at 1e-4 over ``params``, built by the imported tree's own ``make_optimizer``, so that a step here
    updates the weights as that tree's training does (fused kernels since ``f2cb346``, per-tensor before)."""
    from jetatag.config import Phase
    from jetatag.train.schedule import make_optimizer

    return make_optimizer(Phase(optimizer="adam", lr=1e-4, epochs=1), [{"params": list(params)}])


def no_je_step(extractor: str, model: ModelParams, *, batch: int, threads: int, seed: int) -> Callable[[], None]:
    """One no-JE training step (extractor + classifier, BCE, Adam) on a fixed random batch, as a callable.

    The process is set up as the ``jetatag`` command of the imported tree sets itself up (allocator thresholds).
    """
    import jetatag
    from jetatag.models.tagger import build_tagger

    # run each tree as its `jetatag` command runs training; revisions before jetatag.runtime had none (and
    # the editable install must not lend them this tree's module)
    spec = importlib.util.find_spec("jetatag.runtime")
    if spec is not None and Path(spec.origin).parent == Path(jetatag.__file__).parent:
        importlib.import_module("jetatag.runtime").configure_process()
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(seed)
    wave = torch.rand(batch, model.crop_samples(extractor), generator=generator) * 2 - 1  # (B, L)
    tags = (torch.rand(batch, N_TAGS, generator=generator) < 0.1).float()  # (B, n_tags)
    torch.manual_seed(seed)
    tagger = build_tagger(extractor, model, n_tags=N_TAGS, sample_rate=16000).train()
    optimizer = training_optimizer(tagger.parameters())

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        classification_loss(tagger(wave), tags).backward()
        optimizer.step()

    return step


def worker(extractor: str, model: ModelParams, *, batch: int, threads: int, seed: int) -> None:
    """Lockstep worker: build a no-JE step, then run it once per "step" line on stdin, replying ms."""
    step = no_je_step(extractor, model, batch=batch, threads=threads, seed=seed)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        start = time.perf_counter()
        step()
        print(f"{1e3 * (time.perf_counter() - start):.3f}", flush=True)


def profile_table(extractor: str, model: ModelParams, *, batch: int, threads: int, seed: int, top: int) -> str:
    """torch.profiler's ``top`` operators by self CPU time over one no-JE step, after three warm-up steps."""
    from torch.profiler import ProfilerActivity, profile

    step = no_je_step(extractor, model, batch=batch, threads=threads, seed=seed)
    for _ in range(3):  # allocator, oneDNN primitive caches
        step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        step()
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def worker_model(spec: dict[str, Any]) -> ModelParams:
    """The worker tree's ModelParams from ``_spawn``'s JSON; keys it lacks may only hold the caller's defaults."""
    known = {f.name for f in dataclasses.fields(ModelParams)}
    unknown = set(spec["params"]) - known
    if unknown - set(spec["defaults"]):
        raise SystemExit(f"this tree's ModelParams has no {sorted(unknown - set(spec['defaults']))}: cannot build it")
    return ModelParams(**{key: value for key, value in spec["params"].items() if key in known})


def worker_command(extractor: str, model: ModelParams, *, batch: int, threads: int, seed: int) -> list[str]:
    """The command line of a lockstep worker (``--worker``) that builds ``extractor`` at ``model``."""
    # the full model params, and which of them hold this tree's defaults: an older tree that lacks such a
    # key (a switch added since) builds the same model without it
    defaults = [f.name for f in dataclasses.fields(model) if getattr(model, f.name) == f.default]
    model_json = json.dumps({"params": dataclasses.asdict(model), "defaults": defaults})
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", extractor, "--model-json", model_json]
    return command + ["--batch", str(batch), "--threads", str(threads), "--seed", str(seed)]


def start_worker(command: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start a lockstep worker and wait for its "ready" line."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"worker {' '.join(command[:4])} failed to start (cwd {cwd})")
    return proc


def take_step(proc: subprocess.Popen[str]) -> float:
    """One step of a lockstep worker; its milliseconds."""
    proc.stdin.write("step\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def alternating_medians(workers: dict[str, subprocess.Popen[str]], *, steps: int, warm_up: int) -> dict[str, float]:
    """Median ms per step of each worker over ``steps`` rounds, the order reversed every round; then stop them.

    Each worker first takes ``warm_up`` untimed steps (allocator, oneDNN primitive caches, tracing).
    """
    times: dict[str, list[float]] = {side: [] for side in workers}
    try:
        for proc in workers.values():
            for _ in range(warm_up):
                take_step(proc)
        for round_ in range(steps):
            for side in list(workers) if round_ % 2 == 0 else list(workers)[::-1]:
                times[side].append(take_step(workers[side]))
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()
    return {side: statistics.median(t) for side, t in times.items()}


def tree_environment(tree: Path) -> dict[str, str]:
    """``os.environ`` as a ``jetatag`` command of ``tree`` leaves it for torch: with its ``jetatag.runtime``
    OpenMP settings (none in trees from before that module), and ``tree`` first on PYTHONPATH."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    if not (tree / "jetatag" / "runtime.py").is_file():
        return env
    probe = "import json, os; from jetatag.runtime import configure_process; configure_process(); "
    probe += "print(json.dumps(dict(os.environ)))"
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _spawn(tree: Path, extractor: str, model: ModelParams, args: argparse.Namespace) -> subprocess.Popen[str]:
    """A lockstep worker importing ``jetatag`` from ``tree``, in the environment its commands give torch."""
    command = worker_command(extractor, model, batch=args.batch, threads=args.threads, seed=args.seed)
    return start_worker(command, tree_environment(tree), cwd=tree)


def against(args: argparse.Namespace, models: dict[str, ModelParams]) -> list[dict[str, Any]]:
    """Lockstep before/after timing of every (size, extractor) against git revision ``args.against``."""
    root = Path(__file__).resolve().parents[1]
    rows = []
    with tempfile.TemporaryDirectory(prefix="jetatag-against-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", args.against, "jetatag"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        print(f"load average before: {os.getloadavg()[0]:.1f}; this tree vs {args.against}, threads {args.threads}")
        print("| extractor | size | width | ms/step now | ms/step at " + args.against + " | speed-up |")
        print("|---|---|---|---|---|---|")
        for size in args.sizes:
            for extractor in args.extractors:
                model = models[size]
                procs = {
                    "now": _spawn(root, extractor, model, args),
                    "before": _spawn(Path(tmp), extractor, model, args),
                }
                medians = alternating_medians(procs, steps=args.steps, warm_up=2)
                now, before = medians["now"], medians["before"]
                rows.append(
                    {
                        "extractor": extractor,
                        "size": size,
                        "width": model.width,
                        "now_ms": now,
                        "before_ms": before,
                        "speedup": before / now,
                        "against": args.against,
                    }
                )
                print(
                    f"| {extractor} | {size} | {model.width:g} | {now:.0f} | {before:.0f} | {before / now:.2f}x |",
                    flush=True,
                )
    print(f"median of {args.steps} alternating steps each; load average after: {os.getloadavg()[0]:.1f}")
    return rows


def in_fresh_process(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` in a fresh spawned process, so its peak memory and caches are its own."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extractors", nargs="+", choices=EXTRACTOR_IDS, default=list(EXTRACTOR_IDS))
    parser.add_argument("--sizes", nargs="+", choices=("paper", "demo"), default=["paper", "demo"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after one warm-up)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--precision", nargs="+", choices=PRECISIONS, default=["auto"], help="as train.precision (not with --against)"
    )
    parser.add_argument("--params", type=Path, default=Path(__file__).resolve().parents[1] / "params.yaml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--against", metavar="REV", help="time the no-JE step against git revision REV in lockstep")
    parser.add_argument("--profile", type=int, metavar="N", help="print the top N operators of one no-JE step instead")
    parser.add_argument("--worker", metavar="EXTRACTOR", help=argparse.SUPPRESS)
    parser.add_argument("--model-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model = worker_model(json.loads(args.model_json))
        worker(args.worker, model, batch=args.batch, threads=args.threads, seed=args.seed)
        return

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    models = {"paper": PAPER_MODEL, "demo": load_params(args.params).model}
    if args.against:
        if args.precision != ["auto"]:
            parser.error("--against times steps without autocast: leave out --precision")
        rows = against(args, models)
        if args.json:
            args.json.write_text(
                json.dumps({"batch": args.batch, "threads": args.threads, "rows": rows}, indent=2) + "\n"
            )
        return
    from jetatag.runtime import bound_openmp_spinning  # not at the top: --against workers import older trees

    bound_openmp_spinning()  # the processes spawned below start as `jetatag` commands do
    if args.profile:
        for size in args.sizes:
            for extractor in args.extractors:
                table = in_fresh_process(
                    profile_table,
                    extractor,
                    models[size],
                    batch=args.batch,
                    threads=args.threads,
                    seed=args.seed,
                    top=args.profile,
                )
                print(f"{extractor}, {size} size (width {models[size].width:g}), one no-JE step:\n{table}", flush=True)
        return
    rows = []
    columns = [
        "extractor",
        "size",
        "precision",
        "width",
        "input",
        "params to h",
        "stage-1 ms/step (CPU ms)",
        "je stage-2 ms/step (CPU ms)",
        "peak MiB",
        "MTAT stage 1 h",
        "stage 2 noje h",
        "stage 2 je h",
    ]
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for size, extractor, precision in itertools.product(args.sizes, args.extractors, args.precision):
        row = in_fresh_process(
            measure,
            extractor,
            size,
            models[size],
            batch=args.batch,
            steps=args.steps,
            device=device,
            precision=precision,
            threads=args.threads,
            seed=args.seed,
        )
        row.update(implied_hours(row["stage1_ms"], row["je_stage2_ms"], args.batch))
        rows.append(row)
        print(
            f"| {extractor} | {size} | {precision} | {row['width']:g} | {row['input']} | {row['params']:,} | "
            f"{row['stage1_ms']:.0f} ({row['stage1_cpu_ms']:.0f}) | "
            f"{row['je_stage2_ms']:.0f} ({row['je_stage2_cpu_ms']:.0f}) | {row['peak_mib']:.0f} | "
            f"{row['stage1_h']:.1f} | {row['stage2_noje_h']:.1f} | {row['stage2_je_h']:.1f} |",
            flush=True,
        )
    print(
        f"device: {rows[0]['device'] if rows else device}; batch {args.batch}; median of {args.steps} timed steps; "
        f"load average after: {os.getloadavg()[0]:.1f}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"batch": args.batch, "rows": rows, "models": {k: dataclasses.asdict(v) for k, v in models.items()}},
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
