"""REST routes of the messages app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("rooms/<int:room_id>/messages/", api.RoomMessagesView.as_view(), name="room-messages"),
    path("rooms/<int:room_id>/messages/<int:seq>/", api.MessageView.as_view(), name="room-message"),
    path(
        "rooms/<int:room_id>/messages/<int:seq>/reactions/<str:emoji>/",
        api.ReactionView.as_view(),
        name="room-message-reaction",
    ),
]
