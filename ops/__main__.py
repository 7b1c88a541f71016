"""`python -m ops`."""

from .cli import main

raise SystemExit(main())
