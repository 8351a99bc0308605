"""Web (template) routes of this app: the room list at the site root."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.room_list, name="room-list"),
]
