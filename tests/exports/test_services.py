"""Building exports: what a user's and a room's ZIP hold, in bounded queries, with progress and failures."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attachments.models import Attachment
from chat_messages.models import Message
from drawer.services import drawer_entry_save
from exports import services
from exports.models import DataExport
from rooms.models import Participant
from rooms.services import room_open_direct
from streams.realtime.protocol import DELETED_USER
from tests.exports.conftest import zip_of

pytestmark = pytest.mark.django_db


def build_for(user, **options) -> DataExport:
    export, created = services.export_request_user(user=user, **options)
    assert created
    return services.export_build(export_id=export.pk)


def test_a_users_export_holds_their_account_rooms_messages_and_drawer_and_nobody_elses_words(
    make_user, make_room, add_messages
):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=bob, members=[alice], name="team")
    direct, _ = room_open_direct(user=alice, other=bob)
    add_messages(room, alice, 2, body="from alice")
    add_messages(room, bob, 2, body="bob's secret")
    add_messages(direct, alice, 1, body="hi bob")
    Message.objects.filter(room=room, seq=2).update(deleted_at=timezone.now(), body="")
    Participant.objects.filter(room=room, user=alice).update(last_read_seq=3)
    drawer_entry_save(user=alice, message_id=Message.objects.get(room=room, seq=3).pk)

    export = build_for(alice)

    assert export.status == DataExport.Status.DONE and export.progress == 100
    assert export.size and export.file.startswith("exports/") and export.expires_at > timezone.now()
    files = zip_of(export)
    assert files["account.json"]["username"] == "alice"
    assert "password" not in files["account.json"]
    rooms = {r["room"]["id"]: r for r in files["rooms.json"]}
    assert rooms[room.pk]["role"] == "member" and rooms[room.pk]["last_read_seq"] == 3
    assert rooms[room.pk]["room"]["name"] == "team"
    assert rooms[direct.pk]["with"] == "bob"
    messages = files["messages.json"]
    assert [(m["room"]["id"], m["seq"], m["body"], m["deleted"]) for m in messages] == [
        (room.pk, 1, "from alice 1", False), (room.pk, 2, "", True), (direct.pk, 1, "hi bob 1", False),
    ]  # fmt: skip
    # Bob's words reach her export only as what she saved to her own drawer.
    assert [(d["message"]["sender"], d["message"]["body"]) for d in files["drawer.json"]] == [("bob", "bob's secret 3")]
    assert sum("bob's secret" in str(v) for v in files.values()) == 1
    assert files["attachments.json"] == []


def test_a_users_attachments_come_with_their_files_within_the_limit(settings, make_user, make_room, add_messages):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    alice = make_user("alice")
    room = make_room(owner=alice)
    message = add_messages(room, alice, 1)[0]
    stored = default_storage.save("attachments/x/original.txt", ContentFile(b"notes of alice"))
    Attachment.objects.create(
        room=room, uploader=alice, message_id=message.pk, kind="file", name="notes.txt", content_type="text/plain",
        size=14, file=stored, attached_at=timezone.now(),
    )  # fmt: skip

    files = zip_of(build_for(alice))
    (meta,) = files["attachments.json"]
    assert meta["name"] == "notes.txt" and files[meta["file"]] == b"notes of alice"

    settings.EXPORT_FILES_MAX_BYTES = 10
    files = zip_of(build_for(alice))
    assert files["attachments.json"][0]["file"] is None
    assert not [name for name in files if name.startswith("attachments/")]


def test_a_rooms_export_holds_every_message_in_order_with_deleted_users_and_deleted_messages(
    make_user, make_room, add_messages
):
    admin = make_user("admin")
    admin.is_superuser = admin.is_staff = True
    admin.save()
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=bob, members=[alice], name="history")
    add_messages(room, alice, 2, body="alice says")
    add_messages(room, bob, 2, body="bob says")
    add_messages(room, None, 1, body="from a gone account")
    Message.objects.filter(room=room, seq=4).update(deleted_at=timezone.now(), body="")

    export = services.export_request_room(room=room, actor=admin)
    export = services.export_build(export_id=export.pk)

    files = zip_of(export)
    assert files["room.json"]["name"] == "history"
    assert sorted(m["user"]["username"] for m in files["members.json"]) == ["alice", "bob"]
    shown = [(m["seq"], m["sender"]["username"], m["body"], m["deleted"]) for m in files["messages.json"]]
    assert shown == [
        (1, "alice", "alice says 1", False), (2, "alice", "alice says 2", False), (3, "bob", "bob says 3", False),
        (4, "bob", "", True), (5, DELETED_USER, "from a gone account 5", False),
    ]  # fmt: skip


def test_a_long_history_is_read_in_pages_of_bounded_queries_and_progress_moves(
    settings, make_user, make_room, add_messages
):
    settings.EXPORT_CHUNK = 50
    alice = make_user("alice")
    room = make_room(owner=alice)
    add_messages(room, alice, 120)
    seen = []

    def measure(count: int) -> int:
        export, _ = services.export_request_user(user=alice)
        with CaptureQueriesContext(connection) as queries:
            export = services.export_build(export_id=export.pk)
        assert export.status == DataExport.Status.DONE
        progress = [q["sql"] for q in queries.captured_queries if '"items_done" =' in q["sql"]]
        seen.append(progress)
        assert len(zip_of(export)["messages.json"]) == count
        return len(queries.captured_queries)

    small = measure(120)
    add_messages(room, alice, 1000)
    large = measure(1120)
    # 1,000 more messages are 20 more pages: each costs a read and a progress note, nothing per row.
    assert large - small == 20 * 2
    # Progress was written after each page of messages (3 pages, then 23).
    assert len(seen[1]) > len(seen[0]) >= 3


def test_progress_is_visible_while_it_runs(settings, make_user, make_room, add_messages):
    """Each page's progress is its own statement outside any transaction: a poller sees it move."""
    settings.EXPORT_CHUNK = 10
    alice = make_user("alice")
    add_messages(make_room(owner=alice), alice, 35)
    export, _ = services.export_request_user(user=alice)
    with CaptureQueriesContext(connection) as queries:
        services.export_build(export_id=export.pk)
    done = [q["sql"] for q in queries.captured_queries if "items_done" in q["sql"] and "UPDATE" in q["sql"]]
    assert len(done) >= 4 + 1  # the total, then one per page of messages (4) and the other files
    export.refresh_from_db()
    assert export.items_done == export.items_total >= 36  # 35 messages and the room


def test_a_failure_is_recorded_on_the_export_and_the_user_may_start_another(settings, make_user, make_room, tmp_path):
    alice = make_user("alice")
    make_room(owner=alice)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the storage folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocker)}},
    }

    export = build_for(alice)

    assert export.status == DataExport.Status.FAILED and export.finished_at is not None
    assert export.error.startswith("The export failed:") and not export.file
    again, created = services.export_request_user(user=alice)
    assert created and again.pk != export.pk


def test_one_unfinished_export_per_user(make_user):
    alice = make_user("alice")
    first, created = services.export_request_user(user=alice)
    second, created_again = services.export_request_user(user=alice)
    assert created and not created_again and second.pk == first.pk
    assert DataExport.objects.filter(requester_id=alice.pk).count() == 1
