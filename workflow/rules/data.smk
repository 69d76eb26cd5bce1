# Generated from jetatag/pipeline.py by `jetatag pipeline generate`: edit the stage list there, not here.
# The helpers named in the rules (inputs and params that depend on the config) are in common.smk.
# Data stages: the synthetic mirror (only for data.source: synthetic), acquire MTAT, select the top-N
# tags, decode into shards. Their outputs depend only on the code and the params they read, so they
# are eligible for the between-workflow cache: `snakemake --cache` with SNAKEMAKE_OUTPUT_CACHE set
# reuses them across clones.


# Synthetic MTAT mirror into data/synth when data.source is synthetic (else a note)
rule synth:
    input:
        code=[
            "jetatag/checksums.py",
            "jetatag/config.py",
            "jetatag/extractors.py",
            "jetatag/mtat.py",
            "jetatag/progress.py",
            "jetatag/synth/catalog.py",
            "jetatag/synth/clip.py",
            "jetatag/synth/concepts.py",
            "jetatag/synth/data/fitted.json",
            "jetatag/synth/data/fitted.schema.json",
            "jetatag/synth/data/instruments.json",
            "jetatag/synth/data/instruments.schema.json",
            "jetatag/synth/data/styles.json",
            "jetatag/synth/data/styles.schema.json",
            "jetatag/synth/data/tag_concepts.json",
            "jetatag/synth/data/tag_concepts.schema.json",
            "jetatag/synth/instruments.py",
            "jetatag/synth/labels.py",
            "jetatag/synth/mirror.py",
            "jetatag/synth/notebank.py",
            "jetatag/synth/render.py",
            "jetatag/synth/score.py",
            "jetatag/synth/stage.py",
            "jetatag/synth/styles.py",
            "jetatag/synth/tables.py",
            "jetatag/synth/voice.py",
        ],
    output:
        mirror=directory("data/synth"),
    log:
        "workflow/logs/synth.log",
    cache: True
    conda:
        CONDA_ENV
    params:
        values=param_values(
            "data.source",
            "synth.n_clips",
            "synth.clip_seconds",
            "synth.seed",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} synth {params.configfiles} --out {output.mirror}"


# Acquire MTAT (http(s) mirror, local folder, or data/synth for a synthetic source) into data/raw
rule download:
    input:
        synth=synthetic_only("data/synth"),
        code=[
            "jetatag/checksums.py",
            "jetatag/config.py",
            "jetatag/data/download.py",
            "jetatag/extractors.py",
            "jetatag/mtat.py",
            "jetatag/progress.py",
        ],
    output:
        raw=directory("data/raw"),
    log:
        "workflow/logs/download.log",
    cache: True
    conda:
        CONDA_ENV
    params:
        values=param_values("data.source"),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} download {params.configfiles} --synth data/synth --out {output.raw}"


# Top-N tags, split by folder, drop unusable clips
rule labels:
    input:
        raw="data/raw",
        code=[
            "jetatag/config.py",
            "jetatag/data/labels.py",
            "jetatag/extractors.py",
            "jetatag/mtat.py",
            "jetatag/progress.py",
        ],
    output:
        labels=directory("data/labels"),
    log:
        "workflow/logs/labels.log",
    cache: True
    conda:
        CONDA_ENV
    params:
        values=param_values("data.n_tags"),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} labels {params.configfiles} --raw {input.raw} --out {output.labels}"


# Decode, resample and shard the kept clips
rule segment:
    input:
        labels="data/labels",
        raw="data/raw",
        code=[
            "jetatag/audio.py",
            "jetatag/config.py",
            "jetatag/data/labels.py",
            "jetatag/data/segment.py",
            "jetatag/data/shards.py",
            "jetatag/extractors.py",
            "jetatag/mtat.py",
            "jetatag/parallel.py",
            "jetatag/progress.py",
        ],
    output:
        audio=directory("data/audio"),
    log:
        "workflow/logs/segment.log",
    cache: True
    conda:
        CONDA_ENV
    params:
        values=param_values(
            "audio.sample_rate",
            "audio.peak_normalize",
            "audio.mu_law",
            "audio.dtype",
            "audio.shard_mb",
            "audio.short_clips",
            "model.hcnn_crop_samples",
            "model.samplecnn_crop_samples",
        ),
        configfiles=params_options(),
    shell:
        "python -m jetatag --log-file {log} segment {params.configfiles} --labels {input.labels} --raw {input.raw} --out {output.audio}"
