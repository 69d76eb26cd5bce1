# Config validation, and the helpers that the generated rules (data, train, evaluate, report .smk) call
# where an input or param depends on the config.
import json
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow's own jetatag (the repository holding this Snakefile), not whatever the environment
# installed: the rules and the commands (`python -m jetatag`, run from the root) see the same code.
sys.path.insert(0, os.path.dirname(workflow.basedir))

from jetatag import pipeline
from jetatag.config import (
    VARIANTS,
    ParamsError,
    param_value,
    params_from_dict,
    params_to_dict,
)
from jetatag.extractors import EXTRACTOR_IDS

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


# --- what the rules take from the config ---------------------------------------------------------


# Outputs of stages this config does not need (data/synth unless data.source is synthetic): their
# rules are left out of the DAG, and no job takes them as input.
SKIPPED = pipeline.skipped_paths(PARAMS)


def synthetic_only(path):
    """An input that only a synthetic source builds: none for another source (the command ignores it)."""
    return [] if path in SKIPPED else path


def config_paths(*paths):
    """Input paths with their `${section.key}` references filled from the config, as DVC fills them."""
    return [pipeline.resolve_params(path, PARAMS) for path in paths]


def param_values(*keys):
    """The values of the params a stage reads, as JSON: a change reruns the stage and keys the cache."""
    return json.dumps({key: param_value(PARAMS, key) for key in keys}, sort_keys=True)


def params_options():
    """The commands' `--params` options: params.yaml, then each --configfile overlay."""
    return " ".join(f"--params {shlex.quote(path)}" for path in PARAMS_FILES)


def all_outputs():
    """Every output of every job: what `dvc repro` builds."""
    return [
        pipeline.fill(out.path, wildcards)
        for stage in pipeline.STAGES
        for wildcards in stage.instances()
        for out in stage.outs.values()
        if out.path not in SKIPPED
    ]
