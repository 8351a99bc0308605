"""Stopping `make run` loses nothing that was accepted (issue 15).

The supervisor stops the web first, waits until the consumers stored what the broker holds
(`manage.py drain`), and when that wait runs out spills the broker's unstored records to disk and
re-produces them at the next start.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import psutil

from .support import Run, Sender, assert_stored_once_gapless, make_chat, postgres_family, stored_messages

ROOMS = 3
MESSAGES = 1000


async def _send_all(port: int, tokens: list[str], rooms: list[int], count: int, *, before=None) -> list[Sender]:
    """Send ``count`` messages from every token's sockets in turn; ``before`` runs once they are connected.

    A socket handles its frames one after the other (a send waits for the broker's acknowledgement),
    so the messages go out over eight sockets per user, as eight open tabs would.
    """
    senders = [Sender(port, token) for token in tokens for _ in range(8)]
    for sender in senders:
        await sender.connect()
    if before is not None:
        before()
    for i in range(count):
        await senders[i % len(senders)].send(rooms[i % len(rooms)], f"message {i}")
        if i % 50 == 49:
            await asyncio.sleep(0.01)
    deadline = time.monotonic() + 30
    while sum(len(s.accepted) for s in senders) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return senders


def test_a_stop_while_postgres_is_paused_stores_every_accepted_message_once(tmp_path):
    data = tmp_path / "stack"
    first = Run(data).start()
    paused: list[psutil.Process] = []
    timer = None
    try:
        first.wait_ready()
        tokens, rooms = make_chat(first.port, users=2, rooms=ROOMS)

        def pause_postgres():
            # The postmaster and every backend: the persist consumer's transaction hangs mid-batch.
            paused.extend(postgres_family(first))
            for process in paused:
                process.send_signal(signal.SIGSTOP)

        # PostgreSQL is paused before the sends: the broker accepts them, nothing can store them.
        senders = asyncio.run(_send_all(first.port, tokens, rooms, MESSAGES, before=pause_postgres))
        accepted = set().union(*(s.accepted for s in senders))
        assert len(accepted) == MESSAGES
        # PostgreSQL comes back 5 s after the stop began, however long the sends took on a busy
        # machine: the stop meets a persist consumer that cannot store anything yet.
        stop_sent = time.monotonic()
        timer = threading.Timer(5.0, lambda: [p.send_signal(signal.SIGCONT) for p in paused])
        timer.start()
        assert first.stop() == 0
        stop_took = time.monotonic() - stop_sent
    finally:
        if timer is not None:
            timer.join()
        first.kill()
    output = first.output()
    # The order of the stop, as printed.
    assert output.index("stopping web first") < output.index("drain: waiting up to")
    assert output.index("drain: everything the broker holds is stored") < output.index("persist  | stopping")
    assert "spill" not in output.split("stopping web first")[1]
    # How long the drain waited depends on when its process is up (seconds on a busy machine); when
    # PostgreSQL was still paused then, it said for what, e.g. "waiting for chat-persist: 1000
    # messages left on chat.messages".
    waits = [line for line in output.splitlines() if line.startswith("drain    | drain: waiting for")]
    print(f"stop took {stop_took:.1f} s; {waits[:1]}")

    second = Run(data).start()
    try:
        second.wait_ready()
        stored = stored_messages(second.database_url(), rooms)
    finally:
        second.stop()
        second.kill()
    assert_stored_once_gapless(stored, accepted)
    assert sum(len(rows) for rows in stored.values()) == MESSAGES


def test_a_stop_that_runs_out_of_time_spills_and_the_next_start_stores_the_rest(tmp_path):
    data = tmp_path / "stack"
    # No consumer at all: whatever is accepted stays on the broker until the next start.
    first = Run(data, only="web", DRAIN_TIMEOUT_S="2").start()
    try:
        first.wait_ready()
        tokens, rooms = make_chat(first.port, users=2, rooms=2)
        senders = asyncio.run(_send_all(first.port, tokens, rooms, 200))
        accepted = set().union(*(s.accepted for s in senders))
        assert len(accepted) == 200
        assert first.stop() == 0, first.output()[-3000:]
    finally:
        first.kill()
    output = first.output()
    assert "drain: timed out after 2 s: 200 messages left unstored on chat.messages (chat-persist)" in output
    assert "spilled 200 of 200 unstored records of chat.messages" in output
    spilled = data / "spill" / "chat.messages.jsonl"
    assert len(spilled.read_text().splitlines()) == 200

    second = Run(data).start()
    try:
        second.wait_ready()
        second.wait_output("restored 200 spilled records to chat.messages")
        deadline = time.monotonic() + 30
        while True:
            stored = stored_messages(second.database_url(), rooms)
            if sum(len(rows) for rows in stored.values()) >= 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    finally:
        second.stop()
        second.kill()
    assert_stored_once_gapless(stored, accepted)
    assert not spilled.exists()  # filed away as restored
    assert list((data / "spill").glob("chat.messages.jsonl.restored-*"))
