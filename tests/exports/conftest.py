"""Fixtures of the exports tests: a storage folder of the test's own, bulk history, reading a ZIP."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone


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


@pytest.fixture
def add_messages():
    """Store ``count`` messages from ``sender`` in ``room`` at once (bulk), after its last seq."""
    from chat_messages.models import Message
    from rooms.models import Room

    def add(room, sender, count: int = 1, body: str = "hello", **fields) -> list:
        start = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
        now = timezone.now()
        rows = [
            Message(
                room_id=room.pk, seq=start + i, sender=sender, client_msg_id=uuid.uuid4(),
                body=f"{body} {start + i}", created_at=now, **fields,
            )
            for i in range(1, count + 1)
        ]  # fmt: skip
        Message.objects.bulk_create(rows, batch_size=2000)
        Room.objects.filter(pk=room.pk).update(last_seq=F("last_seq") + count, last_message_at=now)
        room.refresh_from_db()
        return rows

    return add


def zip_of(export) -> dict:
    """The export's ZIP as {name: parsed JSON, or bytes for other files}."""
    with default_storage.open(export.file, "rb") as handle:
        return unzip(handle.read())


def unzip(data: bytes) -> dict:
    files = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            raw = archive.read(name)
            files[name] = json.loads(raw) if name.endswith(".json") else raw
    return files
