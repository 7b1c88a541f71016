"""Entry point for `python -m processor`."""

import sys

if sys.argv[1:2] == ["receive"]:  # sshd's forced command, once per session: start quickly
    from .receive_cli import main as receive

    sys.exit(receive(sys.argv[2:]))

from .cli import main

sys.exit(main())
