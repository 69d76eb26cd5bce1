# Config validation and the helpers that turn a stage of jetatag/pipeline.py into a rule.
import json
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow's own jetatag (the repository holding this Snakefile), not whatever the environment
# installed: the rules and the commands (`python -m jetatag`, run from the root) see the same code.
sys.path.insert(0, os.path.dirname(workflow.basedir))

from jetatag import pipeline
from jetatag.config import (
    EXTRACTOR_IDS,
    VARIANTS,
    ParamsError,
    param_value,
    params_from_dict,
    params_to_dict,
)

# --- config: params.yaml and any --configfile overlays, checked by the schema and by jetatag itself --

if workflow.config_settings.config:
    raise WorkflowError(
        "--config values would not reach the stage commands: "
        "put them in a YAML file and pass it with --configfile"
    )
validate(config, schema="../schemas/config.schema.yaml", set_default=False)
try:
    PARAMS = params_to_dict(params_from_dict(config))
except ParamsError as err:
    raise WorkflowError(f"config: {err}") from err

# The commands read the same files Snakemake merged into `config`, in the same order.
PARAMS_FILES = ["params.yaml"] + [
    os.path.relpath(f)
    for f in workflow.overwrite_configfiles
    if os.path.relpath(f) != "params.yaml"
]


# Software of every rule (used with --software-deployment-method conda); relative to rules/.
CONDA_ENV = "../envs/jetatag.yaml"


wildcard_constraints:
    extractor="|".join(EXTRACTOR_IDS),
    variant="|".join(VARIANTS),


# --- a stage as rule directives ------------------------------------------------------------------


# Outputs of stages this config does not need (data/synth unless data.source is synthetic): their
# rules are left out of the DAG, and no job takes them as input.
SKIPPED = pipeline.skipped_paths(PARAMS)


def stage_input(name):
    """Named inputs: the stage's data deps and its source files (so a code change reruns it)."""
    stage = pipeline.stage(name)
    inputs = {}
    for key, paths in stage.deps.items():
        if paths in SKIPPED:
            continue
        if isinstance(paths, str):
            inputs[key] = pipeline.resolve_params(paths, PARAMS)
        else:
            inputs[key] = [pipeline.resolve_params(p, PARAMS) for p in paths]
    return {**inputs, "code": list(stage.code())}


def stage_output(name):
    """Named outputs; folders marked as such, results with a caption marked for `snakemake --report`."""
    outputs = {}
    for key, out in pipeline.stage(name).outs.items():
        path = directory(out.path) if out.directory else out.path
        if out.caption is not None:
            path = report(path, caption=f"../report/{out.caption}", category="Results")
        outputs[key] = path
    return outputs


def stage_log(name):
    """One log file per job; the command writes it (`python -m jetatag --log-file`)."""
    return pipeline.stage(name).log


def stage_params(name):
    """Wildcards (so the between-workflow cache keys on them) and the values of the params the stage reads."""
    stage = pipeline.stage(name)
    values = {key: param_value(PARAMS, key) for key in stage.params}
    return {
        **{w: f"{{{w}}}" for w in stage.wildcards},
        "values": json.dumps(values, sort_keys=True),
    }


def stage_shell(name):
    """The stage's command, as dvc.yaml has it, with Snakemake's placeholders for paths and wildcards."""
    stage = pipeline.stage(name)
    fields = {"log": "{log}"}
    fields.update({w: f"{{params.{w}}}" for w in stage.wildcards})
    fields.update(
        {
            key: (
                path if path in SKIPPED else f"{{input.{key}}}"
            )  # a skipped input: its path, unread
            for key, path in stage.deps.items()
            if isinstance(path, str)
        }
    )
    fields.update({key: f"{{output.{key}}}" for key in stage.outs})
    return stage.render(fields, PARAMS_FILES)


def all_outputs():
    """Every output of every job: what `dvc repro` builds."""
    return [
        pipeline.fill(out.path, wildcards)
        for stage in pipeline.STAGES
        for wildcards in stage.instances()
        for out in stage.outs.values()
        if out.path not in SKIPPED
    ]
