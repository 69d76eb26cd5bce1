"""Errors that stages raise for bad input; the CLI turns them into one clear message and exit 1."""


class StageError(RuntimeError):
    """A stage met bad input; the message names the file and the problem."""
