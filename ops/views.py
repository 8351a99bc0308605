"""GET /metrics: for Prometheus with ``Authorization: Bearer <METRICS_TOKEN>``, or for a signed-in staff member.

Not public: the figures name the topics, groups and hosts, and each scrape asks the broker and
the databases. Without ``METRICS_TOKEN`` only a staff session gets them.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client.exposition import choose_encoder

from .metrics import registry


@require_GET
def metrics(request) -> HttpResponse:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer":
        token = settings.METRICS_TOKEN
        if not token or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _refused(401, "invalid metrics token")
    elif not request.user.is_authenticated:
        return _refused(401, "a bearer token (METRICS_TOKEN) or a staff session is required")
    elif not (request.user.is_active and request.user.is_staff):
        return _refused(403, "only staff may read the metrics")
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(registry), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


def _refused(status: int, reason: str) -> HttpResponse:
    response = HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
