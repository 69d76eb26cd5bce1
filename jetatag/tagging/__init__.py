"""jetatag.tagging."""
