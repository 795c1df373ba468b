"""`python -m worker`: one consumer loop (see worker.app)."""

import sys

from worker.app import main

if __name__ == "__main__":
    sys.exit(main())
