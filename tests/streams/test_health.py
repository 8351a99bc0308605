"""/healthz and /readyz against the real services, and with each one pointed at a dead port."""

from __future__ import annotations

import pytest
from django.db import connections

from tests.conftest import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]


def test_healthz_says_the_process_is_up(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_200_when_every_service_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert {name: s["state"] for name, s in body["services"].items()} == {
        "postgres": "ready",
        "redis": "ready",
        "kafka": "ready",
    }


def test_readyz_names_a_dead_redis_and_logs_its_address_without_showing_it(client, settings, caplog):
    dead = free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{dead}/0"
    body = _unready(client, "redis")
    assert body["services"]["redis"] == {"state": "down"}  # no internal address for anyone to read
    assert f"redis at 127.0.0.1:{dead} is down" in caplog.text


def test_readyz_names_a_dead_kafka(client, settings, caplog):
    dead = free_port()
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{dead}"
    body = _unready(client, "kafka")
    assert body["services"]["kafka"] == {"state": "down"}
    assert f"kafka at 127.0.0.1:{dead} is down" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_readyz_names_a_dead_postgres(client, settings, caplog):
    dead = free_port()
    db = connections["default"]
    original = db.settings_dict["PORT"]
    db.close()
    db.settings_dict["PORT"] = dead
    try:
        body = _unready(client, "postgres")
    finally:
        db.close()
        db.settings_dict["PORT"] = original
    assert body["services"]["postgres"] == {"state": "down"}
    assert f":{dead} is down" in caplog.text


def _unready(client, down: str) -> dict:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    states = {name: s["state"] for name, s in body["services"].items()}
    assert states[down] == "down"
    assert [name for name, state in states.items() if state == "down"] == [down]
    return body
