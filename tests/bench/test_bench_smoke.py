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
