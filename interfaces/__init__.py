"""The interfaces: the command line (:mod:`interfaces.commands`, entered through ``cli.py``),
the data subjects' portal and API (:mod:`interfaces.portal`) and the demo
(:mod:`interfaces.demo`).

The outermost layer: it may import the fleet (``workflows``), the connectors and the domain
core (``dsar``); none of them imports it (the import-linter contracts in ``pyproject.toml``).
"""
