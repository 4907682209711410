"""``python -m cadcam_numeric`` (and ``torchrun -m cadcam_numeric``): the ``cadcam`` command."""

import sys

from cadcam_numeric.cli import main

if __name__ == "__main__":
    sys.exit(main())
