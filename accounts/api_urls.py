"""REST routes of this app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("accounts/", api.SignupView.as_view(), name="accounts"),
    path("accounts/me/", api.MeView.as_view(), name="accounts-me"),
    path("auth/token/", api.TokenView.as_view(), name="auth-token"),
    path("users/", api.UsersView.as_view(), name="users"),
    path("devices/", api.DevicesView.as_view(), name="devices"),
    path("devices/<int:device_id>/", api.DeviceView.as_view(), name="device"),
]
