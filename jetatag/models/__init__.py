"""jetatag.models."""
