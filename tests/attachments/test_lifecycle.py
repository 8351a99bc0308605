"""An attachment's life: sent with a message (once, replays included), kept by a drawer entry,
and its files deleted with the message, the room or the account, by the purge task."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.services import account_delete
from attachments import services, tasks
from attachments.models import Attachment, AttachmentHold
from chat_messages.models import Message
from chat_messages.services import message_apply_delete, send_envelope
from chat_messages.workers import PersistWorker
from drawer.services import drawer_entry_remove, drawer_entry_save
from rooms.services import room_delete
from streams.pipeline.worker import Record
from streams.realtime.hub import user_group

from .conftest import jpeg, png, store, upload

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]


def files_of(attachment_id: int) -> list[str]:
    a = Attachment.objects.get(pk=attachment_id)
    return [name for name in (a.file, a.thumbnail) if name]


def stored(names: list[str]) -> list[bool]:
    return [default_storage.exists(name) for name in names]


def records(*envelopes: dict) -> list[Record]:
    return [Record("chat.messages", 0, i, str(e.get("room")).encode(), e) for i, e in enumerate(envelopes)]


def test_a_message_carries_its_attachments_with_or_without_text(api, make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    one = upload(api(alice), room.pk, "a.png", png()).json()
    two = upload(api(alice), room.pk, "b.txt", b"text").json()
    store(room, alice, attachments=[one["id"], two["id"]])
    # The room list shows what a message without text carries.
    assert api(bob).get("/api/v1/rooms/").json()[0]["last_message"]["preview"] == "📎 a.png, b.txt"
    store(room, alice, attachments=[], body="just text")

    page = api(bob).get(f"/api/v1/rooms/{room.pk}/messages/").json()["messages"]
    with_files, text = [m for m in page if m["kind"] == "text"]
    assert with_files["body"] == ""
    assert [a["id"] for a in with_files["attachments"]] == [one["id"], two["id"]]
    assert with_files["attachments"][0] == {k: one[k] for k in with_files["attachments"][0]}
    assert text["attachments"] == []
    assert Message.objects.get(pk=text["id"]).attachments is None  # nothing stored for most messages
    assert set(Attachment.objects.values_list("message_id", flat=True)) == {with_files["id"]}
    room.refresh_from_db()
    assert api(bob).get("/api/v1/rooms/").json()[0]["last_message"]["preview"] == "just text"


def test_a_replayed_batch_links_once_and_stores_once(make_user, make_room, api):
    alice = make_user()
    room = make_room(owner=alice)
    sent = upload(api(alice), room.pk, "a.png", png()).json()
    envelope = send_envelope(
        room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="look", attachments=[sent["id"]]
    )
    PersistWorker().consume(records(envelope))
    linked_at = Attachment.objects.get(pk=sent["id"]).attached_at
    PersistWorker().consume(records(envelope, envelope))  # the crash-and-replay case
    PersistWorker().consume(records(envelope, send_envelope(room_id=room.pk, sender_id=alice.pk,
                                                            client_msg_id=uuid.uuid4(), body="next")))  # fmt: skip

    messages = list(Message.objects.filter(room=room).order_by("seq").values_list("seq", "body", "attachments"))
    assert [(seq, body) for seq, body, _ in messages] == [(1, "look"), (2, "next")]
    assert [a["id"] for a in messages[0][2]] == [sent["id"]]
    attachment = Attachment.objects.get(pk=sent["id"])
    assert attachment.message_id == Message.objects.get(room=room, seq=1).pk
    assert attachment.attached_at == linked_at


def test_persist_refuses_an_attachment_that_is_not_the_senders_or_is_taken(
    make_user, make_room, api, feed, django_capture_on_commit_callbacks
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    mine = upload(api(alice), room.pk, "a.png", png()).json()
    first = send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="",
                          attachments=[mine["id"]])  # fmt: skip
    again = send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="again",
                          attachments=[mine["id"]])  # fmt: skip
    stolen = send_envelope(room_id=room.pk, sender_id=bob.pk, client_msg_id=uuid.uuid4(), body="mine now",
                           attachments=[mine["id"]])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        PersistWorker().consume(records(first, again, stolen))

    assert list(Message.objects.filter(room=room).values_list("seq", "body")) == [(1, "")]  # no seq taken
    refusals = [f for f in feed.frames(user_group(alice.pk)) + feed.frames(user_group(bob.pk)) if f["type"] == "error"]
    assert sorted((f["client_msg_id"], f["code"]) for f in refusals) == sorted(
        [(again["client_msg_id"], "invalid"), (stolen["client_msg_id"], "invalid")]
    )
    assert all(f"Attachment {mine['id']}" in f["detail"] for f in refusals)


def test_deleting_the_message_deletes_its_files_after_commit(
    make_user, make_room, api, celery_eager, django_capture_on_commit_callbacks
):
    alice = make_user()
    room = make_room(owner=alice)
    sent = upload(api(alice), room.pk, "a.jpg", jpeg()).json()
    store(room, alice, attachments=[sent["id"]])
    names = files_of(sent["id"])
    assert stored(names) == [True, True]

    with django_capture_on_commit_callbacks(execute=True):
        message_apply_delete(env={"room": room.pk, "seq": 1, "sender": alice.pk})

    assert stored(names) == [False, False]
    assert not Attachment.objects.filter(pk=sent["id"]).exists()
    message = api(alice).get(f"/api/v1/rooms/{room.pk}/messages/").json()["messages"][0]
    assert (message["deleted"], message["attachments"]) == (True, [])
    assert api(alice).get(sent["url"]).status_code == 404


def test_the_drawer_keeps_a_saved_messages_files_until_the_entry_goes(
    make_user, make_room, api, celery_eager, django_capture_on_commit_callbacks
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    sent = upload(api(alice), room.pk, "a.jpg", jpeg()).json()
    store(room, alice, attachments=[sent["id"]])
    names = files_of(sent["id"])
    entry, _ = drawer_entry_save(user=bob, room_id=room.pk, seq=1)
    saved = api(bob).get(f"/api/v1/drawer/{entry.pk}/").json()
    assert [a["id"] for a in saved["attachments"]] == [sent["id"]]
    assert saved["attachments"][0]["thumbnail_url"] == sent["thumbnail_url"]

    with django_capture_on_commit_callbacks(execute=True):
        message_apply_delete(env={"room": room.pk, "seq": 1, "sender": alice.pk})
    tasks.purge()

    assert stored(names) == [True, True]  # held by bob's entry
    assert api(bob).get(sent["url"]).status_code == 200
    assert api(bob).get(sent["thumbnail_url"]).status_code == 200
    assert api(alice).get(sent["url"]).status_code == 404  # her message is gone; she saved nothing

    with django_capture_on_commit_callbacks(execute=True):
        drawer_entry_remove(user=bob, entry_id=entry.pk)
    assert stored(names) == [False, False]
    assert api(bob).get(sent["url"]).status_code == 404


def test_deleting_the_room_deletes_its_files_but_not_what_a_drawer_keeps(
    make_user, make_room, api, celery_eager, django_capture_on_commit_callbacks
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    kept = upload(api(alice), room.pk, "kept.png", png()).json()
    gone = upload(api(alice), room.pk, "gone.png", png()).json()
    draft = upload(api(alice), room.pk, "draft.txt", b"never sent").json()
    store(room, alice, attachments=[kept["id"]], body="keep this")
    store(room, alice, attachments=[gone["id"]])
    drawer_entry_save(user=bob, room_id=room.pk, seq=1)
    kept_names, gone_names, draft_names = (files_of(a["id"]) for a in (kept, gone, draft))

    room_delete(user_id=alice.pk, room_id=room.pk)
    # The persist consumer hears room.deleted and queues the purge at once (else the sweep does).
    with django_capture_on_commit_callbacks(execute=True):
        PersistWorker().consume(records({"v": 1, "kind": "room.deleted", "room": room.pk}))

    assert stored(gone_names + draft_names) == [False, False, False]
    assert stored(kept_names) == [True, True]
    assert api(bob).get(kept["url"]).status_code == 200
    assert api(alice).get(kept["url"]).status_code == 404


@pytest.mark.parametrize("erase", [True, False])
def test_deleting_an_account_deletes_its_unsent_uploads_and_erased_messages_files(
    make_user, make_room, api, celery_eager, django_capture_on_commit_callbacks, erase
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=bob, members=[alice])
    sent = upload(api(alice), room.pk, "sent.png", png()).json()
    draft = upload(api(alice), room.pk, "draft.png", png()).json()
    store(room, alice, attachments=[sent["id"]])
    sent_names, draft_names = files_of(sent["id"]), files_of(draft["id"])

    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=alice, erase_messages=erase)

    assert stored(draft_names) == [False, False]
    assert stored(sent_names) == [not erase, not erase]
    visible = api(bob).get(sent["url"]).status_code
    assert visible == (404 if erase else 200)  # kept: the message stays for bob, from "deleted user"


def test_an_erased_account_leaves_no_copy_in_drawers(
    make_user, make_room, api, celery_eager, django_capture_on_commit_callbacks
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=bob, members=[alice])
    sent = upload(api(alice), room.pk, "sent.png", png()).json()
    store(room, alice, attachments=[sent["id"]])
    entry, _ = drawer_entry_save(user=bob, room_id=room.pk, seq=1)
    names = files_of(sent["id"])

    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=alice, erase_messages=True)

    assert stored(names) == [False, False]
    assert api(bob).get(f"/api/v1/drawer/{entry.pk}/").json()["attachments"] == []


def test_the_sweep_deletes_uploads_never_sent_and_the_purge_works_in_chunks(
    make_user, make_room, api, settings, django_capture_on_commit_callbacks
):
    alice = make_user()
    room = make_room(owner=alice)
    old = [upload(api(alice), room.pk, f"old{i}.txt", b"old").json()["id"] for i in range(5)]
    new = upload(api(alice), room.pk, "new.txt", b"new").json()["id"]
    Attachment.objects.filter(pk__in=old).update(created_at=timezone.now() - timedelta(days=2))
    names = [n for a in old for n in files_of(a)]
    settings.CHAT_ATTACHMENT_PURGE_CHUNK = 2

    assert services.attachments_sweep() == 5
    with django_capture_on_commit_callbacks(execute=True):  # files go once the rows' deletion commits
        assert services.attachments_purge() == (2, True)
        assert services.attachments_purge() == (2, True)
        assert services.attachments_purge() == (1, False)
        assert services.attachments_purge() == (0, False)

    assert stored(names) == [False] * 5
    assert list(Attachment.objects.values_list("pk", flat=True)) == [new]
    assert stored(files_of(new)) == [True]


def test_the_purge_task_queues_itself_again_until_everything_is_gone(make_user, make_room, api, settings, celery_eager):
    alice = make_user()
    room = make_room(owner=alice)
    ids = [upload(api(alice), room.pk, f"f{i}.txt", b"x").json()["id"] for i in range(5)]
    Attachment.objects.filter(pk__in=ids).update(released_at=timezone.now())
    settings.CHAT_ATTACHMENT_PURGE_CHUNK = 2

    tasks.purge.delay()

    assert not Attachment.objects.exists()


def test_a_hold_keeps_a_released_attachment_from_the_purge(make_user, make_room, api):
    alice = make_user()
    room = make_room(owner=alice)
    kept = upload(api(alice), room.pk, "k.txt", b"k").json()["id"]
    services.attachments_hold(user_id=alice.pk, attachment_ids=[kept], holder="drawer:999")
    services.attachments_release(unattached_of=alice.pk)

    assert services.attachments_purge() == (0, False)
    assert AttachmentHold.objects.filter(attachment_id=kept).count() == 1
    services.attachments_unhold(holders=["drawer:999"])
    assert services.attachments_purge() == (1, False)


def test_text_only_batches_pay_nothing_for_attachments_and_pages_need_no_join(make_user, make_room, api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chat_messages.selectors import history_page
    from chat_messages.services import messages_store

    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    ids = [upload(api(alice), room.pk, f"p{i}.png", png()).json()["id"] for i in range(3)]

    def statements(*envelopes) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert len(messages_store(sends=list(envelopes)).stored) == len(envelopes)
        return [q["sql"] for q in captured]

    def text(body: str) -> dict:
        return send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body=body)

    def with_files(*attachment_ids: int) -> dict:
        return send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body="",
                             attachments=list(attachment_ids))  # fmt: skip

    plain = statements(text("a"), text("b"), text("c"))
    attaching = statements(text("d"), with_files(ids[0], ids[1]), with_files(ids[2]))
    assert not any("attachments_attachment" in sql for sql in plain)
    assert len(attaching) == len(plain) + 2  # their rows locked, then linked: whatever their number

    def reads(before: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            history_page(room_id=room.pk, user_id=bob.pk, before=before, limit=3)
        return len(captured)

    assert reads(4) == reads(7)  # three text messages, then a page with the three files
