# Evaluation of every trained model on the test clips (both metric protocols, embeddings for Figure 2),
# and the reference probe.


rule evaluate:
    input:
        **stage_input("evaluate"),
    output:
        **stage_output("evaluate"),
    log:
        stage_log("evaluate"),
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        **stage_params("evaluate"),
    shell:
        stage_shell("evaluate")


# The reference probe: logistic regression on log-mel mean/std features (CPU only, no model to load).
rule probe:
    input:
        **stage_input("probe"),
    output:
        **stage_output("probe"),
    log:
        stage_log("probe"),
    conda:
        CONDA_ENV
    params:
        **stage_params("probe"),
    shell:
        stage_shell("probe")
