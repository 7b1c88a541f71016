"""Entry point for `python -m processor`."""

import sys

from .cli import main

sys.exit(main())
