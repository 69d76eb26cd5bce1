#!/usr/bin/env bash
# Runs once inside the new conda environment, from the repository root (Snakemake's working directory).
# On a GPU machine this takes the ordinary (CUDA) torch wheel; CPU-only: pip install torch==2.13.0 -e .
set -euo pipefail
python -m pip install --no-input -e .
