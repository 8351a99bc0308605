"""The project's URLs with streams.web.api's JSON-aware 404/500 handlers and two views that crash."""

from django.urls import path
from rest_framework.permissions import AllowAny

from chatproject.urls import urlpatterns as project_urlpatterns
from streams.web.api import ChatAPIView


class Crash(ChatAPIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("a bug")


def crash_page(request):
    raise RuntimeError("a bug")


urlpatterns = [
    path("api/v1/crash/", Crash.as_view()),
    path("crash/", crash_page),
    *project_urlpatterns,
]

handler404 = "streams.web.api.handler404"
handler500 = "streams.web.api.handler500"
