"""`python -m compare`: run the comparison (see `compare.run`)."""

import sys

from compare.run import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
