"""What is kept of an uploaded image: its pixels, never a location (EXIF, XMP or a second picture's)."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from attachments.models import Attachment

from .conftest import GPS, upload

pytestmark = pytest.mark.django_db

# A JPEG may hold more pictures after its first (Multi-Picture Format: a phone's depth map or HDR gain
# map, a 3D camera's second eye), each with EXIF of its own: none of their locations is kept.
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


# A GIF has no EXIF, but editors write the source photo's XMP (its GPS position included) into an
# application extension: the stored GIF goes without it, every frame as it was.
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description'
    b' xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="37,33.98N" exif:GPSLongitude="126,58.68E"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
# XMP's packet goes into the GIF raw, followed by this "magic trailer" so that a reader walking
# sub-blocks lands on the terminator whatever the packet's bytes (the XMP specification, part 3).
MAGIC_TRAILER = bytes([1]) + bytes(range(255, -1, -1)) + b"\x00"


def _animated() -> bytes:
    frames = [Image.new("P", (30, 20), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def _with_xmp(gif: bytes) -> bytes:
    flags = gif[10]
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    return gif[:start] + b"\x21\xff\x0bXMP DataXMP" + XMP + MAGIC_TRAILER + gif[start:]


def _frames(data: bytes) -> tuple[list[bytes], dict]:
    image = Image.open(io.BytesIO(data))
    frames = []
    for index in range(image.n_frames):
        image.seek(index)
        frames.append(image.convert("RGBA").tobytes())
    return frames, {k: image.info.get(k) for k in ("loop", "duration")}


def _stored_gif(api, user, room, data: bytes) -> bytes:
    return _stored(api, user, room, "dance.gif", data)


def test_a_gif_loses_its_xmp_and_keeps_every_frame(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    plain = _animated()
    sent = _with_xmp(plain)
    assert b"GPSLatitude" in sent

    stored = _stored_gif(api, alice, room, sent)

    assert b"GPSLatitude" not in stored and b"XMP DataXMP" not in stored
    assert stored == plain  # exactly the GIF without that one block
    assert _frames(stored) == _frames(sent)


def test_a_gif_without_xmp_is_stored_as_it_came(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    plain = _animated()
    assert _stored_gif(api, alice, room, plain) == plain


# A WebP is its RIFF container: bytes appended after it (another picture, with EXIF and a GPS position
# of its own) are no part of the image and are not stored.


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
