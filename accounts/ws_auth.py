"""WebSocket handshake authentication: a session cookie (browsers) or a token (native apps).

Browsers send cookies with cross-site WebSocket handshakes, so a session-authenticated handshake
must come from an allowed Origin. Native clients send ``Authorization: Token <key>``, which a
browser page cannot set on a WebSocket, so those need no Origin check.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import validate_host

# Handshakes of all sockets must not queue behind each other on one shared thread.
_off_loop = functools.partial(database_sync_to_async, thread_sensitive=False)


@_off_loop
def user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except Token.DoesNotExist:
        return None
    return token.user if token.user.is_active else None


def socket_refusal(user) -> str | None:
    """Why an authenticated user may not open a socket: "suspended", or None."""
    return "suspended" if user.is_suspended() else None


@_off_loop
def _user_for_session(session):
    from django.contrib.auth import get_user
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = session
    user = get_user(request)
    return user if user.is_authenticated else None


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _site(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, ports made explicit; None if it is not one."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def handshake_scheme(scope) -> str:
    """``https`` if the browser reached us over TLS (directly: wss; or through a trusted proxy)."""
    if scope.get("scheme") == "wss":
        return "https"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, value = proxy
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        if (_header(scope, header) or "").split(",")[0].strip() == value:
            return "https"
    return "http"


def origin_allowed(origin: str | None, host: str | None, scheme: str = "http") -> bool:
    """Whether a cookie-authenticated handshake comes from one of our own pages.

    Like Django's CSRF check: the Origin must be this very site, scheme, host and port (the Host
    the browser connected to, itself an allowed host, reached over ``scheme``), or a listed
    CSRF_TRUSTED_ORIGINS entry. Comparing hostnames alone would let any page on another port of
    the same host in, and ignoring the scheme would let a plain-HTTP page talk to the HTTPS site.
    """
    if not origin or origin == "null":
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    if not host:
        return False
    parts = urlsplit(origin)
    theirs = _site(parts.scheme, parts.netloc) if parts.scheme in _DEFAULT_PORTS else None
    ours = _site(scheme, host)
    if theirs is None or ours is None or theirs != ours:
        return False
    return validate_host(ours[1], settings.ALLOWED_HOSTS)


class _Authenticate:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        scope["auth_via"] = None
        authorization = _header(scope, b"authorization")
        if authorization and authorization.lower().startswith("token "):
            user = await user_for_token(authorization[6:].strip())
            if user is not None and socket_refusal(user):
                scope["auth_refused"] = socket_refusal(user)  # the consumer closes with 4403
            elif user is not None:
                scope.update(user=user, auth_via="token", auth_token=authorization[6:].strip())
        elif scope.get("session") is not None and origin_allowed(
            _header(scope, b"origin"), _header(scope, b"host"), handshake_scheme(scope)
        ):
            user = await _user_for_session(scope["session"])
            if user is not None and socket_refusal(user):
                scope["auth_refused"] = socket_refusal(user)
            elif user is not None:
                scope.update(user=user, auth_via="session", session_key=scope["session"].session_key)
        return await self.app(scope, receive, send)


def WebSocketAuthMiddleware(app):  # noqa: N802 - named like the Channels middleware stacks
    """Token authentication; or cookie + session parsing, then session authentication."""
    authenticate = _Authenticate(app)
    with_session = CookieMiddleware(SessionMiddleware(authenticate))

    async def route(scope, receive, send):
        # A token handshake needs no session; without the session middleware in between, the
        # frames sent on the socket also skip its session check on every send.
        authorization = _header(scope, b"authorization")
        if authorization and authorization.lower().startswith("token "):
            return await authenticate(scope, receive, send)
        return await with_session(scope, receive, send)

    return route
