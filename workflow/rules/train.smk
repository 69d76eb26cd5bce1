# Training: JE stage 1, JE stage 2 on the frozen stage-1 extractor, and the no-JE baseline.
# Each job holds the `gpu` resource; workflow/profiles/default allows one at a time.


rule stage1:
    input:
        **stage_input("stage1"),
    output:
        **stage_output("stage1"),
    log:
        stage_log("stage1"),
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        **stage_params("stage1"),
    shell:
        stage_shell("stage1")


rule stage2:
    input:
        **stage_input("stage2"),
    output:
        **stage_output("stage2"),
    log:
        stage_log("stage2"),
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        **stage_params("stage2"),
    shell:
        stage_shell("stage2")


rule baseline:
    input:
        **stage_input("baseline"),
    output:
        **stage_output("baseline"),
    log:
        stage_log("baseline"),
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        **stage_params("baseline"),
    shell:
        stage_shell("baseline")
