"""The web UI: server-rendered pages under ``/`` on the server's own app.

>>> app = create_app(settings)          # doctest: +SKIP  (mounts the UI itself)

Pages read the same services as the REST API and need the same token: with tokens configured,
``/login`` stores one in an HTTP-only, same-site cookie (read-only tokens may look; promoting or
rolling back needs the read-write one). Nothing is fetched from the internet: the CSS and script
are files of this package, and Plotly's JavaScript comes from the installed ``plotly`` package.
"""

from __future__ import annotations

from mlcycle.server.ui._app import mount_ui

__all__ = ["mount_ui"]
