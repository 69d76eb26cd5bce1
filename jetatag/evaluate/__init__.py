"""jetatag.evaluate."""
