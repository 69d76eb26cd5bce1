# Evaluation of every trained model on the test clips (both metric protocols, embeddings for Figure 2).


rule evaluate:
    input:
        **stage_input("evaluate"),
    output:
        **stage_output("evaluate"),
    log:
        stage_log("evaluate"),
    params:
        **stage_params("evaluate"),
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    shell:
        stage_shell("evaluate")
