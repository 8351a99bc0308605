"""Web (template) routes of this app: the drawer page."""

from django.urls import path

from . import views

urlpatterns = [
    path("drawer/", views.drawer_page, name="drawer-page"),
]
