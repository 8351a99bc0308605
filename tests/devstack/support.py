"""Helpers for tests of `python -m devstack run`: start and stop it, chat over it, read what it stored.

Everything is real: the supervisor and its services run as processes, clients speak HTTP and
WebSocket to daphne, and what was stored is read from the embedded PostgreSQL directly.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
import psycopg2
import websockets

from devstack.stack import readyz, run_argv, run_env
from tests.conftest import ROOT, free_port

PASSWORD = "tulip-orbit-73-lantern"


class Run:
    """One `python -m devstack run` on a data folder, its output in ``log_path``."""

    def __init__(self, data: Path, *, port: int | None = None, only: str | None = None, **env: str) -> None:
        self.data = data
        self.port = port or free_port()
        self.only = only
        self.env = run_env(self.port, **env)
        self.log_path = data.parent / f"{data.name}-run-{int(time.time() * 1000)}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Run:
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            run_argv(self.data, self.only), cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return self.output()[-chars:]

    def readyz(self) -> dict | None:
        return readyz(self.port)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.tail()
            body = self.readyz()
            if body and body["status"] == "ready":
                return
            time.sleep(0.3)
        raise AssertionError(f"not ready after {timeout} s:\n{self.tail()}")

    def wait_output(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert time.monotonic() < deadline, f"{text!r} not in the output:\n{self.tail()}"
            time.sleep(0.2)

    def state(self) -> dict:
        return json.loads((self.data / "services.json").read_text())

    def database_url(self) -> str:
        return self.state()["urls"]["DATABASE_URL"]

    def stop(self, timeout: float = 120) -> int:
        """SIGTERM the supervisor (what Ctrl-C or a service manager does) and wait until it exited."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        """For clean-up after a failure: end the run and everything it started."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            family = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        self.process.kill()
        for child in family:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(10)
        self.log.close()


def api(port: int, method: str, path: str, *, token: str | None = None, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def make_chat(port: int, *, users: int, rooms: int) -> tuple[list[str], list[int]]:
    """Sign up ``users`` people (tokens returned) and make ``rooms`` group rooms holding all of them."""
    tag = uuid.uuid4().hex[:6]
    tokens, ids = [], []
    for i in range(users):
        name = f"u{tag}{i}"
        ids.append(api(port, "POST", "/accounts/", body={"username": name, "password": PASSWORD})["id"])
        tokens.append(api(port, "POST", "/auth/token/", body={"username": name, "password": PASSWORD})["token"])
    room_ids = []
    for r in range(rooms):
        room = api(
            port, "POST", "/rooms/", token=tokens[0], body={"kind": "group", "name": f"r{r}", "members": ids[1:]}
        )
        room_ids.append(room["id"])
    return tokens, room_ids


class Sender:
    """A chat client that follows the delivery rule of docs/protocol.md.

    A message stays pending until its own ``message.new`` arrives; on ``unavailable``, on a socket
    close (it reconnects) or when nothing came back for ``resend_after`` seconds, it is sent again
    with the same ``client_msg_id``.
    """

    def __init__(self, port: int, token: str, *, resend_after: float = 4.0) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/chat/"
        self.token = token
        self.resend_after = resend_after
        self.ws = None
        self.pending: dict[str, tuple[int, str, float]] = {}  # client_msg_id -> (room, body, sent at)
        self.accepted: set[str] = set()
        self.stored: dict[str, tuple[int, int]] = {}  # client_msg_id -> (room, seq)
        self.closes: list[int] = []
        self.unavailable = 0
        self.reader: asyncio.Task | None = None

    async def connect(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ws = await websockets.connect(
                    self.url, additional_headers={"Authorization": f"Token {self.token}"}
                )
                break
            except (OSError, websockets.InvalidStatus, websockets.InvalidHandshake):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        self.reader = asyncio.get_running_loop().create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                kind = frame.get("type")
                if kind == "message.accepted":
                    self.accepted.add(frame["client_msg_id"])
                elif kind == "message.new":
                    message = frame["message"]
                    cid = message.get("client_msg_id")
                    if cid in self.pending:
                        self.pending.pop(cid)
                        self.stored[cid] = (message["room"], message["seq"])
                elif kind == "error" and frame.get("code") in ("unavailable", "rate_limited"):
                    self.unavailable += 1
                    cid = frame.get("client_msg_id") or frame.get("req")
                    if cid in self.pending:
                        room, body, _ = self.pending[cid]
                        self.pending[cid] = (room, body, 0.0)  # due again
        except websockets.ConnectionClosed:
            pass
        if ws.close_code is not None:
            self.closes.append(ws.close_code)

    async def send(self, room: int, body: str) -> str:
        cid = str(uuid.uuid4())
        self.pending[cid] = (room, body, time.monotonic())
        await self._send(cid)
        return cid

    async def _send(self, cid: str) -> None:
        room, body, _ = self.pending[cid]
        self.pending[cid] = (room, body, time.monotonic())
        try:
            await self.ws.send(
                json.dumps({"type": "message.send", "room": room, "client_msg_id": cid, "body": body, "req": cid})
            )
        except websockets.ConnectionClosed:
            pass  # re-sent after the reconnect

    async def keep_up(self) -> None:
        """Reconnect a closed socket and re-send what is due."""
        if self.ws is None or self.ws.close_code is not None or (self.reader and self.reader.done()):
            await asyncio.sleep(0.5)
            await self.connect()
            for cid in list(self.pending):
                await self._send(cid)
            return
        now = time.monotonic()
        for cid, (_room, _body, sent) in list(self.pending.items()):
            if now - sent >= self.resend_after:
                await self._send(cid)

    async def settle(self, timeout: float = 60) -> None:
        """Keep re-sending until every message was announced stored (or the timeout)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            await self.keep_up()
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


def stored_messages(database_url: str, rooms: list[int]) -> dict[int, list[tuple[int, str]]]:
    """Per room: (seq, client_msg_id) of every stored message, in seq order."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT room_id, seq, client_msg_id::text FROM chat_messages_message WHERE room_id = ANY(%s) ORDER BY room_id, seq",
            [rooms],
        )
        out: dict[int, list[tuple[int, str]]] = {room: [] for room in rooms}
        for room, seq, cid in cur.fetchall():
            out[room].append((seq, cid))
    conn.close()
    return out


def assert_stored_once_gapless(stored: dict[int, list[tuple[int, str]]], expected: set[str]) -> None:
    ids = [cid for rows in stored.values() for _, cid in rows]
    missing = expected - set(ids)
    assert not missing, f"{len(missing)} accepted messages were not stored"
    assert len(ids) == len(set(ids)), "a message was stored twice"
    for room, rows in stored.items():
        assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), f"room {room}: seqs are not gapless"


def postgres_family(run: Run) -> list[psutil.Process]:
    """The embedded postmaster and its children (backends, checkpointer, ...)."""
    master = psutil.Process(run.state()["pids"]["postgres"])
    return [master, *master.children(recursive=True)]
