"""Presence while Redis does not answer (paused, or a partition): a socket's connect and close,
and a REST read, give up within their bounds instead of hanging (streams/realtime/presence.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from streams.realtime import hub, presence
from streams.realtime.presence import CALL_TIMEOUT_S, OFFLINE, Presence, presence_read

SLACK_S = 1.5


@pytest.fixture
def silent_redis(settings):
    """A Redis address that accepts connections and never answers, as a paused Redis does
    (the kernel still completes the handshake); the hub's clients are made anew for it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # held open, never read nor answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    saved = hub._redis, hub._async_redis
    hub._redis = hub._async_redis = None
    settings.REDIS_URL = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    yield
    hub._redis, hub._async_redis = saved
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


async def test_connect_and_close_of_a_socket_give_up_on_a_silent_redis(silent_redis):
    tracker = Presence()
    started = time.monotonic()
    await tracker.connected(user_id=987654321, username="nobody", socket_id="p-1", rooms={1})
    connected_in = time.monotonic() - started

    started = time.monotonic()
    await tracker.disconnected(user_id=987654321, socket_id="p-1")
    closed_in = time.monotonic() - started

    assert connected_in < CALL_TIMEOUT_S + SLACK_S
    assert closed_in < CALL_TIMEOUT_S + SLACK_S
    if tracker.ticker is not None:
        tracker.ticker.cancel()


def test_a_rest_read_answers_offline_on_a_silent_redis(silent_redis):
    started = time.monotonic()
    states = presence_read([987654321])
    assert states == {987654321: {"status": OFFLINE, "last_seen": None}}
    assert time.monotonic() - started < 5 + SLACK_S  # the sync client's read timeout
    presence._warned.clear()
