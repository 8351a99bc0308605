"""REST routes of this app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("rooms/", api.RoomsView.as_view(), name="rooms"),
    path("rooms/<int:room_id>/", api.RoomDetailView.as_view(), name="room"),
    path("rooms/<int:room_id>/participants/", api.ParticipantsView.as_view(), name="room-participants"),
    path(
        "rooms/<int:room_id>/participants/<int:user_id>/", api.ParticipantDetailView.as_view(), name="room-participant"
    ),
    path("rooms/<int:room_id>/join/", api.RoomJoinView.as_view(), name="room-join"),
    path("rooms/<int:room_id>/read/", api.RoomReadView.as_view(), name="room-read"),
    path("rooms/<int:room_id>/mute/", api.RoomMuteView.as_view(), name="room-mute"),
    path("rooms/<int:room_id>/unread/", api.RoomUnreadView.as_view(), name="room-unread"),
    path("rooms/<int:room_id>/messages/<int:seq>/readers/", api.MessageReadersView.as_view(), name="message-readers"),
]
