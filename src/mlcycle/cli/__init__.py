"""The ``mlcycle`` command line: ``mlcycle <resource> <verb>``, ``--json`` on every read command.

``main.py`` holds the root command and turns errors into exit codes; each command group has its own
module (``runs.py``, ``experiments.py``, ``server.py``); ``output.py`` renders tables and JSON.
"""
