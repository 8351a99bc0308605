"""A GIF has no EXIF, but editors write the source photo's XMP (its GPS position included) into an
application extension: the stored GIF goes without it, every frame as it was."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from attachments.models import Attachment

from .conftest import upload

pytestmark = pytest.mark.django_db

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


def _stored(api, user, room, data: bytes) -> bytes:
    answer = upload(api(user), room.pk, "dance.gif", data)
    assert answer.status_code == 201, answer.content
    with default_storage.open(Attachment.objects.get(pk=answer.json()["id"]).file) as f:
        return f.read()


def test_a_gif_loses_its_xmp_and_keeps_every_frame(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    plain = _animated()
    sent = _with_xmp(plain)
    assert b"GPSLatitude" in sent

    stored = _stored(api, alice, room, sent)

    assert b"GPSLatitude" not in stored and b"XMP DataXMP" not in stored
    assert stored == plain  # exactly the GIF without that one block
    assert _frames(stored) == _frames(sent)


def test_a_gif_without_xmp_is_stored_as_it_came(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    plain = _animated()
    assert _stored(api, alice, room, plain) == plain
