"""Command line: ``jetatag <stage> ...``, one subcommand per pipeline stage plus the tagging tools.

This module only parses arguments and calls the stage functions; defaults for knobs live in
``params.yaml``, never here. Input and output paths are explicit and mirror the DAG's deps/outs.

Conventions, the same for ``jetatag`` and ``python -m jetatag``:

* ``-v``/``--verbose`` (debug log), ``-q``/``--quiet`` (warnings and errors only) and ``--log-file``
  go before or after the subcommand; of ``-v`` and ``-q``, the last one given wins.
* ``--version`` prints the installed package version.
* Exit status: 0 done; 1 runtime error (bad input, missing file: one logged message, no traceback);
  2 usage error (as argparse reports it); 130 interrupted (Ctrl-C); 141 stdout closed early (``| head -1``)
  (quietly, as a Unix filter killed by SIGPIPE would end, so ``set -o pipefail`` sees the same).
* Progress bars are drawn only on a terminal (:mod:`jetatag.progress`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from jetatag import __version__
from jetatag.config import VARIANTS, Params, ParamsError, load_params
from jetatag.errors import StageError
from jetatag.extractors import EXTRACTOR_IDS
from jetatag.runtime import collector_paused, configure_process, declare_one_shot_process, freeze_before_exit

log = logging.getLogger("jetatag")

EXIT_OK = 0
EXIT_ERROR = 1  # a runtime error: StageError, ParamsError, OSError
EXIT_USAGE = 2  # argparse's status for a bad command line
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


class UsageError(Exception):
    """Options that parse but do not go together; :func:`main` reports it like argparse (exit 2)."""


def _params(args: argparse.Namespace) -> Params:
    return load_params(args.params or ["params.yaml"])


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params",
        action="append",
        type=Path,
        metavar="YAML",
        help="params file; repeat to layer a profile over the defaults (default: params.yaml)",
    )


def _add_extractor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--extractor", required=True, choices=EXTRACTOR_IDS, help="feature extractor id")


def _add_variant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, choices=VARIANTS, help="with (je) or without (noje) stage 1")


# --- stage handlers: each imports its implementation lazily so `--help` stays fast, with the garbage
# collector paused (jetatag.runtime) -------------------------------------------------------------


def cmd_synth(args: argparse.Namespace) -> None:
    explicit = {"--n-clips": args.n_clips, "--clip-seconds": args.clip_seconds, "--seed": args.seed}
    if all(v is None for v in explicit.values()):  # the pipeline stage: the mirror data.source asks for
        with collector_paused():
            from jetatag.synth.stage import run_synth

        run_synth(_params(args), out_dir=args.out)
        return
    missing = [flag for flag, value in explicit.items() if value is None]
    if missing:
        raise UsageError(f"synth: explicit sizes need all of {', '.join(explicit)} (missing: {', '.join(missing)})")
    if args.params:
        raise UsageError("synth: give --params or explicit sizes (--n-clips, --clip-seconds, --seed), not both")
    with collector_paused():
        from jetatag.synth.mirror import write_mirror

    workers = 1 if args.workers is None else args.workers
    write_mirror(args.out, n_clips=args.n_clips, clip_seconds=args.clip_seconds, seed=args.seed, workers=workers)


def cmd_download(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.data.download import run_download

    run_download(_params(args), out_dir=args.out, synth_dir=args.synth)


def cmd_labels(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.data.labels import run_labels

    run_labels(_params(args), raw_dir=args.raw, out_dir=args.out)


def cmd_segment(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.data.segment import run_segment

    run_segment(_params(args), labels_dir=args.labels, raw_dir=args.raw, out_dir=args.out)


def cmd_stage1(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.train.stage1 import run_stage1

    run_stage1(
        _params(args),
        extractor=args.extractor,
        audio_dir=args.audio,
        out_path=args.out,
        live_dir=args.live,
    )


def cmd_stage2(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.train.stage2 import run_stage2

    if args.variant == "je" and args.stage1 is None:
        raise UsageError("stage2 --variant je needs --stage1 (the stage-1 checkpoint)")
    run_stage2(
        _params(args),
        extractor=args.extractor,
        variant=args.variant,
        audio_dir=args.audio,
        stage1_path=args.stage1,
        out_path=args.out,
        live_dir=args.live,
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.evaluate.stage import run_evaluate

    run_evaluate(_params(args), model_path=args.model, audio_dir=args.audio, out_json=args.out, out_arrays=args.arrays)


def cmd_probe(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.evaluate.probe import run_probe

    run_probe(_params(args), audio_dir=args.audio, out_json=args.out)


def cmd_table1(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.report.table1 import run_table1

    run_table1(
        _params(args),
        eval_dir=args.evals,
        arrays_dir=args.arrays,
        probe_json=args.probe,
        train_dir=args.train,
        figure2_json=args.figure2,
        out_table=args.out_table,
        out_metrics=args.out_metrics,
        out_details=args.out_details,
    )


def cmd_figure2(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.report.figure2 import run_figure2

    run_figure2(
        _params(args),
        arrays_dir=args.arrays,
        eval_dir=args.evals,
        out_figure=args.out,
        out_per_tag=args.out_per_tag,
        out_stats=args.out_stats,
    )


# --- tagging tools: use a trained model on the user's own music ---------------------------------


def cmd_export(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.tagging.run import run_export

    if args.model is None:
        if args.extractor is None or args.variant is None:
            raise UsageError("export needs --model PATH, or --extractor and --variant (under --models-dir)")
        args.model = args.models_dir / args.extractor / args.variant / "model.pt"
    sys.stdout.write(run_export(args.model, args.out))


def cmd_tag(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.tagging.run import run_tag

    sys.stdout.write(
        run_tag(
            args.model,
            args.paths,
            top_k=args.top_k,
            fmt=args.format,
            hop_s=args.hop,
            batch_size=args.batch_size,
            device=args.device,
        )
    )


def cmd_index(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.tagging.run import run_index

    sys.stdout.write(
        run_index(
            args.model, args.paths, out_path=args.out, hop_s=args.hop, batch_size=args.batch_size, device=args.device
        )
    )


def cmd_search(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.tagging.run import run_search

    sys.stdout.write(run_search(args.index, args.tags, k=args.k, by=args.by, model_path=args.model))


# --- pipeline front ends: dvc.yaml generation, params profiles, CI metric diffs ----------------


def cmd_pipeline_generate(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.pipeline import write_generated

    written = write_generated(args.root, check=args.check)
    log.info("%s", f"wrote {', '.join(written)}" if written else "generated files are up to date")


def cmd_pipeline_apply_profile(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.profiles import apply_profile

    changed = apply_profile(args.profile, args.params_file)
    log.info("%s: %d values from %s: %s", args.params_file, len(changed), args.profile, ", ".join(changed) or "none")


def cmd_metrics_diff(args: argparse.Namespace) -> None:
    with collector_paused():
        from jetatag.metrics_diff import write_metrics_diff

    write_metrics_diff(args.base, args.out)


def _add_inference(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model bundle (.jetatag) or training checkpoint")
    parser.add_argument("--hop", type=float, metavar="SECONDS", help="hop between crops (default: one crop length)")
    parser.add_argument("--batch-size", type=int, default=16, help="crops per forward pass (default: 16)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")


def _global_options() -> argparse.ArgumentParser:
    """Options accepted before and after any subcommand; unset ones stay absent from the namespace.

    Their defaults are ``SUPPRESS`` so that a subcommand that does not repeat an option leaves the
    value given before it in place; :func:`main` supplies the real defaults.
    """
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const=logging.DEBUG,
        default=argparse.SUPPRESS,
        help="debug logging",
    )
    group.add_argument(
        "-q",
        "--quiet",
        dest="log_level",
        action="store_const",
        const=logging.WARNING,
        default=argparse.SUPPRESS,
        help="warnings and errors only",
    )
    group.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="also write the log to PATH (pipeline jobs)",
    )
    return options


def _build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog="jetatag",
        description="Music auto-tagging with joint embeddings: pipeline stages and tools.",
        epilog="Exit status: 0 done, 1 runtime error, 2 usage error, 130 interrupted, 141 output pipe closed.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        p.set_defaults(handler=handler)
        return p

    p = add(
        "synth",
        cmd_synth,
        "Write a synthetic MTAT-format mirror (zip pieces, CSVs, SHA256SUMS): from the params' synth section "
        "when data.source is 'synthetic' (else only a note; the pipeline's synth stage), or from explicit sizes.",
    )
    _add_params(p)
    p.add_argument("--out", type=Path, required=True, help="mirror folder to write")
    p.add_argument("--n-clips", type=int, help="explicit size (with --clip-seconds and --seed): ignore params")
    p.add_argument("--clip-seconds", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int)

    p = add("download", cmd_download, "Acquire MTAT (official/http mirror, local folder or synthetic).")
    _add_params(p)
    p.add_argument("--synth", type=Path, help="synthetic mirror written by `synth` (read if data.source is synthetic)")
    p.add_argument("--out", type=Path, required=True, help="raw data folder (annotations + mp3/<0-f>/)")

    p = add("labels", cmd_labels, "Select the top-N tags, split by folder, drop unusable clips.")
    _add_params(p)
    p.add_argument("--raw", type=Path, required=True, help="raw data folder written by download")
    p.add_argument("--out", type=Path, required=True, help="labels folder (tags.json, clips.parquet)")

    p = add("segment", cmd_segment, "Decode, resample and shard the kept clips.")
    _add_params(p)
    p.add_argument("--labels", type=Path, required=True, help="labels folder written by labels")
    p.add_argument("--raw", type=Path, required=True, help="raw data folder written by download")
    p.add_argument("--out", type=Path, required=True, help="audio folder (npy shards + index.parquet)")

    p = add("stage1", cmd_stage1, "JE stage 1: train tag autoencoder + extractor + projection head.")
    _add_params(p)
    _add_extractor(p)
    p.add_argument("--audio", type=Path, required=True, help="audio folder written by segment")
    p.add_argument("--out", type=Path, required=True, help="stage-1 checkpoint to write")
    p.add_argument("--live", type=Path, required=True, help="dvclive folder for per-epoch metrics")

    p = add("stage2", cmd_stage2, "Stage 2: classifier on the frozen JE extractor (je) or end to end (noje).")
    _add_params(p)
    _add_extractor(p)
    _add_variant(p)
    p.add_argument("--audio", type=Path, required=True, help="audio folder written by segment")
    p.add_argument("--stage1", type=Path, help="stage-1 checkpoint (variant je only)")
    p.add_argument("--out", type=Path, required=True, help="model checkpoint to write")
    p.add_argument("--live", type=Path, required=True, help="dvclive folder for per-epoch metrics")

    p = add("evaluate", cmd_evaluate, "Score the test clips; write both protocols' metrics.")
    _add_params(p)
    p.add_argument("--model", type=Path, required=True, help="model checkpoint written by stage2")
    p.add_argument("--audio", type=Path, required=True, help="audio folder written by segment")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    p.add_argument("--arrays", type=Path, required=True, help="npz of scores and embeddings to write")

    p = add("probe", cmd_probe, "Reference row: logistic regression on log-mel mean/std features (train -> test).")
    _add_params(p)
    p.add_argument("--audio", type=Path, required=True, help="audio folder written by segment")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON to write, e.g. reports/eval/probe.json")

    p = add("table1", cmd_table1, "Table 1 (markdown), flat DVC metrics and the other numbers from all evaluations.")
    _add_params(p)
    p.add_argument("--evals", type=Path, required=True, help="folder of <extractor>-<variant>.json")
    p.add_argument("--arrays", type=Path, required=True, help="folder of <extractor>-<variant>.npz (paired bootstrap)")
    p.add_argument("--probe", type=Path, required=True, help="probe metrics JSON written by probe")
    p.add_argument("--train", type=Path, required=True, help="folder of the <extractor>-stage1/ dvclive folders")
    p.add_argument("--figure2", type=Path, required=True, help="k-NN agreement JSON written by figure2")
    p.add_argument("--out-table", type=Path, required=True)
    p.add_argument("--out-metrics", type=Path, required=True, help="DVC metrics JSON: headline numbers per model")
    p.add_argument("--out-details", type=Path, required=True, help="plain JSON: Table 1's other numbers, flat")

    p = add("figure2", cmd_figure2, "Figure 2 (t-SNE panels) and per-tag ROC-AUC plot.")
    _add_params(p)
    p.add_argument("--arrays", type=Path, required=True, help="folder of <extractor>-<variant>.npz")
    p.add_argument("--evals", type=Path, required=True, help="folder of <extractor>-<variant>.json")
    p.add_argument("--out", type=Path, required=True, help="figure PNG to write")
    p.add_argument("--out-per-tag", type=Path, required=True, help="per-tag ROC-AUC PNG to write")
    p.add_argument("--out-stats", type=Path, required=True, help="JSON of the panels' k-NN tag agreement to write")

    p = add("export", cmd_export, "Bundle a trained model into one .jetatag file for tagging your own music.")
    p.add_argument("--model", type=Path, help="training checkpoint, e.g. models/hcnn/je/model.pt")
    p.add_argument("--extractor", choices=EXTRACTOR_IDS, help="instead of --model: <models-dir>/<extractor>/...")
    p.add_argument("--variant", choices=VARIANTS, help="instead of --model: .../<variant>/model.pt")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="models folder (default: models)")
    p.add_argument("--out", type=Path, required=True, help="bundle to write, e.g. model.jetatag")

    p = add("tag", cmd_tag, "Tag audio files and folders (any format, rate and channel count) with a model.")
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="audio files or folders (searched recursively)")
    _add_inference(p)
    p.add_argument("--top-k", type=int, default=5, help="tags printed per file (default: 5)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format (default: table)")

    p = add("index", cmd_index, "Index a collection: per-file joint embedding z_m and tag scores, in parquet.")
    p.add_argument("paths", type=Path, nargs="+", metavar="DIR", help="audio folders or files (searched recursively)")
    _add_inference(p)
    p.add_argument("--out", type=Path, required=True, help="index parquet to write")

    p = add("search", cmd_search, "Search an index by tags (joint embedding for je models, or tag scores).")
    p.add_argument("--index", type=Path, required=True, help="index parquet written by index")
    p.add_argument("--tags", required=True, help="comma-separated query tags, e.g. 'techno,fast'")
    p.add_argument("-k", type=int, default=10, help="results to show (default: 10)")
    p.add_argument("--by", choices=("embedding", "scores"), help="ranking (default: embedding if the index has z_m)")
    p.add_argument("--model", type=Path, help="model the index was built with (default: the path recorded in it)")

    help_ = "Pipeline front ends: regenerate dvc.yaml and the Snakemake rules, apply a params profile."
    p = sub.add_parser("pipeline", help=help_, description=help_, parents=[common])
    pipe = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    help_ = "write dvc.yaml and the rule files workflow/rules/*.smk from the stage list in jetatag/pipeline.py"
    q = pipe.add_parser("generate", help=help_, parents=[common])
    q.set_defaults(handler=cmd_pipeline_generate)
    q.add_argument("--root", type=Path, default=Path("."), help="repository root to write into (default: .)")
    q.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    help_ = "write a params profile's values into params.yaml (keeps comments)"
    q = pipe.add_parser("apply-profile", help=help_, parents=[common])
    q.set_defaults(handler=cmd_pipeline_apply_profile)
    q.add_argument("profile", type=Path, help="params overlay, e.g. profiles/paper.yaml")
    q.add_argument("--params-file", type=Path, default=Path("params.yaml"), help="file to update")

    help_ = "PR comment body: metrics, params and changed images since REV; exit 1 if either side has no metrics."
    p = add("metrics-diff", cmd_metrics_diff, help_)
    p.add_argument("--base", required=True, help="git revision to compare with, e.g. origin/main or HEAD~1")
    p.add_argument("--out", type=Path, required=True, help="markdown file to write, e.g. reports/metrics_diff.md")

    return parser


def _setup_logging(level: int, log_file: Path | None) -> None:
    """Log to stderr, and to ``log_file`` too if given (truncated: one file per pipeline job)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", handlers=handlers
    )


