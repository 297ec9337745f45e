"""``live_server``: a real ``mlcycle server`` on loopback, for tests.

>>> with live_server(Settings(home=tmp_path)) as url:      # doctest: +SKIP
...     client = mlcycle.Client(url)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from mlcycle.config import Settings
from mlcycle.server import create_app
from mlcycle.store.base import ArtifactStore, TrackingStore

__all__ = ["live_server"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


@contextmanager
def live_server(
    settings: Settings, *, stores: tuple[TrackingStore, ArtifactStore] | None = None
) -> Iterator[str]:
    """Serve ``create_app(settings, stores=stores)`` with uvicorn in a background thread on
    127.0.0.1 and a free port; yields the base URL once ``/health`` answers."""
    app = create_app(settings, stores=stores)
    # Bind here and hand uvicorn the socket: asking for a free port and binding it later would
    # race with other processes picking ports at the same time.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"mlcycle-live-server-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_healthy(url, thread)
        yield url
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        sock.close()


def _wait_until_healthy(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    last: Exception | None = None
    with httpx.Client(base_url=url, timeout=1.0) as http:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                raise RuntimeError(f"the test server at {url} stopped while starting; "
                                   "see the log above")
            try:
                if http.get("/health").status_code == 200:
                    return
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.02)
    raise RuntimeError(f"the test server at {url} did not answer /health within "
                       f"{_START_TIMEOUT:.0f} s (last error: {last!r})")
