"""A JPEG may hold more pictures after its first (Multi-Picture Format: a phone's depth map or HDR
gain map, a 3D camera's second eye), each with EXIF of its own: none of their locations is kept."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from attachments.models import Attachment

from .conftest import GPS, upload

pytestmark = pytest.mark.django_db

POSITION = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)}


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[GPS] = POSITION
    return exif


def _stored(api, user, room, name: str, data: bytes) -> bytes:
    answer = upload(api(user), room.pk, name, data)
    assert answer.status_code == 201, answer.content
    with default_storage.open(Attachment.objects.get(pk=answer.json()["id"]).file) as f:
        return f.read()


def _pixels(data: bytes) -> bytes:
    return Image.open(io.BytesIO(data)).tobytes()


def test_the_later_pictures_of_a_multi_picture_jpeg_lose_their_location_too(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    out = io.BytesIO()
    first, second = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (64, 48), "blue")
    first.save(out, "MPO", save_all=True, append_images=[second], exif=_exif())
    mpo = out.getvalue()
    sent = Image.open(io.BytesIO(mpo))
    sent.seek(1)
    assert sent.getexif().get_ifd(GPS)  # the second picture carries the position

    stored = _stored(api, alice, room, "depth.jpg", mpo)

    assert b"GPS" not in stored and stored.count(b"Exif\x00\x00") == 1
    kept = Image.open(io.BytesIO(stored))
    assert getattr(kept, "n_frames", 1) == 1  # the first picture alone
    assert kept.getexif()[0x010F] == "TestCam" and not kept.getexif().get_ifd(GPS)
    assert _pixels(stored) == _pixels(mpo)  # the first picture's pixels, unchanged


def test_a_jpeg_with_a_picture_appended_after_its_end_keeps_only_the_first(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    head, tail = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (32, 32), "green").save(head, "JPEG")
    Image.new("RGB", (32, 32), "blue").save(tail, "JPEG", exif=_exif())

    stored = _stored(api, alice, room, "a.jpg", head.getvalue() + tail.getvalue())

    assert stored == head.getvalue()


@pytest.mark.parametrize("options", [{"progressive": True, "optimize": True}, {"restart_marker_blocks": 1}])
def test_progressive_and_restart_marked_jpegs_keep_every_scan(api, make_user, make_room, options):
    # Segments stand between a progressive JPEG's scans, and restart markers inside a scan: the
    # walk through them must keep every byte of the picture.
    alice = make_user()
    room = make_room(owner=alice)
    out = io.BytesIO()
    Image.effect_noise((300, 200), 80).convert("RGB").save(out, "JPEG", exif=_exif(), quality=90, **options)
    original = out.getvalue()

    stored = _stored(api, alice, room, "noise.jpg", original)

    assert b"GPS" not in stored
    assert _pixels(stored) == _pixels(original)
