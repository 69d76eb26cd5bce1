"""jetatag: music auto-tagging with joint embeddings (reproduction, pipeline and tagging tool)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jetatag")  # the one version, written in pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed (e.g. only on PYTHONPATH)
    __version__ = "0+unknown"
