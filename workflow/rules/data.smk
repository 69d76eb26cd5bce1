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
    params:
        **stage_params("synth"),
    conda:
        CONDA_ENV
    cache: True
    shell:
        stage_shell("synth")


rule download:
    input:
        **stage_input("download"),
    output:
        **stage_output("download"),
    log:
        stage_log("download"),
    params:
        **stage_params("download"),
    conda:
        CONDA_ENV
    cache: True
    shell:
        stage_shell("download")


rule labels:
    input:
        **stage_input("labels"),
    output:
        **stage_output("labels"),
    log:
        stage_log("labels"),
    params:
        **stage_params("labels"),
    conda:
        CONDA_ENV
    cache: True
    shell:
        stage_shell("labels")


rule segment:
    input:
        **stage_input("segment"),
    output:
        **stage_output("segment"),
    log:
        stage_log("segment"),
    params:
        **stage_params("segment"),
    conda:
        CONDA_ENV
    cache: True
    shell:
        stage_shell("segment")
