"""Fixtures of the attachments tests: a storage folder of the test's own, images made with Pillow,
uploads over REST, and Celery tasks run in-process."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

GPS = 0x8825
ORIENTATION = 0x0112


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Files go to a folder of this test's own (the storage API, as in production)."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = str(root)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


def jpeg(size=(64, 48), *, gps: bool = True, orientation: int | None = None, color="red") -> bytes:
    """A JPEG with a camera name, and a GPS position and an orientation if asked."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    if orientation:
        exif[ORIENTATION] = orientation
    if gps:
        exif[GPS] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png(size=(20, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 128, 255, 200)).save(out, "PNG")
    return out.getvalue()


def upload(client, room_id: int, name: str, data: bytes):
    """POST a file to the room's attachments, multipart, as a mobile client would."""
    return client.post(f"/api/v1/rooms/{room_id}/attachments/", {"file": _named(name, data)}, format="multipart")


def _named(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def store(room, user, *, attachments, body: str = "", msg_id=None) -> dict:
    """A message.send envelope with attachments, stored by the persistence consumer's service."""
    from chat_messages.services import messages_store, send_envelope

    envelope = send_envelope(
        room_id=room.pk, sender_id=user.pk, client_msg_id=msg_id or uuid.uuid4(), body=body, attachments=attachments
    )
    messages_store(sends=[envelope])
    return envelope
