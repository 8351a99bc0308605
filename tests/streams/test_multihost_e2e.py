"""Three hosts on one machine: a host loses its server and its consumer at once, nothing is lost.

Linux network namespaces on a bridge (tests/multihost.py) make a services host (embedded
PostgreSQL, Valkey and Tansu listening on its own address) and two app hosts, A and B, each
running daphne (`chatproject.serve`) and a `consume persist` against the shared services. The
test process reaches the hosts over the bridge, as clients on other machines would.

The takeover time printed (and recorded as the test's properties) is measured from the SIGKILL of
every process of host A:

- ``store``: until the first message is stored in a room whose Kafka partition A's persist
  consumer held at the kill, i.e. until B's consumer has taken A's partitions over and stored from
  them (the group waits out A's session timeout, KAFKA_SESSION_TIMEOUT_MS, before it rebalances);
- ``assign``: until B's consumer logs that it was assigned A's partitions;
- ``send``: until the first ``message.accepted`` a client of A gets after reconnecting to B.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import websockets

from devstack.stack import OTHER_STACK_VARIABLES
from tests.multihost import Host, Network, kafka_partition, netns_unavailable

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6
WEB_PORT = 8000
SENDERS_PER_HOST = 2
LOAD_ROOMS = 4

# Run once against the new database (from the test's own namespace, like a deploy step):
# migrate, create the topics, then the users, their tokens and the rooms, printed as JSON.
SETUP = r"""
import json
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rooms.services import room_create_group

call_command("migrate", interactive=False, verbosity=0)
call_command("kafka_topics", partitions=%(partitions)d)
users = [get_user_model().objects.create_user(username=f"mh{i}", password="unused-here") for i in range(%(users)d)]
ids = [u.pk for u in users]
lobby = room_create_group(owner=users[0], name="lobby", member_ids=ids).pk
rooms = [room_create_group(owner=users[0], name=f"load{i}", member_ids=ids).pk for i in range(12)]
tokens = {u.username: Token.objects.create(user=u).key for u in users}
print("SETUP " + json.dumps({"tokens": tokens, "lobby": lobby, "rooms": rooms}))
"""


@dataclass
class Cluster:
    network: Network
    services: Host
    a: Host
    b: Host
    env: dict[str, str]
    database_url: str
    tokens: dict[str, str]
    lobby: int
    rooms: list[int]
    logs: Path

    def ws(self, host: Host) -> str:
        return f"ws://{host.ip}:{WEB_PORT}/ws/chat/"


def _wait(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} after {timeout:.0f} s")


def _port_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def _assigned(log: Path) -> set[int] | None:
    """The chat.messages partitions of a persist consumer's latest assignment (None before any)."""
    lines = [
        line for line in log.read_text(errors="replace").splitlines() if "chat-persist: partitions assigned" in line
    ]
    if not lines:
        return None
    return {int(p) for p in re.findall(r"chat\.messages\[(\d+)\]", lines[-1])}


