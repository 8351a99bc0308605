"""End to end: one message followed through the JSON logs (LOG_FORMAT=json) of the web and
persist processes by its client_msg_id: accepted and produced by web, stored and published by
persist, in that order, with the same event_id throughout."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
from django.test import override_settings

from streams.pipeline import kafka
from tests.conftest import ServerProcesses
from tests.support import ChatClient, in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TRACE_LEVELS = "chat_messages=DEBUG,streams.realtime.hub=DEBUG"


@pytest.fixture
def json_server(server, tmp_path):
    """A web and persist of the test's own (topics and groups too), logging JSON at DEBUG for
    the loggers that follow a message."""
    prefix = f"own-{uuid.uuid4().hex[:8]}-"
    with override_settings(KAFKA_TOPIC_PREFIX=prefix):
        kafka.ensure_topics()
    env = {**server.env, "KAFKA_TOPIC_PREFIX": prefix, "LOG_FORMAT": "json", "LOG_LEVELS": TRACE_LEVELS}
    own = ServerProcesses(env, tmp_path)
    own.start("web")
    own.start("persist")
    yield own
    own.stop_all()


def _lines(path, needle: str) -> list[dict]:
    """The JSON log lines of a process's log that mention ``needle`` (other output is skipped)."""
    found = []
    for text in path.read_text(errors="replace").splitlines():
        if needle not in text or not text.startswith("{"):
            continue
        found.append(json.loads(text))
    return found


async def test_a_message_is_followed_by_its_client_msg_id_from_the_socket_to_the_database_and_back(
    json_server, make_user, make_room
):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    watcher = await ChatClient.connect(json_server.ws, bob)
    sender = await ChatClient.connect(json_server.ws, alice)
    cmid = await sender.send_message(room.pk, "follow me")
    await watcher.wait_for(lambda c: any(m["client_msg_id"] == cmid for m in c.new_messages(room.pk)))
    await sender.wait_for(lambda c: any(f["client_msg_id"] == cmid for f in c.of_type("message.accepted")))
    seq = next(m["seq"] for m in watcher.new_messages(room.pk) if m["client_msg_id"] == cmid)
    await sender.close()
    await watcher.close()

    web = _lines(json_server.log_dir / "web.log", cmid)
    persist = _lines(json_server.log_dir / "persist.log", cmid)
    for line in web + persist:
        assert {"ts", "level", "logger", "msg", "process"} <= line.keys()
        assert line["client_msg_id"] == cmid
    accepted = [x for x in web if x["msg"].startswith("message.send accepted")]
    produced = [x for x in web if x["msg"].startswith("message.send produced")]
    stored = [x for x in persist if x["msg"].startswith("stored message")]
    published = [x for x in persist if x["msg"].startswith("published message")]
    assert len(accepted) == len(produced) == len(stored) == len(published) == 1, (web, persist)
    # The socket's lines name its connection; the event_id is the envelope's, end to end.
    assert accepted[0]["conn_id"] == produced[0]["conn_id"]
    event_id = accepted[0]["event_id"]
    assert str(uuid.UUID(event_id)) == event_id
    assert produced[0]["event_id"] == stored[0]["event_id"] == published[0]["event_id"] == event_id
    assert stored[0]["seq"] == published[0]["seq"] == seq
    assert stored[0]["room"] == published[0]["room"] == room.pk
    # In order: accepted -> produced (web), stored -> published (persist), and persist's after web's accept.
    times = [datetime.fromisoformat(x["ts"]) for x in (accepted[0], produced[0], stored[0], published[0])]
    assert times[0] <= times[1] and times[2] <= times[3] and times[0] <= times[2]
    assert persist.index(stored[0]) < persist.index(published[0])
    assert web.index(accepted[0]) < web.index(produced[0])
