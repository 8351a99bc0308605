"""Expiry: the beat task deletes exports' files after EXPORT_RETENTION_HOURS, and fails stuck ones."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from chatproject.celery import app
from exports import services, tasks
from exports.models import DataExport

pytestmark = pytest.mark.django_db


def done_export(user) -> DataExport:
    export, _ = services.export_request_user(user=user)
    return services.export_build(export_id=export.pk)


def test_beat_runs_the_expiry():
    from django.conf import settings

    assert "exports.expire" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "exports.expire" in app.tasks


def test_files_past_their_time_are_deleted_and_the_record_stays(
    api, make_user, celery_eager, django_capture_on_commit_callbacks
):
    alice, bob = make_user("alice"), make_user("bob")
    old, fresh = done_export(alice), done_export(bob)
    assert default_storage.exists(old.file) and default_storage.exists(fresh.file)
    DataExport.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.expire.delay().get() == 1

    old_file = old.file
    old.refresh_from_db()
    assert not default_storage.exists(old_file)
    assert old.status == DataExport.Status.EXPIRED and old.file == ""
    assert default_storage.exists(fresh.file)
    answer = api(alice).get(f"/api/v1/account/exports/{old.pk}/download/")
    assert answer.status_code == 409 and "expired" in answer.json()["error"]["detail"]


def test_a_deleted_accounts_export_goes_at_the_next_sweep(make_user, django_capture_on_commit_callbacks):
    alice = make_user("alice")
    export = done_export(alice)
    alice.delete()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.exports_expire() == (1, False)

    assert not default_storage.exists(export.file)


def test_an_export_stuck_unfinished_is_failed_so_the_user_can_start_again(settings, make_user):
    alice = make_user("alice")
    stuck, _ = services.export_request_user(user=alice)
    DataExport.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=7))

    services.exports_expire()

    stuck.refresh_from_db()
    assert stuck.status == DataExport.Status.FAILED and "did not finish within 6 hours" in stuck.error
    assert services.export_request_user(user=alice)[1] is True
