"""Bearer tokens: one read-write token (``Settings.token``) and any number of read-only ones
(``Settings.read_tokens``).

With neither set, the API is open (the embedded, single-user case). With either set, every
``/api`` request needs ``Authorization: Bearer <token>``: a missing or unknown token is 401
``unauthorized``, a read-only token asking to write is 403 ``forbidden``. Tokens are compared in
constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from mlcycle.config import Settings
from mlcycle.errors import AuthError, PermissionDenied

__all__ = ["TokenPolicy"]


class TokenPolicy:
    def __init__(self, write: Iterable[str] = (), read: Iterable[str] = ()) -> None:
        self._write = [t.encode() for t in write if t]
        self._read = [t.encode() for t in read if t]

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        write = [settings.token.get_secret_value()] if settings.token else []
        return cls(write, [t.get_secret_value() for t in settings.read_tokens])

    @property
    def enabled(self) -> bool:
        # Read tokens alone switch auth on too: a server given only read tokens must not be open
        # to writes from anyone.
        return bool(self._write or self._read)

    def __repr__(self) -> str:  # never the tokens themselves
        return f"TokenPolicy(write={len(self._write)}, read={len(self._read)})"

    def authorize(self, authorization: str | None, *, write: bool) -> None:
        """Raise unless the ``Authorization`` header value allows the request."""
        if not self.enabled:
            return
        token = _bearer(authorization)
        if token is None:
            raise AuthError("this server needs a bearer token: send "
                            "'Authorization: Bearer <token>' (set MLCYCLE_TOKEN on the client)")
        if _known(token, self._write):
            return
        if _known(token, self._read):
            if write:
                raise PermissionDenied("this token may only read; writing needs the read-write "
                                       "token")
            return
        raise AuthError("the bearer token is not valid for this server")


def _bearer(header: str | None) -> bytes | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token.encode()


def _known(token: bytes, tokens: list[bytes]) -> bool:
    # Compare with every token, not up to the first match, so the time taken says nothing about
    # which token (if any) matched.
    matches = [hmac.compare_digest(token, t) for t in tokens]
    return any(matches)
