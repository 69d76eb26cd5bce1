# Data stages: the synthetic mirror (only for data.source: synthetic), acquire MTAT, select the top-N
# tags, decode into shards. Their outputs depend only on the code and the params they read, so they are
# eligible for the between-workflow cache: `snakemake --cache` with SNAKEMAKE_OUTPUT_CACHE set reuses
# them across clones.


rule synth:
    input:
        **stage_input("synth"),
    output:
        **stage_output("synth"),
    log:
        stage_log("synth"),
    cache: True
    conda:
        CONDA_ENV
    params:
        **stage_params("synth"),
    shell:
        stage_shell("synth")


rule download:
    input:
        **stage_input("download"),
    output:
        **stage_output("download"),
    log:
        stage_log("download"),
    cache: True
    conda:
        CONDA_ENV
    params:
        **stage_params("download"),
    shell:
        stage_shell("download")


rule labels:
    input:
        **stage_input("labels"),
    output:
        **stage_output("labels"),
    log:
        stage_log("labels"),
    cache: True
    conda:
        CONDA_ENV
    params:
        **stage_params("labels"),
    shell:
        stage_shell("labels")


rule segment:
    input:
        **stage_input("segment"),
    output:
        **stage_output("segment"),
    log:
        stage_log("segment"),
    cache: True
    conda:
        CONDA_ENV
    params:
        **stage_params("segment"),
    shell:
        stage_shell("segment")
