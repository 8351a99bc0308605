"""REST routes of the attachments app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("rooms/<int:room_id>/attachments/", api.RoomAttachmentsView.as_view(), name="room-attachments"),
    path("attachments/<int:attachment_id>/", api.AttachmentView.as_view(), name="attachment"),
    path("attachments/<int:attachment_id>/file/", api.AttachmentFileView.as_view(), name="attachment-file"),
    path(
        "attachments/<int:attachment_id>/thumbnail/", api.AttachmentThumbnailView.as_view(), name="attachment-thumbnail"
    ),
]
