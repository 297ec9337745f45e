"""``python -m mlcycle``: the ``mlcycle`` command, for when its script is not on ``PATH``."""

from mlcycle.cli.main import main

main()
