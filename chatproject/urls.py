"""URL routes: the web chat, the REST API, the admin, the schema and the health checks."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from streams.web import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script from its own URL: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("rooms.api_urls")),
    path("api/v1/", include("chat_messages.api_urls")),
    path("api/v1/", include("drawer.api_urls")),
    path("", include("accounts.urls")),
    path("", include("drawer.urls")),
    path("", include("rooms.urls")),
    path("", include("chat_messages.urls")),
]

# Under /api/ errors keep the API's JSON error shape; elsewhere Django's pages.
handler404 = "streams.web.api.handler404"
handler500 = "streams.web.api.handler500"
