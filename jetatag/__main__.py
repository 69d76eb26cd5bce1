"""``python -m jetatag ...``: the same command line as the ``jetatag`` console script."""

import sys

from jetatag.cli import main

if __name__ == "__main__":
    sys.exit(main())
