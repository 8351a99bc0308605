"""The REST API of data exports: start, follow, download; only the requester sees an export."""

from __future__ import annotations

import pytest

from exports.models import DataExport
from tests.exports.conftest import unzip

pytestmark = pytest.mark.django_db

URL = "/api/v1/account/exports/"


def test_start_follow_and_download_my_export(api, make_user, make_room, add_messages, celery_eager,
                                             django_capture_on_commit_callbacks):  # fmt: skip
    alice = make_user("alice")
    add_messages(make_room(owner=alice, name="mine"), alice, 3, body="note")
    client = api(alice)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(URL, {}, format="json")

    assert started.status_code == 202
    export_id = started.json()["id"]
    shown = client.get(f"{URL}{export_id}/").json()
    assert shown["status"] == "done" and shown["progress"]["percent"] == 100
    assert shown["progress"]["done"] == shown["progress"]["total"] == 4
    assert shown["urls"]["download"] == f"{URL}{export_id}/download/"
    assert [e["id"] for e in client.get(URL).json()] == [export_id]

    download = client.get(shown["urls"]["download"])
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"].startswith("attachment;")
    files = unzip(b"".join(download.streaming_content))
    assert [m["body"] for m in files["messages.json"]] == ["note 1", "note 2", "note 3"]


def test_someone_elses_export_is_not_found(api, make_user, celery_eager, django_capture_on_commit_callbacks):
    alice, mallory = make_user("alice"), make_user("mallory")
    with django_capture_on_commit_callbacks(execute=True):
        export_id = api(alice).post(URL, {}, format="json").json()["id"]

    for path in (f"{URL}{export_id}/", f"{URL}{export_id}/download/"):
        answer = api(mallory).get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert api(mallory).get(URL).json() == []
    assert api(None).get(f"{URL}{export_id}/").status_code == 401


def test_one_at_a_time_and_no_download_before_it_is_done(api, make_user):
    alice = make_user("alice")
    client = api(alice)
    first = client.post(URL, {"include_files": False}, format="json")  # queued: no worker ran it
    second = client.post(URL, {}, format="json")

    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["status"] == "queued"
    assert second.json()["include_files"] is False and second.json()["urls"]["download"] is None
    refused = client.get(f"{URL}{first.json()['id']}/download/")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    assert "not ready" in refused.json()["error"]["detail"]


def test_a_failed_export_says_why(api, make_user):
    alice = make_user("alice")
    export = DataExport.objects.create(
        kind="user", requester_id=alice.pk, requester_name="alice", status="failed", error="The export failed: disk"
    )
    shown = api(alice).get(f"{URL}{export.pk}/").json()
    assert shown["status"] == "failed" and shown["error"] == "The export failed: disk"
    assert "failed" in api(alice).get(f"{URL}{export.pk}/download/").json()["error"]["detail"]


def test_starting_exports_is_rate_limited(api, settings, make_user):
    settings.RATE_LIMITS_ENABLED = True
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "export": "2/hour"},
    }
    from django.core.cache import cache

    cache.clear()
    client = api(make_user())
    codes = [client.post(URL, {}, format="json").status_code for _ in range(3)]
    assert codes == [202, 200, 429]
    assert client.get(URL).status_code == 200  # reading is another class


def test_a_body_of_the_wrong_type_is_refused(api, make_user):
    answer = api(make_user()).post(URL, {"include_files": "yes"}, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid"
