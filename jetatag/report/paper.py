"""The paper's published figures ("Music Auto-tagging with Joint Embeddings", Table 1), for comparison.

ROC-AUC and PR-AUC on the MTAT top-50 test set, micro over (segment, tag) pairs as computed by
``tf.keras.metrics.AUC`` with its defaults (see :mod:`jetatag.evaluate.metrics`).
"""

from __future__ import annotations

PAPER_TABLE1: dict[str, dict[str, dict[str, float]]] = {
    "hcnn": {"noje": {"roc_auc": 0.9034, "pr_auc": 0.5137}, "je": {"roc_auc": 0.9185, "pr_auc": 0.5595}},
    "sincnet": {"noje": {"roc_auc": 0.8616, "pr_auc": 0.3937}, "je": {"roc_auc": 0.8823, "pr_auc": 0.4551}},
    "samplecnn": {"noje": {"roc_auc": 0.8744, "pr_auc": 0.4214}, "je": {"roc_auc": 0.8933, "pr_auc": 0.4853}},
    "samplecnn_se": {"noje": {"roc_auc": 0.8809, "pr_auc": 0.4456}, "je": {"roc_auc": 0.8840, "pr_auc": 0.4581}},
    "samplecnn_res": {"noje": {"roc_auc": 0.8758, "pr_auc": 0.4271}, "je": {"roc_auc": 0.8859, "pr_auc": 0.4915}},
    "samplecnn_rese": {"noje": {"roc_auc": 0.8775, "pr_auc": 0.4358}, "je": {"roc_auc": 0.8951, "pr_auc": 0.4903}},
}
"""Table 1 of the paper: ``PAPER_TABLE1[extractor][variant][metric]``."""
