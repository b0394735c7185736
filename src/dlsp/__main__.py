"""`python -m dlsp`."""

import sys

from dlsp.cli import main

sys.exit(main())
