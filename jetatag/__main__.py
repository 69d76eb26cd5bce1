"""``python -m jetatag ...``: the same command line as the ``jetatag`` console script."""

from jetatag.cli import run

if __name__ == "__main__":
    run()
