"""Stage ``probe``: a reference row for Table 1, logistic regression on log-mel mean/std features.

One logistic regression per tag (one-vs-rest, L2, fixed ``probe.c``) on standardised per-clip log-mel
statistics (:mod:`jetatag.evaluate.logmel`), fitted on the train split and scored on the test split
with the literature protocol (clip-level macro ROC-AUC and AP) and the same bootstrap resamples as
``evaluate`` (same clips, ``evaluate.bootstrap`` and ``evaluate.seed``). Nothing is tuned on test: the
knobs are fixed in ``params.yaml``. The number says how much of the tags a bag of spectral frames
already gives away, so a learnt extractor's gain is read against it rather than against chance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from jetatag.config import Params
from jetatag.data.dataset import AudioIndex
from jetatag.errors import StageError
from jetatag.evaluate.bootstrap import CI_LEVEL, draw_resamples, macro_resamples, percentile_ci
from jetatag.evaluate.logmel import MelOptions, clip_features
from jetatag.evaluate.metrics import macro_scores
from jetatag.evaluate.summary import json_safe
from jetatag.io import write_json

log = logging.getLogger(__name__)

PROBE_NAME = "Log-mel mean/std + logistic regression (probe)"
"""How Table 1 labels the probe's row."""


@dataclass(frozen=True)
class ProbeScores:
    """Test-clip scores of the per-tag regressions, and the tags they could not learn properly."""

    scores: np.ndarray  # (n_test, n_tags) probabilities
    constant: list[int]  # tags with one class in train: scored by the train prevalence
    unconverged: list[int]  # tags whose lbfgs run hit max_iter


def fit_and_score(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, c: float, max_iter: int
) -> ProbeScores:
    """Fit one L2 logistic regression per tag on standardised ``x_train`` and score ``x_test``.

    Parameters
    ----------
    x_train : [shape=(n_train, d)] features; x_test : [shape=(n_test, d)]
    y_train : 0/1 [shape=(n_train, n_tags)]
    c : float > 0, inverse regularisation strength (scikit-learn's ``C``)
    max_iter : int >= 1, lbfgs iterations per tag

    Returns
    -------
    :class:`ProbeScores`; a tag whose train labels are all 0 (or all 1) cannot be fitted and gets its
    train prevalence as a constant score (chance level on test).
    """
    scaler = StandardScaler().fit(x_train)  # statistics of the train split only
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    positive = np.asarray(y_train) != 0
    scores = np.empty((len(x_test), positive.shape[1]))
    constant, unconverged = [], []
    for j in range(positive.shape[1]):
        if positive[:, j].all() or not positive[:, j].any():
            scores[:, j] = positive[:, j].mean()
            constant.append(j)
            continue
        model = LogisticRegression(C=c, max_iter=max_iter).fit(x_train, positive[:, j])
        scores[:, j] = model.predict_proba(x_test)[:, 1]
        if model.n_iter_[0] >= max_iter:
            unconverged.append(j)
    return ProbeScores(scores, constant, unconverged)


def _names(tags: Sequence[str], columns: list[int]) -> list[str]:
    return [tags[j] for j in columns]


def run_probe(params: Params, *, audio_dir: Path, out_json: Path) -> dict[str, Any]:
    """Fit the probe on the train clips of ``audio_dir``, score its test clips, write ``out_json``; return it."""
    probe = params.probe
    index = AudioIndex(audio_dir)
    train, test = index.frame("train"), index.frame("test")
    for split, frame in (("train", train), ("test", test)):
        if frame.empty:
            raise StageError(f"{audio_dir}: no clips in split {split!r}; the probe needs train and test clips")
    options = MelOptions(index.sample_rate, probe.n_mels, probe.n_fft, probe.hop_length)
    log.info(
        "probe: log-mel mean/std (%d mels) of %d train + %d test clips, workers %d",
        probe.n_mels,
        len(train),
        len(test),
        probe.workers,
    )
    tic = time.perf_counter()
    x_train = clip_features(index.audio_dir, train, options, workers=probe.workers, desc="probe train")
    x_test = clip_features(index.audio_dir, test, options, workers=probe.workers, desc="probe test")
    features_s = time.perf_counter() - tic
    y_train = np.stack(train["tags"].to_numpy()).astype(np.uint8)  # (n_train, n_tags)
    y_test = np.stack(test["tags"].to_numpy()).astype(np.uint8)  # (n_test, n_tags)

    fitted = fit_and_score(x_train, y_train, x_test, c=probe.c, max_iter=probe.max_iter)
    if fitted.constant:
        log.warning(
            "probe: no positive or no negative train clip, scored at chance: %s", _names(index.tags, fitted.constant)
        )
    if fitted.unconverged:
        log.warning(
            "probe: lbfgs stopped at probe.max_iter %d before converging for: %s",
            probe.max_iter,
            _names(index.tags, fitted.unconverged),
        )
    literature = macro_scores(y_test, fitted.scores, index.tags)
    resamples = draw_resamples(len(test), params.evaluate.bootstrap, seed=params.evaluate.seed)  # as evaluate draws
    boot = macro_resamples(y_test, fitted.scores, resamples)

    source = params.data.source
    record = {
        "model": PROBE_NAME,
        "dataset": {
            "name": "synthetic" if source == "synthetic" else "MTAT",
            "source": source,
            "split": "test",
            "sample_rate": index.sample_rate,
            "n_tags": len(index.tags),
        },
        "n_train_clips": len(train),
        "n_test_clips": len(test),
        "features": {
            "kind": "mean and std over frames of each mel band, 10 log10(max(mel power, 1e-10)) dB",
            "dim": int(x_train.shape[1]),
            "n_mels": probe.n_mels,
            "n_fft": probe.n_fft,
            "hop_length": probe.hop_length,
        },
        "classifier": {"kind": "per-tag L2 logistic regression on standardised features", "c": probe.c},
        "constant_tags": _names(index.tags, fitted.constant),
        "literature": {
            "roc_auc": literature["roc_auc"],
            "ap": literature["ap"],
            "ci95": {m: percentile_ci(boot[m], estimate=literature[m]) for m in ("roc_auc", "ap")},
            "pooling": "macro over tags, clip scores",
            "n_tags": literature["n_tags"],
            "excluded_tags": literature["excluded_tags"],
        },
        "bootstrap": {
            "unit": "clip",
            "resamples": params.evaluate.bootstrap,
            "seed": params.evaluate.seed,
            "level": CI_LEVEL,
            "method": "percentile",
        },
    }
    record = json_safe(record)
    write_json(out_json, record)
    log.info(
        "probe: macro ROC-AUC %.4f AP %.4f on %d test clips (features %.1f s, total %.1f s) -> %s",
        literature["roc_auc"],
        literature["ap"],
        len(test),
        features_s,
        time.perf_counter() - tic,
        out_json,
    )
    return record
