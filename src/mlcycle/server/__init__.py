"""``mlcycle server``: the REST API over the tracking service (FastAPI).

Layout: ``app.py`` builds the app, ``deps.py`` holds what routes depend on, ``auth.py`` the
token rules, ``errors.py`` the one mapping of errors to HTTP, ``schemas.py`` the wire shapes,
``api/`` one module of routes per resource.
"""

from mlcycle.server.app import create_app

__all__ = ["create_app"]
