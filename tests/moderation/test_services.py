"""Moderation's services: reports, warnings, and each action on a report, on the real stack."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from moderation import selectors, services
from moderation.models import ModerationWarning, Report
from rooms.models import Participant, RoomSanction
from streams.errors import ChatError
from streams.realtime.hub import user_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def reported(make_user, make_room, post):
    """A room of alice (the sender), bob and carol (who both report alice's message)."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = make_room(owner=bob, members=[alice, carol], name="lobby")
    message = post(room, alice, "you are all idiots")
    first, _ = services.report_create(user=bob, room_id=room.pk, seq=message.seq, reason="abuse", note="rude")
    services.report_create(user=carol, room_id=room.pk, seq=message.seq, reason="abuse")
    return {"room": room, "message": message, "sender": alice, "report": first}


def resolved(message) -> set[tuple[str, str]]:
    return set(Report.objects.filter(message=message).values_list("status", "resolution"))


def test_a_report_of_a_system_line_or_a_deleted_message_is_refused(make_user, make_room, post):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])  # seq 1, 2: nothing, the owner made it
    message = post(room, alice)
    type(message).objects.filter(pk=message.pk).update(deleted_at=timezone.now())
    with pytest.raises(ChatError) as caught:
        services.report_create(user=bob, room_id=room.pk, seq=message.seq, reason="spam")
    assert caught.value.code == "not_found"


def test_a_report_counts_with_the_others_of_its_message(reported):
    report = selectors.reports_with_counts(Report.objects.filter(pk=reported["report"].pk)).get()
    assert report.open_on_message == 2


def test_the_context_shows_the_messages_around_the_reported_one(reported, post):
    room, alice = reported["room"], reported["sender"]
    after = post(room, alice, "sorry")
    context = selectors.report_context(report=reported["report"])
    assert [(c["sender"], c["body"], c["reported"]) for c in context if c["sender"]] == [
        ("alice", "you are all idiots", True),
        ("alice", "sorry", False),
    ]
    assert [c["seq"] for c in context] == sorted(c["seq"] for c in context)
    assert after.seq in [c["seq"] for c in context]


def test_warning_a_user_reaches_their_sockets_after_commit(
    make_user, moderator, feed, django_capture_on_commit_callbacks
):
    alice = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        warning = services.warning_issue(user=alice, text="Keep it civil.", actor=moderator)
    frames = feed.frames(user_group(alice.pk))
    assert frames == [{"type": "moderation.warning.v1", "warning": {
        "id": warning.pk, "text": "Keep it civil.", "created_at": warning.created_at.isoformat(), "dismissed": False}}]  # fmt: skip
    assert AuditEntry.objects.filter(action="moderation.user_warned", target_id=str(alice.pk)).count() == 1


def test_dismissing_resolves_every_open_report_of_the_message(reported, moderator):
    services.report_act(report=reported["report"], action="dismiss", actor=moderator)
    assert resolved(reported["message"]) == {("dismissed", "dismissed")}
    entry = AuditEntry.objects.get(action="moderation.reports_resolved")
    assert entry.before["status"] == "open" and entry.after["status"] == "dismissed"
    assert len(entry.after["reports"]) == 2


def test_warning_the_sender_from_a_report(reported, moderator):
    services.report_act(report=reported["report"], action="warn", actor=moderator)
    warning = ModerationWarning.objects.get(user=reported["sender"])
    assert warning.report_id == reported["report"].pk
    assert resolved(reported["message"]) == {("actioned", "alice warned")}


def test_muting_the_sender_for_a_day_from_a_report(reported, moderator):
    services.report_act(report=reported["report"], action="mute", actor=moderator, duration=timedelta(hours=24))
    mute = RoomSanction.objects.get(user=reported["sender"], kind="mute")
    assert timedelta(hours=23, minutes=59) < mute.until - timezone.now() <= timedelta(hours=24)
    assert resolved(reported["message"]) == {("actioned", "alice muted in 'lobby' for 1 day")}
    assert AuditEntry.objects.filter(action="room.user_muted", actor=moderator).count() == 1


def test_banning_the_sender_from_a_report_removes_them(reported, moderator):
    services.report_act(report=reported["report"], action="ban", actor=moderator)
    assert not Participant.objects.filter(room=reported["room"], user=reported["sender"]).exists()
    assert resolved(reported["message"]) == {("actioned", "alice banned from 'lobby' until lifted")}


def test_suspending_the_sender_from_a_report(reported, moderator):
    services.report_act(report=reported["report"], action="suspend", actor=moderator, duration=timedelta(days=7))
    alice = reported["sender"]
    alice.refresh_from_db()
    assert alice.is_suspended()
    assert "report" in alice.suspension_reason
    assert resolved(reported["message"]) == {("actioned", "alice's account suspended for 7 days")}


@pytest.mark.kafka
def test_deleting_the_message_from_a_report(reported, moderator):
    services.report_act(report=reported["report"], action="delete", actor=moderator)
    assert resolved(reported["message"]) == {("actioned", "message deleted for everyone")}
    assert AuditEntry.objects.filter(action="message.deleted_by_moderator", actor=moderator).count() == 1


def test_a_new_report_after_resolution_is_open_again(reported, moderator, make_user):
    services.report_act(report=reported["report"], action="dismiss", actor=moderator)
    message = reported["message"]
    bob = reported["report"].reporter
    again, created = services.report_create(user=bob, room_id=message.room_id, seq=message.seq, reason="spam")
    assert created and again.status == "open"


def test_storage_refuses_a_message_accepted_just_before_a_mute_or_a_suspension(
    make_user, make_room, moderator, feed, django_capture_on_commit_callbacks
):
    import uuid

    from accounts.services import account_suspend
    from chat_messages.models import Message
    from chat_messages.services import messages_store
    from rooms.services import room_sanction_impose

    alice, bob, carol = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob, carol])
    room_sanction_impose(room=room, user=bob, kind=RoomSanction.Kind.MUTE, actor=moderator)
    account_suspend(user=carol, actor=moderator)
    feed.clear()
    sends = [
        {"room": room.pk, "sender": u.pk, "client_msg_id": str(uuid.uuid4()), "body": "hi"} for u in (alice, bob, carol)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        messages_store(sends=sends)
    assert list(Message.objects.filter(room=room).values_list("sender_id", flat=True)) == [alice.pk]
    errors = {g: f["code"] for g, f, _ in feed.events() if f and f["type"] == "error"}
    assert errors == {user_group(bob.pk): "muted", user_group(carol.pk): "suspended"}
