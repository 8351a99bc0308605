"""URL routes: the web chat, the REST API, the admin, the schema and the health checks."""

from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ops.views import metrics
from streams.web import health


def favicon(request):
    """/favicon.ico: the site's icon, static/favicon.svg.

    Browsers ask for it on every page without a ``<link rel="icon">`` (the admin, the API docs);
    a 404 there is an error in every console. A temporary redirect, so a later icon is picked up.
    """
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus' text format, for a bearer token (METRICS_TOKEN) or a staff session (docs/operations.md).
    path("metrics", metrics, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script from its own URL: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("rooms.api_urls")),
    path("api/v1/", include("chat_messages.api_urls")),
    path("api/v1/", include("drawer.api_urls")),
    path("api/v1/", include("attachments.api_urls")),
    path("api/v1/", include("search.api_urls")),
    path("api/v1/", include("exports.api_urls")),
    path("api/v1/", include("moderation.api_urls")),
    path("", include("accounts.urls")),
    path("", include("drawer.urls")),
    path("", include("rooms.urls")),
    path("", include("chat_messages.urls")),
    path("", include("attachments.urls")),
]

# Under /api/ errors keep the API's JSON error shape; elsewhere the site's pages (templates/404.html, 500.html).
handler404 = "streams.web.api.handler404"
handler500 = "streams.web.api.handler500"