def _silence_stdout() -> None:
    """Point stdout's file descriptor at the null device, so the interpreter's last flush cannot fail again.

    The recipe of Python's ``signal`` documentation for a closed pipe (``BrokenPipeError``).
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stream without a descriptor, or a closed one
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jetatag`` console script and of ``python -m jetatag``; returns the exit status.

    A command line that does not parse exits through argparse (``SystemExit(2)``, or ``SystemExit(0)``
    for ``--help``/``--version``); see the module docstring for the other statuses.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        _setup_logging(getattr(args, "log_level", logging.INFO), getattr(args, "log_file", None))
        configure_process()  # before any handler imports torch: allocator thresholds, OpenMP spinning bounded
        args.handler(args)
        sys.stdout.flush()  # inside the try: a reader that went away is seen here, not at exit
    except BrokenPipeError:  # before OSError, its base class
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except UsageError as err:  # reported as argparse does, but returned rather than raised
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    except (ParamsError, StageError, OSError) as err:
        log.error("%s", err)
        return EXIT_ERROR
    return EXIT_OK


def run() -> NoReturn:
    """The process entry point (``jetatag`` console script, ``python -m jetatag``): exit with main's status.

    The objects a handler's imports build are frozen once imported, and those left alive at the end before
    exiting, so that neither the command's own collections nor the interpreter's teardown walk them
    (:mod:`jetatag.runtime`); :func:`main` alone leaves the collector as it was, for callers in a process
    that goes on.
    """
    declare_one_shot_process()
    status = main()
    freeze_before_exit()
    sys.exit(status)


if __name__ == "__main__":
    run()
