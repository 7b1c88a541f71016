"""Entry point for `python -m stations`."""

import sys

from .cli import main

sys.exit(main())
