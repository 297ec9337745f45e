"""Alert delivery: a monitor's status change POSTed as JSON to its webhook URL.

Delivery never raises: a webhook that is down, slow (``timeout``, 5 s by default) or answers an
error is recorded on the alert as ``"failed: ..."``, and the monitor's run goes on.

The body::

    {"monitor": "churn-daily", "deployment": "churn", "status": "alert", "previous": "ok",
     "message": "...", "time": "2026-11-27T12:00:00+00:00", "result_id": 42,
     "reasons": ["accuracy 0.71 < 0.80"], "metrics": {"performance.accuracy": 0.71, ...}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["WebhookNotifier"]

logger = logging.getLogger("mlcycle.monitoring")


class WebhookNotifier:
    """``notify(url, payload)`` → ``"sent"`` or ``"failed: <why>"``.

    *transport* is httpx's seam: tests hand in ``httpx.MockTransport`` or nothing and run a
    real server on 127.0.0.1.
    """

    def __init__(self, *, timeout: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.timeout = timeout
        self.transport = transport

    def notify(self, url: str, payload: Mapping[str, Any]) -> str:
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as http:
                response = http.post(url, json=dict(payload))
        except httpx.HTTPError as exc:
            outcome = f"failed: {type(exc).__name__}: {exc or 'no detail'}"
        else:
            outcome = "sent" if response.is_success else \
                f"failed: HTTP {response.status_code}"
        if outcome != "sent":
            logger.warning("monitor %s: webhook %s %s", payload.get("monitor"), url, outcome)
        return outcome
