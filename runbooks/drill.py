"""`python -m runbooks.drill`: the documented command of the drills, which live in ``drills/``."""

import logging
import sys

from drills.cli import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
