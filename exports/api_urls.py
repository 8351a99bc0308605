"""REST routes of this app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("account/exports/", api.ExportsView.as_view(), name="account-exports"),
    path("account/exports/<int:export_id>/", api.ExportView.as_view(), name="account-export"),
    path("account/exports/<int:export_id>/download/", api.ExportDownloadView.as_view(), name="account-export-download"),
]
