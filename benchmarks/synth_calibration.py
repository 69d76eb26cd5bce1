"""Calibration and learnability of the synthetic MTAT mirror against the real MTAT tag statistics.

Labels (issue 3 targets): tags drawn by the real generator (``design_clip``: plans, scores, onset rates and the
fitted tag model; no audio needed) for ``--label-clips`` clips laid out by the real catalogue:

* Spearman correlation of the top-50 tag frequencies with MTAT's (>= 0.9);
* the ``labels`` stage's top-50 selection (``jetatag.data.labels.top_tags``) equals MTAT's top-50 set;
* Pearson correlation of the off-diagonal 50x50 co-occurrence normalised by counts, ``P(u | t) = C_tu / C_tt``,
  with MTAT's (>= 0.7; the symmetric ``C_tu / sqrt(C_tt C_uu)`` is printed too);
* mean number of top-50 tags per clip within 20 % of MTAT's 2.70 (and the share of clips with none).

Learnability: a mirror of ``--audio-clips`` clips of ``--seconds`` is written with ``write_mirror``, its mp3s are
read back from the zip pieces, and a probe (per-clip log-mel mean and std, librosa; one logistic regression per
tag, scikit-learn, L2 strength chosen by track-grouped CV inside the training clips) is trained on folders 0-c
(13/16 = 81 % of clips) and scored on folders d-f against the written labels of the mirror's top-50 tags,
clips with none dropped as ``labels`` does. Target: macro ROC-AUC >= 0.80 and at most 5 tags >= 0.99. A
5-fold CV grouped by track (80/20 each) is printed as a stability check. Usage::

    python benchmarks/synth_calibration.py [--stats benchmarks/data/mtat_tag_stats.json]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import zipfile
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from scipy import stats as sstats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from jetatag.data.labels import top_tags
from jetatag.mtat import ANNOTATIONS, SPLIT_OF_FOLDER, TAGS_188, ZIP_PIECES, read_annotations
from jetatag.synth.catalog import build_catalog
from jetatag.synth.clip import design_clip
from jetatag.synth.mirror import write_mirror

STATS = Path(__file__).resolve().parent / "data" / "mtat_tag_stats.json"
"""MTAT's aggregated tag statistics, shipped with the repository (source and licence: ``benchmarks/data/README.md``)."""


def label_matrix(n_clips: int, seconds: float, seed: int) -> np.ndarray:
    """(n_clips, 188) tags exactly as ``write_mirror`` would write them for these arguments."""
    specs = build_catalog(n_clips, seed)
    out = np.zeros((n_clips, len(TAGS_188)), dtype=np.uint8)
    for spec in tqdm(specs, desc="labels", unit="clip"):
        out[spec.index] = design_clip(seed, spec.track, spec.index, seconds).tags
    return out


