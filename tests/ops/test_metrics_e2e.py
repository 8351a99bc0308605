"""/metrics scraped over HTTP from a running server: chat-persist's lag rises while it is stopped
and falls once it is back (issue 21's "done when"), and its batch figures reach the scrape."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import token_for

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

TOKEN = f"metrics-{uuid.uuid4().hex}"


def scrape(server, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    response = requests.get(f"{server.http}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def persist_lag(server) -> float:
    prefix = server.env["KAFKA_TOPIC_PREFIX"]
    got = scrape(server)
    assert got[("chat_metric_up", (("source", "kafka"),))] == 1.0
    return got[("chat_consumer_lag_records", (("group", f"{prefix}chat-persist"), ("topic", f"{prefix}chat.messages")))]


def until(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_persist_lag_rises_while_it_is_stopped_and_falls_once_it_is_back(own_server, make_user, make_room):
    # The test's own server reads the token from its environment.
    own_server.stop("web")
    own_server.start("web", METRICS_TOKEN=TOKEN)
    prefix = own_server.env["KAFKA_TOPIC_PREFIX"]
    alice = make_user()
    room = make_room(owner=alice)
    http = requests.Session()
    http.headers["Authorization"] = f"Token {token_for(alice)}"

    def send(body: str) -> None:
        answer = http.post(
            f"{own_server.http}/api/v1/rooms/{room.pk}/messages/",
            json={"client_msg_id": str(uuid.uuid4()), "body": body},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text

    assert requests.get(f"{own_server.http}/metrics", timeout=30).status_code == 401
    assert (
        requests.get(f"{own_server.http}/metrics", headers={"Authorization": "Bearer nope"}, timeout=30).status_code
        == 401
    )

    send("warm up")
    assert until(lambda: persist_lag(own_server) == 0)

    own_server.stop("persist")
    rising = [persist_lag(own_server)]
    for round_ in range(3):
        for i in range(2):
            send(f"while persist is away {round_}.{i}")
        rising.append(persist_lag(own_server))
    assert rising == [0, 2, 4, 6]

    own_server.start("persist")
    falling = []
    until(lambda: falling.append(persist_lag(own_server)) or falling[-1] == 0)
    assert falling[-1] == 0 and max(falling) <= 6

    # The restarted consumer's batch figures, from Redis: the six sends it caught up on.
    got = until(
        lambda: (
            (g := scrape(own_server))
            and sum(v for (name, labels), v in g.items()
                    if name == "chat_consumer_records_total" and ("group", f"{prefix}chat-persist") in labels) >= 6
            and g
        )
    )  # fmt: skip
    assert got, "no batch figures of chat-persist reached /metrics"
    assert got[("chat_consumer_processes", (("group", f"{prefix}chat-persist"),))] == 1.0
    process = next(
        dict(labels)["process"] for name, labels in got if name == "chat_consumer_records_total"
        and dict(labels)["group"] == f"{prefix}chat-persist"
    )  # fmt: skip
    assert got[("chat_consumer_last_batch_records", (("group", f"{prefix}chat-persist"), ("process", process)))] >= 1
