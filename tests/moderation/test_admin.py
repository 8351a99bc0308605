"""The report queue in the admin: open reports first with their counts, the message in its
context, and each action (resolving the message's reports and leaving an audit entry)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from moderation.models import ModerationWarning, Report
from moderation.services import report_create
from rooms.models import Participant, RoomSanction

pytestmark = pytest.mark.django_db

QUEUE = "/admin/moderation/report/"


@pytest.fixture
def queue(make_user, make_room, post):
    """lobby: alice's rude message reported by bob and carol; an older, dismissed report on a calm one."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = make_room(owner=bob, members=[alice, carol], name="lobby")
    calm = post(room, alice, "good morning")
    old, _ = report_create(user=bob, room_id=room.pk, seq=calm.seq, reason="other")
    Report.objects.filter(pk=old.pk).update(status=Report.Status.DISMISSED)
    before = post(room, carol, "what do you think?")
    rude = post(room, alice, "you are all idiots")
    after = post(room, bob, "please be kind")
    first, _ = report_create(user=bob, room_id=room.pk, seq=rude.seq, reason="abuse", note="rude")
    second, _ = report_create(user=carol, room_id=room.pk, seq=rude.seq, reason="abuse")
    return {"room": room, "alice": alice, "rude": rude, "before": before, "after": after, "reports": [first, second],
            "dismissed": old}  # fmt: skip


def act(admin_client, action: str, report, **extra):
    response = admin_client.post(QUEUE, {"action": action, "_selected_action": [report.pk], "index": 0, **extra})
    assert response.status_code == 302, response.content.decode()[:2000]


def statuses(message) -> set[str]:
    return set(Report.objects.filter(message=message).values_list("status", flat=True))


def test_the_queue_lists_open_reports_first_with_their_counts(admin_client, queue):
    page = admin_client.get(QUEUE)
    assert page.status_code == 200
    rows = list(page.context["cl"].result_list)
    assert [r.pk for r in rows][:2] == sorted(r.pk for r in queue["reports"])
    assert rows[-1].pk == queue["dismissed"].pk
    assert [r.open_on_message for r in rows] == [2, 2, 0]
    assert "you are all idiots" in page.content.decode()


def test_a_reports_page_shows_the_message_in_its_context(admin_client, queue):
    page = admin_client.get(f"{QUEUE}{queue['reports'][0].pk}/change/").content.decode()
    assert (
        page.index("what do you think?")
        < page.index("<strong>you are all idiots</strong>")
        < page.index("please be kind")
    )
    assert f"▶ #{queue['rude'].seq}" in page
    assert "carol" in page and "alice" in page


def test_dismissing(admin_client, queue):
    act(admin_client, "dismiss", queue["reports"][0])
    assert statuses(queue["rude"]) == {"dismissed"}
    assert AuditEntry.objects.filter(action="moderation.reports_resolved", target_id=str(queue["rude"].pk)).exists()


def test_warning_the_sender_with_a_text(admin_client, queue):
    act(admin_client, "warn", queue["reports"][1], text="Mind your words.")
    assert ModerationWarning.objects.get(user=queue["alice"]).text == "Mind your words."
    assert statuses(queue["rude"]) == {"actioned"}
    assert AuditEntry.objects.filter(action="moderation.user_warned").count() == 1


@pytest.mark.parametrize(("action", "hours"), [("mute_1h", 1), ("mute_24h", 24), ("mute_168h", 168)])
def test_muting_the_sender_in_the_room(admin_client, queue, action, hours):
    act(admin_client, action, queue["reports"][0])
    mute = RoomSanction.objects.get(user=queue["alice"], room=queue["room"], kind="mute")
    assert abs((mute.until - timezone.now()).total_seconds() - hours * 3600) < 60
    assert statuses(queue["rude"]) == {"actioned"}
    assert AuditEntry.objects.filter(action="room.user_muted").count() == 1


def test_banning_the_sender_from_the_room(admin_client, queue):
    act(admin_client, "ban", queue["reports"][0])
    assert not Participant.objects.filter(room=queue["room"], user=queue["alice"]).exists()
    assert statuses(queue["rude"]) == {"actioned"}
    assert AuditEntry.objects.filter(action="room.user_banned").count() == 1


def test_suspending_the_senders_account(admin_client, queue):
    act(admin_client, "suspend_168h", queue["reports"][0])
    queue["alice"].refresh_from_db()
    assert queue["alice"].is_suspended()
    assert statuses(queue["rude"]) == {"actioned"}
    assert AuditEntry.objects.filter(action="account.suspended").count() == 1


@pytest.mark.kafka
def test_deleting_the_message_for_everyone(admin_client, queue):
    act(admin_client, "delete", queue["reports"][0])
    assert statuses(queue["rude"]) == {"actioned"}
    assert AuditEntry.objects.filter(action="message.deleted_by_moderator").count() == 1


def test_reports_cannot_be_added_or_deleted_by_hand(admin_client, queue):
    assert admin_client.get(f"{QUEUE}add/").status_code == 403
    assert admin_client.post(f"{QUEUE}{queue['reports'][0].pk}/delete/", {"post": "yes"}).status_code == 403
    assert 'value="delete_selected"' not in admin_client.get(QUEUE).content.decode()  # nor in bulk
