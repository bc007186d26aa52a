"""``python -m clrnet.cli``: the ``clrnet`` command."""

from clrnet.cli.main import main

main()
