"""Signed file URLs (no credentials, expiring), mounted at the site's root."""

from django.urls import path

from . import api

urlpatterns = [
    path("files/<str:token>/<str:name>", api.signed_file, name="attachment-signed"),
]
