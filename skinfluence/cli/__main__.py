"""``python -m skinfluence.cli``: the command line (as ``python -m skinfluence``)."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
