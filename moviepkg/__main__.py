"""Entry point for `python -m moviepkg`."""

import sys

from .cli import main

sys.exit(main())
