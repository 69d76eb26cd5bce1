"""jetatag.report."""
