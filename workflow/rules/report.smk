# Reports: Figure 2 with its k-NN agreements and the per-tag ROC-AUC plot, then Table 1 with metrics.json
# (headline numbers) and table1.json (the other numbers).


rule table1:
    input:
        **stage_input("table1"),
    output:
        **stage_output("table1"),
    log:
        stage_log("table1"),
    conda:
        CONDA_ENV
    params:
        **stage_params("table1"),
    shell:
        stage_shell("table1")


rule figure2:
    input:
        **stage_input("figure2"),
    output:
        **stage_output("figure2"),
    log:
        stage_log("figure2"),
    conda:
        CONDA_ENV
    params:
        **stage_params("figure2"),
    shell:
        stage_shell("figure2")
