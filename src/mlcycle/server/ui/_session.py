"""Who may see the pages: the server's bearer tokens, carried by a cookie.

A browser cannot send an ``Authorization`` header on a link, so ``/login`` checks the token once
and keeps it in an HTTP-only cookie with ``SameSite=Strict`` (another site's form cannot post
with it, which is what keeps the promote and rollback buttons from being triggered elsewhere).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request

from mlcycle.errors import AuthError
from mlcycle.server.auth import TokenPolicy

__all__ = ["COOKIE", "LoginRequired", "check_access", "login_url", "safe_next"]

COOKIE = "mlcycle_token"


class LoginRequired(Exception):  # a signal to redirect to the login form, not an error
    """The page needs a token the request does not carry (or one that may only read)."""

    def __init__(self, next_url: str, message: str | None = None) -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.message = message


def check_access(request: Request, *, write: bool = False) -> None:
    """Raise :class:`LoginRequired` unless the cookie's token allows the request."""
    policy: TokenPolicy = request.app.state.tokens
    if not policy.enabled:
        return
    token = request.cookies.get(COOKIE)
    try:
        policy.authorize(f"Bearer {token}" if token else None, write=write)
    except AuthError as exc:  # PermissionDenied (a read-only token writing) included
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(here, exc.message if token else None) from None


def safe_next(value: str | None) -> str:
    """Only a path on this server: a login link must not send the browser elsewhere."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_url(next_url: str) -> str:
    return f"/login?next={quote(next_url, safe='')}"
