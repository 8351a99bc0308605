"""The benchmark's load generator, in quick mode, against a real server: nothing lost, nothing twice."""

from __future__ import annotations

import pytest

from bench.loadgen import PRODUCT, Client, FanoutSpec, fanout
from bench.population import stored_check
from bench.scenarios import Config
from tests.support import in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_quick_fanout_delivers_every_message_once_and_stores_each_once(server, make_user, make_room):
    def population():
        users = [make_user() for _ in range(6)]
        rooms = [make_room(owner=users[0], members=users[1:3]), make_room(owner=users[3], members=users[4:6])]
        return [Client(room=rooms[i // 3].pk, token=token_for(user)) for i, user in enumerate(users)]

    clients = await in_thread(population)
    quick = Config.quick_mode()
    # 30 deliveries/s in 3-member rooms: 10 messages/s over 6 senders, inside the default send limits.
    spec = FanoutSpec(
        protocol=PRODUCT, url=server.ws, clients=clients, rates=[30], duration=quick.duration, drain=quick.drain
    )

    result = await fanout(spec)

    (step,) = result.steps
    assert step.sent > 0
    assert step.accepted == step.sent
    assert (step.lost, step.duplicates, step.out_of_order, step.refused) == (0, 0, 0, {})
    assert step.delivered == step.sent * 3
    check = await in_thread(stored_check, accepted=result.accepted)
    assert check.exact
    assert check.stored == check.accepted == step.sent + 2  # the steps plus one warm-up message per room
    assert check.unacknowledged == 0


async def test_s6_uploads_photos_and_files_and_its_messages_carry_them(server, make_user, make_room):
    """S6's uploader gets every file stored, and every Nth message of the fan-out carries a photo."""
    from bench.uploads import run as uploads_run
    from chat_messages.models import Message

    def population():
        users = [make_user() for _ in range(4)]
        rooms = [make_room(owner=users[0], members=users[1:2]), make_room(owner=users[2], members=users[3:4])]
        return [{"room": rooms[i // 2].pk, "token": token_for(user)} for i, user in enumerate(users)]

    clients = await in_thread(population)
    files = await in_thread(uploads_run, {"url": server.http, "clients": clients[:2], "per_client": 1, "kind": "file"})
    assert (files["uploads"], files["failures"], files["file_bytes"]) == (2, {}, 1 << 20)
    photos = await in_thread(
        uploads_run, {"url": server.http, "clients": clients, "per_client": 2, "kind": "image", "concurrency": 4}
    )
    assert (photos["uploads"], photos["failures"]) == (8, {})
    assert [len(ids) for ids in photos["ids"]] == [2, 2, 2, 2]

    spec = FanoutSpec(
        protocol=PRODUCT, url=server.ws, clients=[Client(**c) for c in clients], rates=[20], duration=2.0,
        drain=5.0, attachments=photos["ids"], attachment_every=2,
    )  # fmt: skip
    result = await fanout(spec)

    (step,) = result.steps
    assert (step.lost, step.duplicates, step.refused) == (0, 0, {})
    assert step.attachment_sent > 0 and step.attachment_p99_ms is not None and step.text_p99_ms is not None

    def stored_with_photos() -> int:
        cmids = [cmid for ids in result.accepted.values() for cmid in ids]
        return sum(1 for m in Message.objects.filter(client_msg_id__in=cmids) if m.attachments)

    assert await in_thread(stored_with_photos) == step.attachment_sent
