"""REST routes of this app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("drawer/", api.DrawerListView.as_view(), name="drawer-list"),
    path("drawer/filters/", api.DrawerFiltersView.as_view(), name="drawer-filters"),
    path("drawer/<int:entry_id>/", api.DrawerEntryView.as_view(), name="drawer-entry"),
]
