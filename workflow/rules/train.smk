# Generated from jetatag/pipeline.py by `jetatag pipeline generate`: edit the stage list there, not here.
# The helpers named in the rules (inputs and params that depend on the config) are in common.smk.
# Training: JE stage 1, JE stage 2 on the frozen stage-1 extractor, and the no-JE baseline. Each job
# holds the `gpu` resource; workflow/profiles/default allows one at a time.


# JE stage 1: tag autoencoder + extractor + projection head
rule stage1:
    input:
        audio="data/audio",
        code=[
            "jetatag/checksums.py",
            "jetatag/config.py",
            "jetatag/data/dataset.py",
            "jetatag/data/shards.py",
            "jetatag/extractors.py",
            "jetatag/models/__init__.py",
            "jetatag/models/bn_kernels.py",
            "jetatag/models/bn_relu.py",
            "jetatag/models/common.py",
            "jetatag/models/conv3x3.py",
            "jetatag/models/harmonic.py",
            "jetatag/models/hcnn.py",
            "jetatag/models/heads.py",
            "jetatag/models/losses.py",
            "jetatag/models/same_conv.py",
            "jetatag/models/samplecnn.py",
            "jetatag/models/sinc.py",
            "jetatag/models/sincnet.py",
            "jetatag/models/tagger.py",
            "jetatag/models/winograd.py",
            "jetatag/progress.py",
            "jetatag/train/device.py",
            "jetatag/train/geometry.py",
            "jetatag/train/loop.py",
            "jetatag/train/resume.py",
            "jetatag/train/schedule.py",
            "jetatag/train/setup.py",
            "jetatag/train/stage1.py",
            "jetatag/train/validation.py",
        ],
    output:
        model="models/{extractor}/je/stage1.pt",
        live=directory("reports/train/{extractor}-stage1"),
    log:
        "workflow/logs/stage1-{extractor}.log",
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        extractor="{extractor}",
        values=param_values(
            "model",
            "train.batch_size",
            "train.seed",
            "train.precision",
            "train.conv_l2",
            "train.valid_crops",
            "train.optimizer_state",
            "train.batch_order",
            "train.stage1_schedule",
            "train.pair_target",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} stage1 {params.configfiles} --extractor {params.extractor} --audio {input.audio} --out {output.model} --live {output.live}"


# JE stage 2: classifier on the frozen stage-1 extractor
rule stage2:
    input:
        audio="data/audio",
        stage1="models/{extractor}/je/stage1.pt",
        code=[
            "jetatag/checksums.py",
            "jetatag/config.py",
            "jetatag/data/dataset.py",
            "jetatag/data/shards.py",
            "jetatag/extractors.py",
            "jetatag/models/__init__.py",
            "jetatag/models/bn_kernels.py",
            "jetatag/models/bn_relu.py",
            "jetatag/models/common.py",
            "jetatag/models/conv3x3.py",
            "jetatag/models/harmonic.py",
            "jetatag/models/hcnn.py",
            "jetatag/models/heads.py",
            "jetatag/models/losses.py",
            "jetatag/models/same_conv.py",
            "jetatag/models/samplecnn.py",
            "jetatag/models/sinc.py",
            "jetatag/models/sincnet.py",
            "jetatag/models/tagger.py",
            "jetatag/models/winograd.py",
            "jetatag/progress.py",
            "jetatag/train/device.py",
            "jetatag/train/embeddings.py",
            "jetatag/train/loop.py",
            "jetatag/train/resume.py",
            "jetatag/train/schedule.py",
            "jetatag/train/setup.py",
            "jetatag/train/stage2.py",
            "jetatag/train/validation.py",
        ],
    output:
        model="models/{extractor}/je/model.pt",
        live=directory("reports/train/{extractor}-stage2"),
    log:
        "workflow/logs/stage2-{extractor}.log",
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        extractor="{extractor}",
        values=param_values(
            "model",
            "train.batch_size",
            "train.seed",
            "train.precision",
            "train.conv_l2",
            "train.valid_crops",
            "train.optimizer_state",
            "train.batch_order",
            "train.stage2_schedule",
            "train.classifier_bias",
            "train.je_embedding_cache",
            "train.je_cache_crops",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} stage2 {params.configfiles} --extractor {params.extractor} --variant je --audio {input.audio} --stage1 {input.stage1} --out {output.model} --live {output.live}"


# No-JE baseline: extractor + classifier trained end to end
rule baseline:
    input:
        audio="data/audio",
        code=[
            "jetatag/checksums.py",
            "jetatag/config.py",
            "jetatag/data/dataset.py",
            "jetatag/data/shards.py",
            "jetatag/extractors.py",
            "jetatag/models/__init__.py",
            "jetatag/models/bn_kernels.py",
            "jetatag/models/bn_relu.py",
            "jetatag/models/common.py",
            "jetatag/models/conv3x3.py",
            "jetatag/models/harmonic.py",
            "jetatag/models/hcnn.py",
            "jetatag/models/heads.py",
            "jetatag/models/losses.py",
            "jetatag/models/same_conv.py",
            "jetatag/models/samplecnn.py",
            "jetatag/models/sinc.py",
            "jetatag/models/sincnet.py",
            "jetatag/models/tagger.py",
            "jetatag/models/winograd.py",
            "jetatag/progress.py",
            "jetatag/train/device.py",
            "jetatag/train/embeddings.py",
            "jetatag/train/loop.py",
            "jetatag/train/resume.py",
            "jetatag/train/schedule.py",
            "jetatag/train/setup.py",
            "jetatag/train/stage2.py",
            "jetatag/train/validation.py",
        ],
    output:
        model="models/{extractor}/noje/model.pt",
        live=directory("reports/train/{extractor}-baseline"),
    log:
        "workflow/logs/baseline-{extractor}.log",
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        extractor="{extractor}",
        values=param_values(
            "model",
            "train.batch_size",
            "train.seed",
            "train.precision",
            "train.conv_l2",
            "train.valid_crops",
            "train.optimizer_state",
            "train.batch_order",
            "train.stage2_schedule",
            "train.classifier_bias",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} stage2 {params.configfiles} --extractor {params.extractor} --variant noje --audio {input.audio} --out {output.model} --live {output.live}"
