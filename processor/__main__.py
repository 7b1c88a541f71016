"""Entry point for `python -m processor` (processor/entry.py: `receive` starts quickly)."""

import sys

from .entry import main

sys.exit(main())
