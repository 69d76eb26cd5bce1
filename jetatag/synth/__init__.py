"""jetatag.synth."""
