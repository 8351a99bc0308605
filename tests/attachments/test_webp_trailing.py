"""A WebP is its RIFF container: bytes appended after it (another picture, with EXIF and a GPS
position of its own) are no part of the image and are not stored."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from attachments.models import Attachment

from .conftest import GPS, upload

pytestmark = pytest.mark.django_db


def test_bytes_after_a_webps_container_are_not_kept(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    exif = Image.Exif()
    exif[GPS] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)}
    webp, jpeg = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(webp, "WEBP", lossless=True, exif=exif.tobytes())
    Image.new("RGB", (8, 8), "blue").save(jpeg, "JPEG", exif=exif)
    sent = webp.getvalue() + jpeg.getvalue()

    answer = upload(api(alice), room.pk, "red.webp", sent)

    assert answer.status_code == 201, answer.content
    with default_storage.open(Attachment.objects.get(pk=answer.json()["id"]).file) as f:
        stored = f.read()
    assert b"Exif" not in stored and not stored.endswith(jpeg.getvalue())
    kept = Image.open(io.BytesIO(stored))
    assert kept.size == (40, 30) and not kept.getexif().get_ifd(GPS)
    assert kept.convert("RGB").tobytes() == Image.open(io.BytesIO(webp.getvalue())).convert("RGB").tobytes()