def label_report(labels: np.ndarray, mtat: dict, title: str) -> None:
    """Print the four label targets for a (n_clips, 188) matrix against MTAT's statistics."""
    top50 = mtat["top50_in_frequency_order"]
    cols = [TAGS_188.index(t) for t in top50]
    counts = labels.sum(axis=0)
    real = np.array([mtat["count_188_all_clips"][t] for t in top50], dtype=float)
    rho = sstats.spearmanr(counts[cols], real).statistic
    chosen = [TAGS_188[c] for c in top_tags(labels, TAGS_188, 50)]
    missing, extra = sorted(set(top50) - set(chosen)), sorted(set(chosen) - set(top50))
    sub = labels[:, cols].astype(np.int64)
    co = sub.T @ sub
    real_co = np.array(mtat["top50_cooccurrence_all_clips"], dtype=float)
    off = ~np.eye(50, dtype=bool)
    cond = co / np.maximum(np.diag(co), 1)[:, None]
    real_cond = real_co / np.diag(real_co)[:, None]
    sym = co / np.sqrt(np.maximum(np.outer(np.diag(co), np.diag(co)), 1))
    real_sym = real_co / np.sqrt(np.outer(np.diag(real_co), np.diag(real_co)))
    r_cond = float(np.corrcoef(cond[off], real_cond[off])[0, 1])
    r_sym = float(np.corrcoef(sym[off], real_sym[off])[0, 1])
    per_clip = sub.sum(axis=1)
    hist = np.array(mtat["n_top50_tags_per_clip_histogram"], dtype=float)
    real_mean = float((hist * np.arange(len(hist))).sum() / hist.sum())
    mean = float(per_clip.mean())
    # Ties at the 50th place: the count of the 50th chosen tag equals that of the 51st.
    ranked = top_tags(labels, TAGS_188, 51)
    tie = counts[ranked[49]] == counts[ranked[50]]
    print(f"\n== {title}: {len(labels)} clips ==")
    print(f"Spearman(top-50 frequencies, MTAT)          = {rho:.4f}   (target >= 0.9)")
    print(
        f"labels top-50 == MTAT top-50                = {not missing and not extra}   "
        f"(missing {missing}, extra {extra}, tie at 50th place: {bool(tie)})"
    )
    print(f"Pearson(off-diagonal P(u|t), MTAT)          = {r_cond:.4f}   (target >= 0.7)")
    print(f"Pearson(off-diagonal C/sqrt(CtCu), MTAT)    = {r_sym:.4f}")
    print(
        f"mean top-50 tags per clip                   = {mean:.3f}   (MTAT {real_mean:.3f}; "
        f"ratio {mean / real_mean:.3f}, target within 0.8..1.2)"
    )
    print(
        f"clips with no top-50 tag                    = {np.mean(per_clip == 0):.3f}   "
        f"(MTAT {hist[0] / hist.sum():.3f})"
    )
    print(f"top-50 tags per clip histogram 0..8         = {np.bincount(per_clip, minlength=9)[:9].tolist()}")
    freq = counts[cols] / len(labels)
    print("tag: synthetic frequency / MTAT frequency")
    print("  " + ", ".join(f"{t} {f:.3f}/{r / mtat['n_clips']:.3f}" for t, f, r in zip(top50, freq, real, strict=True)))


def read_mirror(folder: Path) -> tuple[list[str], list[np.ndarray], int]:
    """mp3 member names and decoded audio from a mirror's zip pieces (concatenated in memory)."""
    whole = b"".join((folder / name).read_bytes() for name in ZIP_PIECES)
    names, waves, sr = [], [], 0
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        for name in tqdm([n for n in archive.namelist() if n.endswith(".mp3")], desc="decode", unit="clip"):
            wave, sr = sf.read(io.BytesIO(archive.read(name)), dtype="float32")
            names.append(name)
            waves.append(wave)
    return names, waves, sr


def logmel_stats(wave: np.ndarray, sr: int) -> np.ndarray:
    """Per-clip features: mean and std over time of a 64-band log-mel spectrogram of the peak-normalised clip."""
    wave = wave / (np.abs(wave).max() + 1e-9)  # as the segment stage feeds the models
    mel = librosa.feature.melspectrogram(y=wave, sr=sr, n_fft=512, hop_length=256, n_mels=64)
    logmel = librosa.power_to_db(mel, ref=1.0)
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1)])


PROBE_CS = (0.01, 0.03, 0.1, 0.3, 1.0)
"""Inverse L2 strengths tried for the probe; one is chosen by grouped 3-fold CV inside the training clips."""


def tag_aucs(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, c: float) -> np.ndarray:
    """ROC-AUC per tag (NaN where train or test lacks a class) of per-tag logistic regressions on ``x``."""
    scaler = StandardScaler().fit(x[train])
    xtr, xte = scaler.transform(x[train]), scaler.transform(x[test])
    aucs = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        if len(np.unique(y[train, j])) == 2 and len(np.unique(y[test, j])) == 2:
            model = LogisticRegression(C=c, max_iter=3000).fit(xtr, y[train, j])
            aucs[j] = roc_auc_score(y[test, j], model.decision_function(xte))
    return aucs


def choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """The PROBE_CS entry with the best mean macro ROC-AUC over a 3-fold CV grouped by track."""
    folds = list(GroupKFold(3).split(x, y, groups))
    scores = [np.mean([np.nanmean(tag_aucs(x, y, tr, te, c)) for tr, te in folds]) for c in PROBE_CS]
    return PROBE_CS[int(np.argmax(scores))]


