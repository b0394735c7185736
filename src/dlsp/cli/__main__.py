"""`python -m dlsp.cli`."""

import sys

from dlsp.cli import main

sys.exit(main())
