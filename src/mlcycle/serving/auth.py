"""Bearer-token auth of the prediction endpoints (``/predict``, ``/v2/models/*/infer``,
``/feedback``). The token is its own setting (``MLCYCLE_SERVE_TOKEN``), not the tracking
server's; health, model metadata and ``/metrics`` stay open so probes and Prometheus need no
secret. The token is compared in constant time and never logged."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

__all__ = ["CHALLENGE", "BearerAuth"]

#: The ``WWW-Authenticate`` header of a 401.
CHALLENGE = 'Bearer realm="mlcycle-serve"'


class BearerAuth:
    """``allows(headers)``: whether a request may call a prediction endpoint; every request may
    when *token* is ``None``."""

    __slots__ = ("_expected",)

    def __init__(self, token: str | None) -> None:
        self._expected = None if token is None else f"Bearer {token}".encode()

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self._expected is not None})"

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def allows(self, headers: Mapping[str, str]) -> bool:
        if self._expected is None:
            return True
        given = headers.get("authorization")
        return given is not None and hmac.compare_digest(given.encode(), self._expected)
