"""jetatag.data."""
