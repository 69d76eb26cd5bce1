"""Wall time of JE stage 2 on cached embeddings against the no-JE baseline and JE stage 2 on random crops.

JE stage 2 trains only the classifier on the frozen stage-1 extractor, so by default it runs the
extractor once over a fixed grid of ``train.je_cache_crops`` crops per clip and trains on the cached h
(:mod:`jetatag.train.embeddings`). This times the three ways of running a stage-2 job of one extractor
on a segmented audio folder, with the schedule of the params file, in this order: JE cached, JE on
random crops (``train.je_embedding_cache: false``), no-JE baseline; and prints the ratios. The stage-1
checkpoint is a freshly initialised model: stage 2's cost does not depend on its weights.

    python benchmarks/stage2_cache.py --audio data/audio --extractor samplecnn
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from jetatag.config import load_params
from jetatag.data.dataset import AudioIndex
from jetatag.extractors import EXTRACTOR_IDS
from jetatag.models.tagger import TaggerMeta, build_joint_embedding, save_joint
from jetatag.runtime import bound_openmp_spinning, configure_process
from jetatag.train.schedule import total_epochs
from jetatag.train.stage2 import run_stage2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--audio", type=Path, required=True, help="segmented audio folder (data/audio)")
    parser.add_argument("--extractor", choices=EXTRACTOR_IDS, default="samplecnn")
    parser.add_argument("--params", type=Path, default=Path(__file__).resolve().parents[1] / "params.yaml")
    args = parser.parse_args()
    if bound_openmp_spinning():  # OpenMP reads it when torch loads: start again with it set
        os.execv(sys.executable, [sys.executable, *sys.argv])
    configure_process()
    params = load_params(args.params)
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, device="cpu"))
    index = AudioIndex(args.audio)
    train = params.train
    print(
        f"load average before: {os.getloadavg()[0]:.1f}; {args.extractor} at width {params.model.width:g}, "
        f"{total_epochs(train.stage2_schedule)} epochs, batch {train.batch_size}, je_cache_crops "
        f"{train.je_cache_crops}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory(prefix="jetatag-stage2-") as tmp:
        run = Path(tmp)
        torch.manual_seed(0)
        joint = build_joint_embedding(
            args.extractor, params.model, n_tags=len(index.tags), sample_rate=index.sample_rate
        )
        meta = TaggerMeta(
            extractor=args.extractor,
            variant="je",
            tags=index.tags,
            sample_rate=index.sample_rate,
            crop_samples=params.model.crop_samples(args.extractor),
            model=dataclasses.asdict(params.model),
        )
        save_joint(run / "stage1.pt", joint, meta=meta)
        times = {}
        for name, variant, cache in (
            ("je cached", "je", True),
            ("je random crops", "je", False),
            ("noje", "noje", None),
        ):
            job = dataclasses.replace(params, train=dataclasses.replace(train, je_embedding_cache=bool(cache)))
            tic = time.perf_counter()
            run_stage2(
                job,
                extractor=args.extractor,
                variant=variant,
                audio_dir=args.audio,
                stage1_path=run / "stage1.pt" if variant == "je" else None,
                out_path=run / name.replace(" ", "-") / "model.pt",
                live_dir=run / name.replace(" ", "-") / "live",
            )
            times[name] = time.perf_counter() - tic
    print("| stage-2 job | wall s | / noje |")
    print("|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.1f} | {seconds / times['noje']:.2f} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
