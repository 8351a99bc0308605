"""Web (template) routes of this app: a room's page (the conversation)."""

from django.urls import path

from . import views

urlpatterns = [
    path("rooms/<int:room_id>/", views.room_detail, name="room-page"),
]
