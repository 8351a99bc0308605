"""audit_record: what an entry keeps, in whose transaction, and that it is written once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from audit.models import AuditEntry
from audit.services import audit_record, audit_values

pytestmark = pytest.mark.django_db


def test_an_entry_keeps_who_what_when_and_the_values_before_and_after(make_user):
    moderator = make_user("mod")
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    entry = audit_record(
        action="room.updated_by_moderator",
        actor=moderator,
        target_type="room",
        target_id=42,
        before={"name": "old", "at": when},
        after={"name": "new"},
        detail="renamed",
        ip="127.0.0.1",
    )

    entry = AuditEntry.objects.get(pk=entry.pk)
    assert (entry.actor, entry.actor_username, entry.action) == (moderator, "mod", "room.updated_by_moderator")
    assert (entry.target_type, entry.target_id, entry.detail, entry.ip) == ("room", "42", "renamed", "127.0.0.1")
    assert entry.before == {"name": "old", "at": "2026-01-02T03:04:05Z"}  # dates as ISO text
    assert entry.after == {"name": "new"}
    assert entry.at is not None
    assert str(entry).endswith("mod: room.updated_by_moderator room#42")


def test_the_system_and_anonymous_visitors_are_no_actor():
    system = audit_record(action="dead_letter.discarded")
    anonymous = audit_record(action="auth.login_throttled", actor=AnonymousUser(), ip="::1")
    for entry in (system, anonymous):
        entry.refresh_from_db()
        assert (entry.actor_id, entry.actor_username, entry.target_id) == (None, "", "")
    assert "system: dead_letter.discarded" in str(system)
    assert anonymous.ip == "::1"


def test_an_address_that_is_not_one_is_kept_in_the_detail_not_failing_the_action():
    entry = audit_record(action="auth.login_throttled", ip="1.2.3.4,5.6.7.8", detail="refused")
    entry.refresh_from_db()
    assert entry.ip is None
    assert entry.detail == "refused (client address as given: '1.2.3.4,5.6.7.8')"
    assert audit_record(action="auth.login_throttled", ip=" 2001:DB8::1 ").ip == "2001:db8::1"


@pytest.mark.parametrize("action", ["", "deleted", "Room.Deleted", "room.", "room..deleted", "room deleted", None])
def test_an_action_that_is_not_dotted_lower_case_words_is_a_programming_error(action):
    with pytest.raises(ValueError):
        audit_record(action=action)
    assert not AuditEntry.objects.exists()


def test_the_entry_is_written_in_the_callers_transaction(make_user):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="room.deleted_by_moderator", actor=make_user(), target_id=1)
        raise RuntimeError("the action failed")
    assert not AuditEntry.objects.exists()


def test_an_entry_is_never_rewritten():
    entry = audit_record(action="auth.token_revoked", detail="as it happened")
    entry.detail = "as someone would rather tell it"
    with pytest.raises(ValueError):
        entry.save()
    assert AuditEntry.objects.get(pk=entry.pk).detail == "as it happened"


def test_the_actors_name_outlives_their_account(make_user):
    actor = make_user("gone-soon")
    entry = audit_record(action="account.deleted", actor=actor, target_type="user", target_id=actor.pk)
    actor.delete()
    entry.refresh_from_db()
    assert (entry.actor_id, entry.actor_username, entry.target_id) == (None, "gone-soon", str(entry.target_id))
    assert "gone-soon: account.deleted" in str(entry)


def test_a_long_target_id_is_cut_to_the_column():
    assert len(audit_record(action="dead_letter.redriven", target_id="x" * 300).target_id) == 255


def test_values_of_a_row_leave_out_what_is_asked(make_user):
    user = make_user("valued")
    values = audit_values(user, exclude=("password",))
    assert values["username"] == "valued" and "password" not in values
    assert audit_values(user, fields=["username", "is_staff"]) == {"username": "valued", "is_staff": False}
