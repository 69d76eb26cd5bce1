# Generated from jetatag/pipeline.py by `jetatag pipeline generate`: edit the stage list there, not here.
# The helpers named in the rules (inputs and params that depend on the config) are in common.smk.
# Evaluation of every trained model on the test clips (both metric protocols, embeddings for Figure
# 2), and the reference probe.


# Score the test clips: paper (micro) and literature (macro) metrics, embeddings
rule evaluate:
    input:
        model="models/{extractor}/{variant}/model.pt",
        audio="data/audio",
        code=[
            "jetatag/config.py",
            "jetatag/data/dataset.py",
            "jetatag/data/shards.py",
            "jetatag/evaluate/arrays.py",
            "jetatag/evaluate/bootstrap.py",
            "jetatag/evaluate/metrics.py",
            "jetatag/evaluate/retrieval.py",
            "jetatag/evaluate/stage.py",
            "jetatag/evaluate/summary.py",
            "jetatag/extractors.py",
            "jetatag/models/__init__.py",
            "jetatag/models/bn_kernels.py",
            "jetatag/models/bn_relu.py",
            "jetatag/models/common.py",
            "jetatag/models/conv3x3.py",
            "jetatag/models/harmonic.py",
            "jetatag/models/hcnn.py",
            "jetatag/models/heads.py",
            "jetatag/models/same_conv.py",
            "jetatag/models/samplecnn.py",
            "jetatag/models/sinc.py",
            "jetatag/models/sincnet.py",
            "jetatag/models/tagger.py",
            "jetatag/models/winograd.py",
            "jetatag/progress.py",
        ],
    output:
        metrics="reports/eval/{extractor}-{variant}.json",
        arrays="data/eval/{extractor}-{variant}.npz",
    log:
        "workflow/logs/evaluate-{extractor}-{variant}.log",
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        extractor="{extractor}",
        variant="{variant}",
        values=param_values(
            "data.source",
            "evaluate.n_crops",
            "evaluate.bootstrap",
            "evaluate.seed",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} evaluate {params.configfiles} --model {input.model} --audio {input.audio} --out {output.metrics} --arrays {output.arrays}"


# Reference row: logistic regression on log-mel mean/std features, train split -> test split
rule probe:
    input:
        audio="data/audio",
        code=[
            "jetatag/config.py",
            "jetatag/data/dataset.py",
            "jetatag/data/shards.py",
            "jetatag/evaluate/arrays.py",
            "jetatag/evaluate/bootstrap.py",
            "jetatag/evaluate/logmel.py",
            "jetatag/evaluate/metrics.py",
            "jetatag/evaluate/probe.py",
            "jetatag/evaluate/retrieval.py",
            "jetatag/evaluate/summary.py",
            "jetatag/extractors.py",
            "jetatag/parallel.py",
            "jetatag/progress.py",
        ],
    output:
        metrics="reports/eval/probe.json",
    log:
        "workflow/logs/probe.log",
    conda:
        CONDA_ENV
    params:
        values=param_values(
            "data.source",
            "probe.n_mels",
            "probe.n_fft",
            "probe.hop_length",
            "probe.c",
            "probe.max_iter",
            "evaluate.bootstrap",
            "evaluate.seed",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} probe {params.configfiles} --audio {input.audio} --out {output.metrics}"
