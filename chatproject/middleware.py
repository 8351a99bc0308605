"""Project-wide HTTP middleware: the Content-Security-Policy header.

The pages load scripts and styles only from this site (static/, drf-spectacular-sidecar's
Swagger UI under static/ too), carry their data as ``json_script`` blocks (``type=
"application/json"``, which a policy without 'unsafe-inline' still lets the page read), and
set styles from JavaScript through ``element.style`` (allowed; only inline ``style=``
attributes in HTML are blocked). So the policy allows no inline script, no eval, no other
origin, and no framing: an injected ``<script>`` or ``onclick=`` does not run.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"

_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "object-src": "'none'",
}


def _websocket_sources(request) -> str:
    """The WebSocket origin of this very host (the page opens ws(s)://<its host>/ws/chat/).

    CSP Level 3 counts same-host ws: and wss: as 'self', older browsers do not; naming this host
    keeps the socket working there without allowing sockets to any other host. The Host header
    is one ALLOWED_HOSTS accepted (get_host() refuses others), so it cannot inject a directive.
    """
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""
    # A page served over HTTPS may only open wss: (browsers refuse ws: from it anyway).
    return f"wss://{host}" if request.is_secure() else f"ws://{host} wss://{host}"


def content_security_policy(request) -> str:
    """The policy for a response to ``request``."""
    policy = dict(_POLICY)
    sockets = _websocket_sources(request)
    if sockets:
        policy["connect-src"] = f"'self' {sockets}"
    return "; ".join(f"{name} {sources}" for name, sources in policy.items())


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Add the Content-Security-Policy header to every response (a view may set its own first)."""

    def process_response(self, request, response):
        if settings.CSP_ENABLED and HEADER not in response:
            response[HEADER] = content_security_policy(request)
        return response
