"""jetatag: music auto-tagging with joint embeddings (reproduction, pipeline and tagging tool)."""

__version__ = "0.1.0"
