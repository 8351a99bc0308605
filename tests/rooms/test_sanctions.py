"""A moderator's mutes and bans in a room (rooms.services.room_sanction_*), on the real database and Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from chat_messages.services import message_send
from rooms import selectors, services
from rooms.models import Participant, RoomSanction
from streams.errors import ChatError
from streams.realtime.hub import user_group
from streams.realtime.protocol import OP_LEAVE_ROOM, OP_ROOM_MUTE

pytestmark = pytest.mark.django_db

MUTE, BAN = RoomSanction.Kind.MUTE, RoomSanction.Kind.BAN


def refused(code: str, fn, **kwargs) -> ChatError:
    with pytest.raises(ChatError) as caught:
        fn(**kwargs)
    assert caught.value.code == code, caught.value.detail
    return caught.value


@pytest.fixture
def moderator(make_user):
    return make_user("mod")


def test_a_mute_refuses_the_users_rest_send_with_its_end_and_lets_others_send(
    make_user, make_room, moderator, settings
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    until = timezone.now() + timedelta(hours=1)
    services.room_sanction_impose(room=room, user=bob, kind=MUTE, until=until, reason="flooding", actor=moderator)
    error = refused("muted", message_send, user=bob, room_id=room.pk, client_msg_id=str(uuid.uuid4()), body="hi")
    assert until.astimezone(UTC).strftime("%Y-%m-%d %H:%M") in error.detail
    assert Participant.objects.filter(room=room, user=bob).exists()  # muted, still a member
    assert selectors.room_mutes_for_user(user_id=bob.pk) == {room.pk: until.timestamp()}
    assert selectors.room_mutes_for_user(user_id=alice.pk) == {}


def test_a_mute_tells_the_users_sockets_and_is_audited(
    make_user, make_room, moderator, feed, django_capture_on_commit_callbacks
):
    bob = make_user()
    room = make_room(members=[bob])
    with django_capture_on_commit_callbacks(execute=True):
        services.room_sanction_impose(room=room, user=bob, kind=MUTE, actor=moderator)
    controls = [c for g, _, c in feed.events() if g == user_group(bob.pk) and c]
    assert controls == [{"op": OP_ROOM_MUTE, "room": room.pk, "until": None, "active": True}]
    entry = AuditEntry.objects.get(action="room.user_muted")
    assert (entry.actor_id, entry.target_id, entry.after["user"], entry.after["until"]) == (
        moderator.pk,
        str(room.pk),
        bob.pk,
        None,
    )


def test_an_expired_mute_no_longer_counts(make_user, make_room, moderator):
    bob = make_user()
    room = make_room(members=[bob])
    sanction = services.room_sanction_impose(
        room=room, user=bob, kind=MUTE, until=timezone.now() + timedelta(hours=1), actor=moderator
    )
    RoomSanction.objects.filter(pk=sanction.pk).update(until=timezone.now() - timedelta(seconds=1))
    assert selectors.room_mutes_for_user(user_id=bob.pk) == {}
    selectors.participant_get_to_send(room_id=room.pk, user_id=bob.pk)  # no refusal


def test_lifting_a_mute_lets_the_user_send_and_is_audited(
    make_user, make_room, moderator, feed, django_capture_on_commit_callbacks
):
    bob = make_user()
    room = make_room(members=[bob])
    sanction = services.room_sanction_impose(room=room, user=bob, kind=MUTE, actor=moderator)
    feed.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.room_sanction_lift(sanction=sanction, actor=moderator)
    assert not services.room_sanction_lift(sanction=sanction, actor=moderator)  # once
    selectors.participant_get_to_send(room_id=room.pk, user_id=bob.pk)
    controls = [c for g, _, c in feed.events() if g == user_group(bob.pk) and c]
    assert controls == [{"op": OP_ROOM_MUTE, "room": room.pk, "until": None, "active": False}]
    assert AuditEntry.objects.filter(action="room.user_unmuted", actor=moderator).count() == 1


def test_a_mute_refuses_edits_too(make_user, make_room, moderator):
    from chat_messages.services import message_edit_request

    bob = make_user()
    room = make_room(members=[bob])
    services.room_sanction_impose(room=room, user=bob, kind=MUTE, actor=moderator)
    refused("muted", message_edit_request, user=bob, room_id=room.pk, seq=1, body="changed")


def test_a_mute_in_the_past_is_refused(make_user, make_room, moderator):
    bob = make_user()
    room = make_room(members=[bob])
    refused("invalid", services.room_sanction_impose, room=room, user=bob, kind=MUTE,
            until=timezone.now() - timedelta(minutes=1), actor=moderator)  # fmt: skip


def test_a_ban_removes_the_member_with_a_system_line_and_stops_their_sockets(
    make_user, make_room, moderator, feed, django_capture_on_commit_callbacks
):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    with django_capture_on_commit_callbacks(execute=True):
        services.room_sanction_impose(room=room, user=bob, kind=BAN, reason="abuse", actor=moderator)
    assert not Participant.objects.filter(room=room, user=bob).exists()
    controls = [c for g, _, c in feed.events() if g == user_group(bob.pk) and c]
    assert {"op": OP_LEAVE_ROOM, "room": room.pk} in controls
    assert AuditEntry.objects.filter(action="room.user_banned", target_id=str(room.pk)).count() == 1


def test_a_banned_user_cannot_join_be_invited_or_reopen_a_direct_room(make_user, make_room, moderator):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    room.is_public = True
    room.save()
    ban = services.room_sanction_impose(room=room, user=bob, kind=BAN, actor=moderator)
    refused("banned", services.participant_join, user_id=bob.pk, room_id=room.pk)
    error = refused("banned", services.participant_invite, actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    assert "that user" in error.detail
    direct, _ = services.room_open_direct(user=alice, other=bob)
    services.room_sanction_impose(room=direct, user=bob, kind=BAN, actor=moderator)
    refused("banned", services.room_open_direct, user=bob, other=alice)
    # Lifted: back in by joining.
    services.room_sanction_lift(sanction=ban, actor=moderator)
    _, joined = services.participant_join(user_id=bob.pk, room_id=room.pk)
    assert joined


def test_a_timed_ban_ends_by_itself(make_user, make_room, moderator):
    bob = make_user()
    room = make_room(members=[bob])
    room.is_public = True
    room.save()
    ban = services.room_sanction_impose(
        room=room, user=bob, kind=BAN, until=timezone.now() + timedelta(days=1), actor=moderator
    )
    refused("banned", services.participant_join, user_id=bob.pk, room_id=room.pk)
    RoomSanction.objects.filter(pk=ban.pk).update(until=timezone.now() - timedelta(seconds=1))
    assert services.participant_join(user_id=bob.pk, room_id=room.pk)[1]
