"""Web (template) routes of this app: the room list at the site root and a room's page."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.room_list, name="room-list"),
    path("rooms/<int:room_id>/", views.room_detail, name="room-page"),
]