@pytest.fixture
def cluster(tmp_path):
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    network = Network()
    try:
        network.up()
        services, a, b = network.add_host("svc"), network.add_host("a"), network.add_host("b")
        log = tmp_path / "services.log"
        started = services.popen(
            [sys.executable, "-m", "tests.multihost", "services", "--host", services.ip,
             "--subnet", str(network.subnet), "--data", str(tmp_path / "services")],
            log=log, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        _wait(lambda: started.poll() is not None or "\nready" in log.read_text(), 60, "services not ready")
        if started.poll() is not None:
            raise RuntimeError(f"the services exited: {log.read_text()[-2000:]}")
        urls = dict(
            line.split("=", 1) for line in log.read_text().splitlines() if "_URL=" in line or "_SERVERS=" in line
        )
        env = {k: v for k, v in os.environ.items() if k not in OTHER_STACK_VARIABLES}
        env.update(
            urls,
            BACKUP_DATABASE_URL="",
            ALLOWED_HOSTS=f"{a.ip},{b.ip},127.0.0.1,localhost",
            SECRET_KEY=f"multihost-{network.id}-" + uuid.uuid4().hex,
            RATE_LIMITS="off",
            PYTHONUNBUFFERED="1",
            KAFKA_PARTITIONS=str(PARTITIONS),
            KAFKA_TOPIC_PREFIX="",
            # A client's `sync` after the takeover replays everything it missed in one answer.
            CHAT_SYNC_MAX="100000",
        )
        setup = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", SETUP % {"partitions": PARTITIONS, "users": 8}],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        lines = [line for line in setup.stdout.splitlines() if line.startswith("SETUP ")]
        if setup.returncode or not lines:
            raise RuntimeError(f"setup failed ({setup.returncode}): {setup.stdout[-2000:]} {setup.stderr[-3000:]}")
        made = json.loads(lines[0][len("SETUP ") :])
        for host in (a, b):
            serve = ["-m", "chatproject.serve", "-b", host.ip, "-p", str(WEB_PORT), "chatproject.asgi:application"]
            host.popen([sys.executable, *serve], log=tmp_path / f"web-{host.name}.log", env=env)
            host.popen(
                [sys.executable, "manage.py", "consume", "persist"], log=tmp_path / f"persist-{host.name}.log", env=env
            )
        for host in (a, b):
            _wait(lambda h=host: _port_open(h.ip, WEB_PORT), 60, f"daphne of host {host.name} not listening")
        yield Cluster(
            network=network, services=services, a=a, b=b, env=env, database_url=urls["DATABASE_URL"],
            tokens=made["tokens"], lobby=made["lobby"], rooms=made["rooms"], logs=tmp_path,
        )  # fmt: skip
    finally:
        network.teardown()


class Client:
    """A chat client following docs/protocol.md: pending messages kept until stored, re-sent after
    a reconnect (to the next host in its list) and a `sync`."""

    def __init__(self, name: str, token: str, urls: list[str], rooms: list[int]) -> None:
        self.name, self.token, self.urls, self.rooms = name, token, urls, rooms
        self.at = 0  # index of the URL connected to
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.heard: dict[int, dict[int, str]] = {room: {} for room in rooms}  # room -> seq -> client_msg_id
        self.order: dict[int, list[int]] = {room: [] for room in rooms}  # seqs in arrival order
        self.pending: dict[str, tuple[int, str]] = {}  # client_msg_id -> (room, body), in send order
        self.accepted: set[str] = set()
        self.errors: dict[str, str] = {}
        self.syncs_done = 0
        self.gaps: list[dict] = []
        self.reconnected_at: float | None = None
        self.first_accept_after_reconnect: float | None = None

    async def connect(self, at: int = 0) -> None:
        self.at = at
        self.ws = await websockets.connect(
            self.urls[at], additional_headers={"Authorization": f"Token {self.token}"}, open_timeout=3
        )
        self.reader = asyncio.get_running_loop().create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                kind = frame["type"]
                if kind == "message.new":
                    message = frame["message"]
                    room, seq = message["room"], message["seq"]
                    if room in self.heard and seq not in self.heard[room]:
                        self.heard[room][seq] = message["client_msg_id"]
                        self.order[room].append(seq)
                    self.pending.pop(message["client_msg_id"], None)
                elif kind == "message.accepted":
                    self.accepted.add(frame["client_msg_id"])
                    if self.reconnected_at is not None and self.first_accept_after_reconnect is None:
                        self.first_accept_after_reconnect = time.monotonic()
                elif kind == "error" and frame.get("client_msg_id"):
                    self.errors[frame["client_msg_id"]] = frame["code"]
                elif kind == "sync.done":
                    self.syncs_done += 1
                elif kind == "sync.gap":
                    self.gaps.append(frame)
        except websockets.ConnectionClosed:
            pass

    @property
    def closed(self) -> bool:
        return self.ws is None or self.reader is None or self.reader.done()

    async def _until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.closed or time.monotonic() > deadline:
                return predicate()
            await asyncio.sleep(0.005)
        return True

    def contiguous(self, room: int) -> int:
        seq = 0
        while seq + 1 in self.heard[room]:
            seq += 1
        return seq

    async def _send(self, client_msg_id: str) -> bool:
        """Send a pending message once; True when the broker acknowledged it (or it is stored)."""
        if client_msg_id not in self.pending:
            return True  # its message.new came meanwhile (say, while an `unavailable` was answered)
        room, body = self.pending[client_msg_id]
        self.errors.pop(client_msg_id, None)
        frame = {"type": "message.send", "room": room, "client_msg_id": client_msg_id, "body": body}
        try:
            await self.ws.send(json.dumps(frame))
        except websockets.ConnectionClosed:
            return False
        await self._until(lambda: client_msg_id in self.accepted or client_msg_id in self.errors, 30)
        if self.errors.get(client_msg_id) not in (None, "unavailable"):
            raise AssertionError(f"{self.name}: {client_msg_id} refused for good: {self.errors[client_msg_id]}")
        return client_msg_id in self.accepted

    async def send(self, room: int, body: str) -> str:
        """Send a new message, one at a time (rule 6), recovering the connection until it is accepted."""
        client_msg_id = str(uuid.uuid4())
        self.pending[client_msg_id] = (room, body)
        while not await self._send(client_msg_id):
            if self.closed:
                await self.recover()
            else:
                await asyncio.sleep(0.2)  # `unavailable`: retry the same id
        return client_msg_id

    async def recover(self) -> None:
        """Reconnect (the next host first), `sync` every room, re-send what is pending, in order."""
        while True:
            if self.ws is not None:
                await self.ws.close()
            for step in range(1, len(self.urls) + 1):
                try:
                    await self.connect((self.at + step) % len(self.urls))
                    break
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    await asyncio.sleep(0.2)
            else:
                continue
            self.reconnected_at = self.reconnected_at or time.monotonic()
            if not await self.sync():
                continue
            for client_msg_id in list(self.pending):
                if client_msg_id in self.pending and not await self._send(client_msg_id):
                    break
            else:
                return

    async def sync(self) -> bool:
        before = self.syncs_done
        try:
            await self.ws.send(json.dumps({"type": "sync", "rooms": {str(r): self.contiguous(r) for r in self.rooms}}))
        except websockets.ConnectionClosed:
            return False
        return await self._until(lambda: self.syncs_done > before, 20)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            await self.reader


def _stored(database_url: str, rooms: list[int]) -> dict[int, list[tuple[int, str, str, str]]]:
    """Each room's messages as stored: (seq, client_msg_id, body, kind) by seq."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT room_id, seq, client_msg_id::text, body, kind FROM chat_messages_message"
            " WHERE room_id = ANY(%s) ORDER BY room_id, seq",
            (rooms,),
        )
        rows = cursor.fetchall()
    conn.close()
    out: dict[int, list] = {room: [] for room in rooms}
    for room, *rest in rows:
        out[room].append(tuple(rest))
    return out


def _text_count(database_url: str, rooms: list[int]) -> int:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chat_messages_message WHERE room_id = ANY(%s) AND kind = 'text'", (rooms,))
        count = cursor.fetchone()[0]
    conn.close()
    return count


def _report(request, capsys, figures: dict[str, float | None], stored: int) -> None:
    for key, value in figures.items():
        request.node.user_properties.append((f"takeover_{key}_s", value))
    line = "multihost takeover after kill -9 of host A: " + ", ".join(
        f"{k} {v:.2f} s" if v is not None else f"{k} n/a" for k, v in figures.items()
    )
    line += f" ({stored} messages of the load stored)"
    with capsys.disabled():  # shown with or without -s
        print(f"\n{line}", flush=True)


async def _poll(fn, *args):
    return await asyncio.to_thread(fn, *args)


async def test_a_host_killed_under_load_is_taken_over_and_nothing_is_lost_or_doubled(cluster, request, capsys):
    c = cluster
    names = sorted(c.tokens)
    urls_a_first, urls_b_first = [c.ws(c.a), c.ws(c.b)], [c.ws(c.b), c.ws(c.a)]

    # Both consumers in the group, each with its share of the partitions.
    def shares():
        a, b = _assigned(c.logs / "persist-a.log"), _assigned(c.logs / "persist-b.log")
        return (a, b) if a and b and not a & b and a | b == set(range(PARTITIONS)) else None

    a_partitions, _ = await asyncio.to_thread(_wait, shares, 60, "the persist consumers never shared the partitions")

    # One room, a user on each host: both see every message, in the order sent.
    alice = Client(names[0], c.tokens[names[0]], urls_a_first, [c.lobby])
    bob = Client(names[1], c.tokens[names[1]], urls_b_first, [c.lobby])
    await alice.connect()
    await bob.connect()
    sent = []
    for i in range(4):
        for client in (alice, bob):
            sent.append(await client.send(c.lobby, f"{client.name} says {i}"))
    for client in (alice, bob):
        assert await client._until(lambda cl=client: set(sent) <= set(cl.heard[c.lobby].values()), 30), client.name
        texts = [cid for seq in client.order[c.lobby] if (cid := client.heard[c.lobby][seq]) in sent]
        assert texts == sent
        assert client.order[c.lobby] == sorted(client.order[c.lobby])
    await alice.close()
    await bob.close()

    # Load rooms on both hosts' partitions, so that A's share carries traffic when it dies.
    on_a = [r for r in c.rooms if kafka_partition(str(r).encode(), PARTITIONS) in a_partitions]
    on_b = [r for r in c.rooms if r not in on_a]
    assert on_a and on_b, f"rooms {c.rooms} all map to one consumer's partitions"
    rooms = on_a[: LOAD_ROOMS // 2] + on_b[: LOAD_ROOMS - min(len(on_a), LOAD_ROOMS // 2)]
    a_rooms = [r for r in rooms if r in on_a]

    clients = []
    for i in range(2 * SENDERS_PER_HOST + 2):  # senders, then one watcher per host
        name = names[2 + i]
        clients.append(Client(name, c.tokens[name], urls_a_first if i % 2 == 0 else urls_b_first, rooms))
    for client in clients:
        await client.connect()
    senders, watchers = clients[: 2 * SENDERS_PER_HOST], clients[2 * SENDERS_PER_HOST :]
    stop = asyncio.Event()

    async def blast(client: Client) -> None:
        i = 0
        while not stop.is_set():
            await client.send(rooms[i % len(rooms)], f"{client.name} {i}")
            i += 1
            await asyncio.sleep(0.01)

    async def watch(client: Client) -> None:
        while not stop.is_set():
            if client.closed:
                await client.recover()
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(blast(s)) for s in senders] + [asyncio.create_task(watch(w)) for w in watchers]
    try:
        deadline = time.monotonic() + 30
        while await _poll(_text_count, c.database_url, rooms) < 150:
            assert time.monotonic() < deadline, "the load was not being stored"
            await asyncio.sleep(0.1)

        # Host A is lost at once: its daphne and its persist consumer.
        killed_at = time.monotonic()
        c.a.kill_all(signal.SIGKILL)
        before = {room: len(rows) for room, rows in (await _poll(_stored, c.database_url, a_rooms)).items()}
        stored_at = assigned_at = None
        deadline = killed_at + 45
        while stored_at is None or assigned_at is None:
            assert time.monotonic() < deadline, "B's consumer never took over A's partitions"
            now = time.monotonic()
            if stored_at is None:
                rows = await _poll(_stored, c.database_url, a_rooms)
                if any(len(rows[room]) > before[room] for room in a_rooms):
                    stored_at = now
            if assigned_at is None and a_partitions <= (_assigned(c.logs / "persist-b.log") or set()):
                assigned_at = now
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)  # load on B alone, A's clients included
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result

    # Everything settles: each sender's pending messages are stored, every client syncs.
    a_clients = clients[0::2]
    for client in clients:
        assert client not in a_clients or client.at == 1, f"{client.name} is still on host A"
        assert await client._until(lambda cl=client: not cl.pending, 60), f"{client.name} pending {client.pending}"
        assert await client.sync(), f"{client.name}: no sync.done"
        assert not client.gaps, f"{client.name}: sync.gap {client.gaps}"

    stored = await _poll(_stored, c.database_url, rooms)
    sends = [cl.first_accept_after_reconnect for cl in a_clients if cl.first_accept_after_reconnect]
    figures = {
        "store": stored_at - killed_at,
        "assign": assigned_at - killed_at,
        "send": (min(sends) - killed_at) if sends else None,
    }
    _report(request, capsys, figures, sum(row[3] == "text" for room in rooms for row in stored[room]))
    accepted = set().union(*(s.accepted for s in senders))
    ids = [row[1] for room in rooms for row in stored[room]]
    assert len(ids) == len(set(ids)), "a message was stored twice"
    assert accepted <= set(ids), f"{len(accepted - set(ids))} acknowledged messages were never stored"
    for room in rooms:
        seqs = [row[0] for row in stored[room]]
        assert seqs == list(range(1, len(seqs) + 1)), f"room {room}: seqs not gapless"
        as_stored = {seq: cid for seq, cid, _body, _kind in stored[room]}
        for client in clients:
            assert client.heard[room] == as_stored, f"{client.name} does not have room {room} as stored"
        for sender in senders:
            # Each sender's messages are stored in the order it sent them.
            mine = [
                int(body.rsplit(" ", 1)[1])
                for _seq, _cid, body, kind in stored[room]
                if kind == "text" and body.startswith(f"{sender.name} ")
            ]
            assert mine == sorted(mine), f"{sender.name}'s messages out of order in room {room}"
    for client in clients:
        await client.close()


def test_the_partition_of_a_room_is_the_one_librdkafka_gives_its_key():
    # Checked against librdkafka's delivery reports (murmur2_random, 6 partitions): the test picks
    # the rooms of host A's partitions with it.
    assert {k: kafka_partition(str(k).encode(), 6) for k in (1, 2, 3, 7, 42)} == {1: 3, 2: 2, 3: 5, 7: 3, 42: 4}