def probe(folder: Path, mtat_top50: list[str]) -> None:
    """Train/score the log-mel + logistic-regression probe on a written mirror and print the results."""
    annotations = read_annotations(folder / ANNOTATIONS)
    names, waves, sr = read_mirror(folder)
    features = dict(zip(names, (logmel_stats(w, sr) for w in tqdm(waves, desc="features", unit="clip")), strict=True))
    cols = top_tags(annotations.labels, annotations.tags, 50)
    tags = [annotations.tags[c] for c in cols]
    y = annotations.labels[:, cols]
    keep = y.any(axis=1)
    x = np.stack([features[p] for p in annotations.mp3_path])[keep]
    y = y[keep]
    paths = np.asarray(annotations.mp3_path)[keep]
    track = np.array([p.rsplit("-", 2)[0] for p in paths])  # segments of one track share it
    train = np.array([SPLIT_OF_FOLDER[p[0]] != "test" for p in paths])
    c = choose_c(x[train], y[train], track[train])
    aucs = tag_aucs(x, y, np.flatnonzero(train), np.flatnonzero(~train), c)
    scored = ~np.isnan(aucs)
    values = aucs[scored]
    print(
        f"\n== learnability probe: {keep.sum()} clips with a top-50 tag ({train.sum()} train folders 0-c, "
        f"{(~train).sum()} test folders d-f), {scored.sum()} tags scorable, C = {c} (chosen on train) =="
    )
    print(f"probe tags == MTAT top-50                   = {set(tags) == set(mtat_top50)}")
    print(f"macro ROC-AUC                               = {values.mean():.4f}   (target >= 0.80)")
    easy = [t for t, a in zip(tags, aucs, strict=True) if a >= 0.99]
    print(f"tags with ROC-AUC >= 0.99                   = {len(easy)}   (target <= 5) {easy}")
    ranked = sorted((a, t) for t, a in zip(tags, aucs, strict=True) if not np.isnan(a))[::-1]
    print("per-tag ROC-AUC: " + ", ".join(f"{t} {a:.3f}" for a, t in ranked))
    folds = [np.nanmean(tag_aucs(x, y, tr, te, c)) for tr, te in GroupKFold(5).split(x, y, track)]
    print(
        f"stability: 5-fold CV grouped by track (80 % train / 20 % test each), macro ROC-AUC per fold "
        f"{np.round(folds, 4).tolist()}, mean {np.mean(folds):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stats", type=Path, default=STATS)
    parser.add_argument("--label-clips", type=int, default=10000)
    parser.add_argument("--audio-clips", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mirror", type=Path, help="write (or reuse, if it has SHA256SUMS) the probe mirror here")
    parser.add_argument("--skip-labels", action="store_true")
    parser.add_argument("--skip-audio", action="store_true")
    args = parser.parse_args()
    mtat = json.loads(args.stats.read_text(encoding="utf-8"))
    if not args.skip_labels:
        t0 = time.perf_counter()
        labels = label_matrix(args.label_clips, args.seconds, args.seed)
        print(f"drew tags of {args.label_clips} clips ({args.seconds} s scores) in {time.perf_counter() - t0:.1f} s")
        label_report(labels, mtat, f"label sampler (real generator, seed {args.seed})")
    if not args.skip_audio:
        with tempfile.TemporaryDirectory() as tmp:
            folder = args.mirror or Path(tmp) / "mirror"
            if not (folder / "SHA256SUMS").is_file():
                t0 = time.perf_counter()
                write_mirror(
                    folder, n_clips=args.audio_clips, clip_seconds=args.seconds, seed=args.seed, workers=args.workers
                )
                print(f"wrote {args.audio_clips} clips x {args.seconds} s in {time.perf_counter() - t0:.1f} s")
            label_report(read_annotations(folder / ANNOTATIONS).labels, mtat, f"written annotations of {folder}")
            probe(folder, mtat["top50_in_frequency_order"])


if __name__ == "__main__":
    main()
