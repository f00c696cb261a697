"""`python -m hobguard`: the same as the `hobguard` command."""

import sys

from .cli import main

sys.exit(main())
