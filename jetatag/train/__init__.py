"""jetatag.train."""
