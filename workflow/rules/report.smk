# Generated from jetatag/pipeline.py by `jetatag pipeline generate`: edit the stage list there, not here.
# The helpers named in the rules (inputs and params that depend on the config) are in common.smk.
# Reports: Figure 2 with its k-NN agreements and the per-tag ROC-AUC plot, then Table 1 with
# metrics.json (headline numbers) and table1.json (the other numbers).


# Figure 2 (t-SNE of Harmonic-CNN h, no JE / tags / JE) with k-NN tag agreement, per-tag ROC-AUC plot
rule figure2:
    input:
        arrays=[
            "data/eval/hcnn-noje.npz",
            "data/eval/hcnn-je.npz",
        ],
        evals=config_paths(
            "reports/eval/${report.per_tag_extractor}-noje.json",
            "reports/eval/${report.per_tag_extractor}-je.json",
        ),
        code=[
            "jetatag/config.py",
            "jetatag/evaluate/arrays.py",
            "jetatag/extractors.py",
            "jetatag/report/figure2.py",
            "jetatag/report/knn.py",
        ],
    output:
        figure=report(
            "reports/figure2.png",
            caption="../report/figure2.rst",
            category="Results",
        ),
        stats="reports/figure2.json",
        per_tag=report(
            "reports/per_tag_auc.png",
            caption="../report/per_tag_auc.rst",
            category="Results",
        ),
    log:
        "workflow/logs/figure2.log",
    conda:
        CONDA_ENV
    params:
        values=param_values(
            "report.tsne_tag",
            "report.tsne_perplexity",
            "report.per_tag_extractor",
            "report.seed",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} figure2 {params.configfiles} --arrays data/eval --evals reports/eval --out {output.figure} --out-stats {output.stats} --out-per-tag {output.per_tag}"


# Table 1 (markdown), flat metrics.json (headline numbers) and table1.json (the other numbers)
rule table1:
    input:
        evals=[
            "reports/eval/hcnn-noje.json",
            "reports/eval/hcnn-je.json",
            "reports/eval/sincnet-noje.json",
            "reports/eval/sincnet-je.json",
            "reports/eval/samplecnn-noje.json",
            "reports/eval/samplecnn-je.json",
            "reports/eval/samplecnn_se-noje.json",
            "reports/eval/samplecnn_se-je.json",
            "reports/eval/samplecnn_res-noje.json",
            "reports/eval/samplecnn_res-je.json",
            "reports/eval/samplecnn_rese-noje.json",
            "reports/eval/samplecnn_rese-je.json",
        ],
        arrays=[
            "data/eval/hcnn-noje.npz",
            "data/eval/hcnn-je.npz",
            "data/eval/sincnet-noje.npz",
            "data/eval/sincnet-je.npz",
            "data/eval/samplecnn-noje.npz",
            "data/eval/samplecnn-je.npz",
            "data/eval/samplecnn_se-noje.npz",
            "data/eval/samplecnn_se-je.npz",
            "data/eval/samplecnn_res-noje.npz",
            "data/eval/samplecnn_res-je.npz",
            "data/eval/samplecnn_rese-noje.npz",
            "data/eval/samplecnn_rese-je.npz",
        ],
        probe="reports/eval/probe.json",
        train=[
            "reports/train/hcnn-stage1",
            "reports/train/sincnet-stage1",
            "reports/train/samplecnn-stage1",
            "reports/train/samplecnn_se-stage1",
            "reports/train/samplecnn_res-stage1",
            "reports/train/samplecnn_rese-stage1",
        ],
        figure2="reports/figure2.json",
        code=[
            "jetatag/config.py",
            "jetatag/evaluate/arrays.py",
            "jetatag/evaluate/bootstrap.py",
            "jetatag/evaluate/metrics.py",
            "jetatag/extractors.py",
            "jetatag/report/figure2.py",
            "jetatag/report/geometry.py",
            "jetatag/report/knn.py",
            "jetatag/report/paper.py",
            "jetatag/report/table1.py",
        ],
    output:
        table=report(
            "reports/table1.md",
            caption="../report/table1.rst",
            category="Results",
        ),
        metrics="reports/metrics.json",
        details="reports/table1.json",
    log:
        "workflow/logs/table1.log",
    conda:
        CONDA_ENV
    params:
        values=param_values(
            "report.profile",
            "audio.mu_law",
            "model.pair_loss",
            "model.tag_encoder_norm",
            "model.hcnn_head",
            "model.hcnn_front_end",
            "model.sinc_design",
            "model.init_and_bn",
            "model.se_squeeze",
            "train.pair_target",
            "train.classifier_bias",
            "train.optimizer_state",
            "train.batch_order",
            "train.conv_l2",
            "train.je_embedding_cache",
            "train.precision",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} table1 {params.configfiles} --evals reports/eval --arrays data/eval --probe {input.probe} --train reports/train --figure2 {input.figure2} --out-table {output.table} --out-metrics {output.metrics} --out-details {output.details}"
