"""Moderators list attachments read-only; with S3 storage, files are a redirect to the store's
own presigned URL, made after the same check."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from attachments.models import Attachment

from .conftest import png, store, upload

pytestmark = pytest.mark.django_db


def test_moderators_list_attachments_but_cannot_change_them(admin_client, make_user, make_room, api):
    alice = make_user()
    room = make_room(owner=alice)
    sent = upload(api(alice), room.pk, "holiday-snap.png", png()).json()

    listing = admin_client.get("/admin/attachments/attachment/", {"q": "holiday"})
    assert listing.status_code == 200 and "holiday-snap.png" in listing.content.decode()
    detail = admin_client.get(f"/admin/attachments/attachment/{sent['id']}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert admin_client.get("/admin/attachments/attachment/add/").status_code == 403
    assert admin_client.post(f"/admin/attachments/attachment/{sent['id']}/delete/").status_code == 403
    assert Attachment.objects.filter(pk=sent["id"]).exists()


@pytest.fixture
def s3(settings):
    """The S3 backend of django-storages, pointed at an address where nothing listens: presigning
    happens in the process, so a redirect can be checked without a store."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "chat-attachments", "endpoint_url": "http://127.0.0.1:9", "access_key": "key",
                "secret_key": "secret", "region_name": "us-east-1", "addressing_style": "path",
                "signature_version": "s3v4", "querystring_auth": True,
            },
        },
    }  # fmt: skip
    settings.S3_PUBLIC_ENDPOINT_URL = "https://chat.example.com"


def test_with_s3_a_member_is_redirected_to_a_short_lived_presigned_url_and_others_get_404(
    make_user, make_room, api, s3
):
    alice, bob, outsider = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    attachment = Attachment.objects.create(
        room=room, uploader=alice, kind="file", name="plan.pdf", content_type="application/pdf", size=10,
        file="attachments/2026/12/token/original.pdf",
    )  # fmt: skip
    store(room, alice, attachments=[attachment.pk])

    response = api(bob).get(f"/api/v1/attachments/{attachment.pk}/file/")

    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert (url.scheme, url.netloc, url.path) == (
        "https", "chat.example.com", "/chat-attachments/attachments/2026/12/token/original.pdf",
    )  # fmt: skip
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["300"] and query["X-Amz-Signature"]
    assert query["response-content-type"] == ["application/pdf"]
    assert query["response-content-disposition"] == ['attachment; filename="plan.pdf"']
    assert response["Cache-Control"].startswith("private")
    assert api(outsider).get(f"/api/v1/attachments/{attachment.pk}/file/").status_code == 404
