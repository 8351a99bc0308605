"""REST routes of moderation, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("rooms/<int:room_id>/messages/<int:seq>/report/", api.MessageReportView.as_view(), name="room-message-report"),
    path("account/warnings/", api.WarningsView.as_view(), name="account-warnings"),
    path("account/warnings/<int:warning_id>/", api.WarningView.as_view(), name="account-warning"),
]
