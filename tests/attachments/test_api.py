"""Uploads over REST and fetching files: limits by content, images without their location,
and files served only to those who may see them."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core import signing
from django.core.files.storage import default_storage
from PIL import Image
from rest_framework.test import APIClient

from attachments.models import Attachment
from rooms.services import participant_remove

from .conftest import GPS, ORIENTATION, jpeg, png, store, upload

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]


def fetch(client, url: str):
    response = client.get(url)
    return response, b"".join(response.streaming_content) if getattr(response, "streaming", False) else None


def test_an_image_is_stored_with_its_size_and_a_thumbnail_and_without_its_location(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    original = jpeg((640, 480), gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS)  # the test image has a position

    answer = upload(api(alice), room.pk, "holiday.jpg", original)

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body == {
        "id": body["id"], "room": room.pk, "kind": "image", "name": "holiday.jpg", "content_type": "image/jpeg",
        "size": body["size"], "width": 640, "height": 480, "url": f"/api/v1/attachments/{body['id']}/file/",
        "thumbnail_url": f"/api/v1/attachments/{body['id']}/thumbnail/", "created_at": body["created_at"],
    }  # fmt: skip
    attachment = Attachment.objects.get(pk=body["id"])
    with default_storage.open(attachment.file) as f:
        stored = f.read()
    assert body["size"] == len(stored)
    kept = Image.open(io.BytesIO(stored))
    assert kept.size == (640, 480)
    assert not kept.getexif().get_ifd(GPS) and GPS not in kept.getexif()
    assert kept.getexif()[0x010F] == "TestCam"  # the rest of the EXIF stays
    assert b"TestCam" in stored and b"GPS" not in stored

    response, content = fetch(api(alice), body["thumbnail_url"])
    assert response.status_code == 200
    thumb = Image.open(io.BytesIO(content))
    assert max(thumb.size) == 320 and thumb.size == (320, 240)
    assert not thumb.getexif() and "exif" not in thumb.info
    assert response["Content-Type"] == "image/webp"


def test_the_thumbnail_and_the_dimensions_follow_the_exif_orientation(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    answer = upload(api(alice), room.pk, "portrait.jpg", jpeg((400, 200), orientation=6))

    assert (answer.json()["width"], answer.json()["height"]) == (200, 400)  # turned a quarter
    attachment = Attachment.objects.get(pk=answer.json()["id"])
    with default_storage.open(attachment.file) as f:
        assert Image.open(f).getexif()[ORIENTATION] == 6  # the original keeps it, pixels untouched
    with default_storage.open(attachment.thumbnail) as f:
        assert Image.open(f).size == (160, 320)


def test_a_png_keeps_its_pixels_and_a_file_gets_no_thumbnail(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    picture = upload(api(alice), room.pk, "dot.png", png()).json()
    notes = upload(api(alice), room.pk, "notes.txt", b"remember the milk\n").json()

    assert (picture["kind"], picture["content_type"], picture["width"], picture["height"]) == (
        "image",
        "image/png",
        20,
        10,
    )
    assert (notes["kind"], notes["content_type"], notes["width"], notes["thumbnail_url"]) == (
        "file", "text/plain", None, None,
    )  # fmt: skip
    assert api(alice).get(f"/api/v1/attachments/{notes['id']}/thumbnail/").status_code == 404


def test_a_file_over_the_limit_is_refused_413_and_nothing_is_stored(api, make_user, make_room, settings, media):
    alice = make_user()
    room = make_room(owner=alice)
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1000

    # Declared too large: refused before the body is parsed.
    big = upload(api(alice), room.pk, "big.txt", b"a" * 200_000)
    # Within the declared slack but over the limit: refused while it is read.
    over = upload(api(alice), room.pk, "over.txt", b"a" * 1001)

    for answer in (big, over):
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "too_large"
        assert "limit is 1000 bytes" in answer.json()["error"]["detail"]
    assert upload(api(alice), room.pk, "fits.txt", b"a" * 1000).status_code == 201
    assert Attachment.objects.count() == 1
    assert len([p for p in media.rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("photo.png", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200, "application/x-msdownload"),
        ("photo.png", b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "application/x-executable"),
        ("photo.png", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "text/html"),
        ("notes.txt", b"  <script>alert(document.cookie)</script>", "text/html"),
        ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "text/html"),
        ("report.pdf", png(), "does not match the content, which is image/png"),
        ("photo.jpg", png(), "does not match the content, which is image/png"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "not a readable image"),
    ],
)
def test_a_disguised_file_is_refused_415_by_its_content(api, make_user, make_room, name, data, said):
    alice = make_user()
    room = make_room(owner=alice)
    answer = upload(api(alice), room.pk, name, data)

    assert answer.status_code == 415, answer.content
    assert answer.json()["error"]["code"] == "unsupported_type"
    assert said in answer.json()["error"]["detail"]
    assert not Attachment.objects.exists()


def test_an_image_with_too_many_pixels_is_refused_before_it_is_decoded(api, make_user, make_room, settings):
    alice = make_user()
    room = make_room(owner=alice)
    settings.CHAT_ATTACHMENT_MAX_PIXELS = 100 * 100
    answer = upload(api(alice), room.pk, "wide.png", png((101, 100)))
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "too_large")


def test_a_request_without_a_file_or_not_multipart_is_refused(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    no_file = api(alice).post(f"/api/v1/rooms/{room.pk}/attachments/", {"other": "x"}, format="multipart")
    as_json = api(alice).post(f"/api/v1/rooms/{room.pk}/attachments/", {"file": "x"}, format="json")
    assert (no_file.status_code, no_file.json()["error"]["code"]) == (400, "invalid")
    assert as_json.status_code == 415


def test_only_members_upload(api, make_user, make_room):
    alice, outsider = make_user(), make_user()
    room = make_room(owner=alice)
    answer = upload(api(outsider), room.pk, "a.txt", b"hello")
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "not_member")
    assert not Attachment.objects.exists()


def _urls(attachment: dict) -> list[str]:
    return [attachment["url"], attachment["thumbnail_url"], f"/api/v1/attachments/{attachment['id']}/"]


def test_non_members_and_removed_members_get_404_for_the_file_its_thumbnail_and_its_metadata(api, make_user, make_room):
    alice, bob, outsider = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    sent = upload(api(alice), room.pk, "p.jpg", jpeg()).json()
    store(room, alice, attachments=[sent["id"]])

    for url in _urls(sent):
        assert api(bob).get(url).status_code == 200, url
        refused = api(outsider).get(url)
        assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found"), url

    participant_remove(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    for url in _urls(sent):
        assert api(bob).get(url).status_code == 404, url
        assert api(alice).get(url).status_code == 200, url
    assert api(None).get(sent["url"]).status_code == 401


def test_an_upload_not_sent_yet_is_its_uploaders_alone(api, make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    draft = upload(api(alice), room.pk, "draft.txt", b"not sent").json()
    assert api(alice).get(draft["url"]).status_code == 200
    assert api(bob).get(draft["url"]).status_code == 404


def test_served_files_carry_headers_that_keep_a_browser_from_running_them(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    picture = upload(api(alice), room.pk, "p.png", png()).json()
    document = upload(api(alice), room.pk, "minutes.txt", "café notes".encode()).json()
    store(room, alice, attachments=[picture["id"], document["id"]])

    image, content = fetch(api(alice), picture["url"])
    assert content == default_storage.open(Attachment.objects.get(pk=picture["id"]).file).read()
    text, _ = fetch(api(alice), document["url"])
    for response in (image, text):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
        assert "default-src 'none'" in response["Content-Security-Policy"]
        assert response["Cache-Control"].startswith("private")
    assert image["Content-Type"] == "image/png"
    assert image["Content-Disposition"].startswith("inline")
    assert text["Content-Type"].startswith("text/plain")
    assert text["Content-Disposition"] == 'attachment; filename="minutes.txt"'


def test_a_signed_url_works_without_credentials_until_it_expires_and_only_as_signed(
    api, make_user, make_room, settings
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    sent = upload(api(alice), room.pk, "p.jpg", jpeg()).json()
    store(room, alice, attachments=[sent["id"]])
    detail = api(bob).get(f"/api/v1/attachments/{sent['id']}/").json()
    assert detail["signed_url"].startswith("/files/") and detail["signed_url"].endswith("/p.jpg")
    anonymous = APIClient()

    response, content = fetch(anonymous, detail["signed_url"])
    assert response.status_code == 200 and content[:3] == b"\xff\xd8\xff"
    thumb, _ = fetch(anonymous, detail["signed_thumbnail_url"])
    assert (thumb.status_code, thumb["Content-Type"]) == (200, "image/webp")

    token = detail["signed_url"].split("/")[2]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert anonymous.get(f"/files/{tampered}/p.jpg").status_code == 404
    # The same signature over another attachment's id.
    payload, signature = token.split(":", 1)
    forged = signing.b64_encode(json.dumps([sent["id"] + 1, bob.pk, "f"], separators=(",", ":")).encode()).decode()
    assert payload != forged
    assert anonymous.get(f"/files/{forged}:{signature}/p.jpg").status_code == 404

    # Made for bob: it stops working when bob may no longer see it.
    participant_remove(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    assert anonymous.get(detail["signed_url"]).status_code == 404

    fresh = api(alice).get(f"/api/v1/attachments/{sent['id']}/").json()["signed_url"]
    assert anonymous.get(fresh).status_code == 200
    settings.CHAT_ATTACHMENT_URL_TTL_S = 1
    time.sleep(1.1)
    expired = anonymous.get(fresh)
    assert expired.status_code == 404 and expired.json()["error"]["code"] == "not_found"


def test_a_browser_session_uploads_with_its_csrf_token_only(make_user, make_room):
    from django.middleware.csrf import _get_new_csrf_string

    from .conftest import _named

    alice = make_user()
    room = make_room(owner=alice)
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    url = f"/api/v1/rooms/{room.pk}/attachments/"

    refused = browser.post(url, {"file": _named("a.txt", b"hello")}, format="multipart")
    secret = _get_new_csrf_string()
    browser.cookies["csrftoken"] = secret
    accepted = browser.post(url, {"file": _named("a.txt", b"hello")}, format="multipart", HTTP_X_CSRFTOKEN=secret)

    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert accepted.status_code == 201
    assert Attachment.objects.count() == 1


def _with_gps(fmt: str) -> bytes:
    image = Image.new("RGB", (48, 32), "green")
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[GPS] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)}
    out = io.BytesIO()
    image.save(out, fmt, exif=exif)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "name", "mime"), [("PNG", "p.png", "image/png"), ("WEBP", "w.webp", "image/webp")])
def test_png_and_webp_lose_their_location_too_and_stay_valid(api, make_user, make_room, fmt, name, mime):
    alice = make_user()
    room = make_room(owner=alice)
    data = _with_gps(fmt)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS)

    answer = upload(api(alice), room.pk, name, data).json()

    assert (answer["content_type"], answer["width"], answer["height"]) == (mime, 48, 32)
    with default_storage.open(Attachment.objects.get(pk=answer["id"]).file) as f:
        stored = f.read()
    kept = Image.open(io.BytesIO(stored))
    kept.load()  # every chunk still decodes
    assert kept.size == (48, 32) and kept.getpixel((0, 0))[:3] == Image.open(io.BytesIO(data)).getpixel((0, 0))[:3]
    assert not kept.getexif().get_ifd(GPS)


def test_an_animated_gif_is_an_image_with_a_still_thumbnail(api, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    frames = [Image.new("P", (30, 20), i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    answer = upload(api(alice), room.pk, "dance.gif", out.getvalue()).json()

    assert (answer["kind"], answer["content_type"], answer["width"], answer["height"]) == ("image", "image/gif", 30, 20)
    response, content = fetch(api(alice), answer["thumbnail_url"])
    assert Image.open(io.BytesIO(content)).size == (30, 20)  # never enlarged
