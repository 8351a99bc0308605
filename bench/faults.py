"""The fault table (issue 15): chat under load while one part of `make run` fails, counted afterwards.

``python -m bench.faults [--scenario NAME ...] [--rate 200] [--users 25] [--seconds 20]`` runs, for
each scenario, a fresh ``python -m devstack run`` in its own data folder (RATE_LIMITS=off, a free
port), signs up ``--users`` people in rooms of five, and has each of them chat over a real WebSocket
at ``--rate`` messages/s in total. Every client follows docs/protocol.md ("Delivery: what a client
keeps until it sees its message stored"): a message stays pending until its own ``message.new``
arrives; after every (re)connect the client sends ``sync`` (from before its oldest pending message),
waits for ``sync.done`` and re-sends what is pending with the same ``client_msg_id``; ``unavailable``
/ ``rate_limited`` re-send after a back-off, and a message with no ``message.new`` for a while is
sent again on the open socket (rule 7; the web UI waits 20 s, here 8 s so that a run stays short).
At a fixed time the scenario's fault is injected; the load goes on, then stops, the clients settle
(bounded), and the database and the clients are counted:

- offered: messages the clients tried to send; accepted: answered ``message.accepted`` at least once;
- stored: distinct (sender, client_msg_id) rows of the offered ones; lost: accepted, never stored;
- doubled: rows beyond one per message (per idempotency key, and per sender and body number);
- lost w/o re-send: accepted, yet the row stored came from a later re-send (or none): what the
  server alone lost. Every attempt carries its number in the body, so the row tells which attempt
  the server stored; an accepted attempt precedes its re-sends on the room's partition, so a row
  from a later attempt means the accepted one was gone;
- seq gaps: missing seqs in the rooms' 1..last_seq;
- recovery s: from the fault until a message first offered after it reached another member;
- unsettled: offered, never stored (still pending when the bounded settle ended).

It prints one markdown table (``--markdown FILE`` writes it too) and keeps each run's supervisor
log. Traffic goes to 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import psycopg2
import websockets
from websockets.asyncio.client import ClientConnection, connect

from devstack.stack import readyz, run_argv, run_env

ROOT = Path(__file__).resolve().parent.parent
ROOM_SIZE = 5
PAYLOAD = 100
BODY_TAG = "fault"
# When the fault is injected, seconds into the load (earlier when the load is shorter).
FAULT_AT_S = 6.0
PAUSE_S = 3.0  # how long PostgreSQL stays stopped (SIGSTOP .. SIGCONT)
SPILL_PAUSE_S = 25.0  # stop-spill: longer than the stop (web, 1 s drain, 15 s grace), so the spill is real
SETTLE_S = 40.0  # longest wait, after the load, for every client's pending messages to be stored
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 120.0
# A client's re-sends: after `unavailable` / `rate_limited`, doubling from 1 s up to 4 s; with no
# message.new at all for UNSETTLED_S (a broker that lost it), doubling. The web UI waits 20 s there.
RESEND_BASE_S = 1.0
RESEND_MAX_S = 4.0
UNSETTLED_S = 8.0
# Reconnect back-off on a close or a refused connection: 0.25 s doubling up to 2 s, jittered;
# 4503 ("server stopping") waits 0.5-3 s as the protocol says.
RECONNECT_BASE_S = 0.25
RECONNECT_MAX_S = 2.0
CLIENT_OPTIONS = {
    "compression": None,
    "proxy": None,
    "ping_interval": None,
    "open_timeout": 5,
    "close_timeout": 1,
    "max_size": 2**22,
}
FINAL_CODES = {"invalid", "too_large", "not_member", "forbidden", "unauthenticated"}
RETRY_CODES = {"unavailable", "rate_limited"}
# Lines of the supervisor's output worth keeping in a scenario's notes.
NOTEWORTHY = re.compile(
    r"exited with code|restarting|starting again|back on port|drain:|spill|re-created the topics|did not stop|killing"
    r"|stopping web first|Traceback|ERROR|CRITICAL",
)


# -- the stack under test ------------------------------------------------------------------------------
class StackRun:
    """One ``python -m devstack run --data DATA`` (what `make run` starts), its output in a log file."""

    def __init__(self, data: Path, port: int, log_path: Path, *, only: str | None = None, **env: str) -> None:
        self.data = data
        self.only = only
        self.port = port
        self.log_path = log_path
        self.env = run_env(port, **env)
        self.process: subprocess.Popen | None = None
        self.log = None
        # Every process seen under the supervisor, for the clean-up (psutil notices a reused pid).
        self.family: dict[int, psutil.Process] = {}

    def start(self) -> StackRun:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()/kill()
        self.process = subprocess.Popen(
            run_argv(self.data, self.only),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our SIGTERM is the only signal it gets
        )
        return self

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def readyz(self) -> dict | None:
        return readyz(self.port)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Wait until /readyz says ready and the persist consumer started; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited with code {self.process.returncode}; see {self.log_path}")
            body = self.readyz()
            if body and body.get("status") == "ready" and self.pid_of("persist"):
                self._remember_family()
                return time.monotonic() - started
            time.sleep(0.3)
        raise RuntimeError(f"the stack was not ready after {timeout:.0f} s; see {self.log_path}")

    def state(self) -> dict:
        return json.loads((self.data / "services.json").read_text())

    def service_pid(self, name: str) -> int:
        """The embedded service's pid as the stack recorded it (postgres, valkey, tansu)."""
        return int(self.state()["pids"][name])

    def pid_of(self, name: str) -> int | None:
        """The newest pid the supervisor printed for a child ("web | started (pid N)")."""
        found = re.findall(rf"^{re.escape(name)}\s*\| started \(pid (\d+)\)", self.output(), re.M)
        return int(found[-1]) if found else None

    def _remember_family(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            for process in psutil.Process(self.process.pid).children(recursive=True):
                self.family.setdefault(process.pid, process)
        except psutil.Error:
            pass

    def sigterm(self) -> None:
        """What Ctrl-C or a service manager does: the supervisor stops everything in order."""
        self._remember_family()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait; what did not stop in time is killed (by the pids this run started)."""
        self.sigterm()
        code = self.wait(timeout)
        self.kill()
        return code

    def kill(self) -> None:
        self._remember_family()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for process in self.family.values():
            try:
                if process.is_running():
                    process.send_signal(signal.SIGCONT)  # a paused one would never die
                    process.kill()
            except psutil.Error:
                pass
        if self.log is not None:
            self.log.close()
            self.log = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


POPULATE = """
import json, os, sys
import django
django.setup()
from bench.population import rooms_create, users_create
users, room_size, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
made = users_create(prefix=prefix, count=users)
groups = [[uid for uid, _ in made[i:i + room_size]] for i in range(0, users, room_size)]
rooms = rooms_create(prefix=prefix, member_ids=groups)
print("POPULATION " + json.dumps({"users": made, "rooms": rooms, "groups": groups}))
"""


def populate(stack: StackRun, *, users: int) -> tuple[list[tuple[int, str, int]], list[int]]:
    """Make ``users`` people (bulk-created with tokens: hashing passwords would take a minute) in rooms
    of ROOM_SIZE; returns [(user id, token, room id)] and the room ids."""
    env = {**stack.env, **stack.state()["urls"], "DJANGO_SETTINGS_MODULE": "chatproject.settings"}
    prefix = f"f{uuid.uuid4().hex[:6]}"
    result = subprocess.run(
        [sys.executable, "-c", POPULATE, str(users), str(ROOM_SIZE), prefix],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("POPULATION ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"population failed ({result.returncode}): {result.stderr[-2000:]}")
    data = json.loads(line.split(" ", 1)[1])
    room_of = {uid: data["rooms"][g] for g, group in enumerate(data["groups"]) for uid in group}
    return [(uid, token, room_of[uid]) for uid, token in data["users"]], data["rooms"]


# -- the clients -------------------------------------------------------------------------------------
@dataclass(eq=False)
class Msg:
    n: int
    sender: int
    room: int
    cmid: str
    offered_at: float
    after_seq: int = 0  # the room's last seq its sender had when it was written (a sync starts there)
    attempts: int = 0  # attempts sent so far; the next one's number
    accepted: dict = field(default_factory=dict)  # attempt number -> when it was answered message.accepted
    last_sent: float = 0.0
    retry_at: float | None = None  # a re-send due after `unavailable` / `rate_limited`
    refusals: int = 0
    unsettled_resends: int = 0
    settled_at: float | None = None  # own message.new received
    delivered_other_at: float | None = None  # first message.new at another member's socket
    failed: str | None = None

    def body(self, attempt: int) -> str:
        head = f"{BODY_TAG}|{self.n}|{attempt}|"
        return head + "x" * max(0, PAYLOAD - len(head))


@dataclass(eq=False)
class ChatClient:
    """One user on one socket, following docs/protocol.md's delivery rules."""

    load: Load
    user_id: int
    token: str
    room: int
    ws: ClientConnection | None = None
    synced: bool = False
    sync_req: str | None = None
    sync_retry_at: float | None = None
    pending: dict[str, Msg] = field(default_factory=dict)  # in the order offered
    last_seq: int = 0
    closes: Counter = field(default_factory=Counter)
    connects: int = 0
    connect_failures: int = 0
    stopped: bool = False
    task: asyncio.Task | None = None

    # -- the connection ----------------------------------------------------------------------------
    async def run(self) -> None:
        failures = 0
        while not self.stopped:
            try:
                ws = await connect(
                    self.load.url, additional_headers={"Authorization": f"Token {self.token}"}, **CLIENT_OPTIONS
                )
            except (OSError, websockets.WebSocketException, TimeoutError):
                self.connect_failures += 1
                await asyncio.sleep(_backoff(failures))
                failures += 1
                continue
            if self.stopped:
                await ws.close()
                break
            failures = 0
            self.ws, self.synced, self.connects = ws, False, self.connects + 1
            try:
                await self._sync()
                async for text in ws:
                    self._on_frame(json.loads(text))
            except websockets.ConnectionClosed:
                pass
            code = ws.close_code if ws.close_code is not None else 1006
            self.ws, self.synced = None, False
            if self.stopped:
                break
            self.closes[code] += 1
            if code == 4401:
                break  # logged out: a person would log in again; a load test has nothing to do
            if code == 4503:
                delay = random.uniform(0.5, 3.0)
            elif code == 4429:
                delay = 30.0
            else:
                delay = _backoff(failures)
                failures += 1
            await asyncio.sleep(delay)

    async def _sync(self) -> None:
        self.sync_req = f"sync-{self.user_id}-{self.connects}-{time.monotonic_ns()}"
        self.sync_retry_at = None
        # From before the oldest pending message (rule 8), so that one stored meanwhile settles by the
        # replay instead of a re-send.
        since = min([m.after_seq for m in self.pending.values()] + [self.last_seq])
        frame = {"type": "sync", "rooms": {str(self.room): since}, "req": self.sync_req}
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        self.stopped = True
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass

    # -- sending -------------------------------------------------------------------------------------
    def offer(self, msg: Msg) -> None:
        msg.after_seq = self.last_seq
        self.pending[msg.cmid] = msg
        if self.synced:
            self._transmit(msg)

    def _transmit(self, msg: Msg) -> None:
        ws = self.ws
        if ws is None:
            return
        attempt = msg.attempts
        msg.attempts += 1
        msg.last_sent = time.monotonic()
        msg.retry_at = None
        self.load.sends += 1
        text = json.dumps(
            {
                "type": "message.send",
                "room": msg.room,
                "client_msg_id": msg.cmid,
                "body": msg.body(attempt),
                "req": f"{msg.n}:{attempt}",
            }
        )
        self.load.spawn(self._write(ws, text))

    async def _write(self, ws, text: str) -> None:
        try:
            await ws.send(text)
        except websockets.ConnectionClosed:
            pass  # still pending: re-sent after the next connection's sync

    def tick(self, now: float) -> None:
        """Re-send what is due (after a refusal, or unsettled for long), and a refused sync."""
        if self.ws is None:
            return
        if not self.synced:
            if self.sync_retry_at is not None and now >= self.sync_retry_at:
                self.sync_retry_at = None
                self.load.spawn(self._resync(self.ws))
            return
        for msg in list(self.pending.values()):
            if msg.retry_at is not None:
                if now >= msg.retry_at:
                    self._transmit(msg)
            elif self.load.unsettled_s and now - msg.last_sent >= self.load.unsettled_s * 2 ** min(
                msg.unsettled_resends, 3
            ):
                msg.unsettled_resends += 1
                self._transmit(msg)

    async def _resync(self, ws) -> None:
        if ws is self.ws:
            try:
                await self._sync()
            except websockets.ConnectionClosed:
                pass

    # -- receiving -----------------------------------------------------------------------------------
    def _on_frame(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "message.new":
            self._on_new(frame["message"])
        elif kind == "message.accepted":
            n, _, attempt = str(frame.get("req") or "").partition(":")
            msg = self.load.by_cmid.get(frame.get("client_msg_id"))
            if msg is not None and attempt.isdigit():
                msg.accepted.setdefault(int(attempt), time.monotonic())
        elif kind == "sync.done" and frame.get("req") == self.sync_req:
            self.synced = True
            for msg in list(self.pending.values()):
                self._transmit(msg)
        elif kind == "sync.gap":
            # More missed than a sync replays: a real client pages the history; we only need to go on
            # from the newest seq (a pending message stored meanwhile comes back on its re-send).
            pass
        elif kind == "error":
            self._on_error(frame)

    def _on_new(self, message: dict) -> None:
        if message.get("room") == self.room and isinstance(message.get("seq"), int):
            self.last_seq = max(self.last_seq, message["seq"])
        msg = self.load.by_cmid.get(message.get("client_msg_id"))
        if msg is None:
            return
        now = time.monotonic()
        if (message.get("sender") or {}).get("id") == self.user_id:
            if self.pending.pop(msg.cmid, None) is not None:
                msg.settled_at = now
        elif msg.delivered_other_at is None:
            msg.delivered_other_at = now

    def _on_error(self, frame: dict) -> None:
        code = frame.get("code")
        self.load.errors[code] += 1
        if frame.get("req") == self.sync_req and self.sync_req is not None:
            self.sync_retry_at = time.monotonic() + RESEND_BASE_S  # a refused sync: ask again
            return
        msg = self.load.by_cmid.get(frame.get("client_msg_id"))
        if msg is None or msg.cmid not in self.pending:
            return
        if code in RETRY_CODES:
            hinted = float(frame.get("retry_after") or 0)
            delay = min(RESEND_MAX_S, RESEND_BASE_S * 2**msg.refusals) * random.uniform(0.5, 1.0)
            msg.refusals += 1
            msg.retry_at = time.monotonic() + max(hinted, delay)
        elif code in FINAL_CODES:
            msg.failed = code
            self.pending.pop(msg.cmid, None)


def _backoff(failures: int) -> float:
    ceiling = min(RECONNECT_MAX_S, RECONNECT_BASE_S * 2**failures)
    return random.uniform(ceiling / 2, ceiling)


class Load:
    """The clients, the clock that offers messages, and the bookkeeping of every message."""

    def __init__(
        self, url: str, people: list[tuple[int, str, int]], rate: float, unsettled_s: float = UNSETTLED_S
    ) -> None:
        self.url = url
        self.rate = rate
        self.unsettled_s = unsettled_s  # 0: never re-send an unsettled message on an open socket
        self.clients = [ChatClient(self, uid, token, room) for uid, token, room in people]
        self.messages: list[Msg] = []
        self.by_cmid: dict[str, Msg] = {}
        self.errors: Counter = Counter()
        self.sends = 0
        self.tasks: set[asyncio.Task] = set()
        self._ticker: asyncio.Task | None = None

    def spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def connect(self, timeout: float = 30.0) -> None:
        for client in self.clients:
            client.task = asyncio.get_running_loop().create_task(client.run())
        deadline = time.monotonic() + timeout
        while not all(c.synced for c in self.clients):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sum(c.synced for c in self.clients)} clients connected")
            await asyncio.sleep(0.05)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            now = time.monotonic()
            for client in self.clients:
                client.tick(now)
            await asyncio.sleep(0.25)

    async def offer(self, seconds: float, on_time: list[tuple[float, Callable]] = ()) -> float:
        """Offer messages on a clock for ``seconds`` (round robin over the clients); ``on_time``:
        (seconds in, callback) run once each. Returns when the load started (monotonic)."""
        start = time.monotonic()
        due = sorted(on_time, key=lambda x: x[0])
        interval = 1.0 / self.rate
        turn = 0
        while True:
            now = time.monotonic()
            elapsed = now - start
            while due and elapsed >= due[0][0]:
                due.pop(0)[1]()
            total = round(seconds * self.rate)
            target = total if elapsed >= seconds else min(total, int(elapsed * self.rate) + 1)
            while len(self.messages) < target:
                client = self.clients[turn % len(self.clients)]
                turn += 1
                msg = Msg(len(self.messages), client.user_id, client.room, str(uuid.uuid4()), now)
                self.messages.append(msg)
                self.by_cmid[msg.cmid] = msg
                client.offer(msg)
            if elapsed >= seconds:
                break
            await asyncio.sleep(min(interval, 0.01))
        return start

    def pending(self) -> int:
        return sum(len(c.pending) for c in self.clients)

    async def settle(self, timeout: float) -> float:
        started = time.monotonic()
        while self.pending() and time.monotonic() - started < timeout:
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
        tasks = [c.task for c in self.clients if c.task is not None]
        _, running = await asyncio.wait(tasks, timeout=5)
        for task in running:
            task.cancel()
        for task in list(self.tasks):
            task.cancel()


# -- the faults --------------------------------------------------------------------------------------
class Faults:
    """What each scenario does to the stack at the fault time; ``background`` finishes later."""

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.background: list[threading.Thread] = []
        self.paused: list[psutil.Process] = []

    def later(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.background.append(thread)

    def kill9(self, pid: int | None, what: str) -> None:
        if not pid:
            raise RuntimeError(f"no pid for {what}")
        os.kill(pid, signal.SIGKILL)
        self.s.note(f"kill -9 {what} (pid {pid})")

    def pause_postgres(self, seconds: float) -> None:
        master = psutil.Process(self.s.stack.service_pid("postgres"))
        self.paused = [master, *master.children(recursive=True)]
        for process in self.paused:
            process.send_signal(signal.SIGSTOP)
        self.s.note(f"SIGSTOP PostgreSQL ({len(self.paused)} processes) for {seconds:.0f} s")

        def resume() -> None:
            time.sleep(seconds)
            self.resume_postgres()

        self.later(resume)

    def resume_postgres(self) -> None:
        paused, self.paused = self.paused, []
        for process in paused:
            try:
                process.send_signal(signal.SIGCONT)
            except psutil.Error:
                pass
        if paused:
            self.s.note("SIGCONT PostgreSQL")

    def stop_and_start(self, pause: float) -> None:
        """PostgreSQL paused, then SIGTERM to the supervisor; start again on the same data folder."""
        self.pause_postgres(pause)
        old = self.s.stack

        def restart() -> None:
            time.sleep(0.5)  # a lag builds up behind the paused database
            self.s.note("SIGTERM to the devstack supervisor")
            old.sigterm()
            code = old.wait(STOP_TIMEOUT_S)
            self.s.note(f"the supervisor exited with code {code}")
            old.kill()
            new = StackRun(old.data, old.port, old.log_path, only=old.only, **self.s.extra_env)
            new.start()
            self.s.stack = new
            self.s.note("started again on the same data folder")
            try:
                took = new.wait_ready()
            except RuntimeError as exc:
                self.s.note(f"did not come back: {exc}")
                return
            self.s.note(f"ready again after {took:.1f} s")

        self.later(restart)

    def close(self) -> None:
        self.resume_postgres()


def fault_persist(f: Faults) -> None:
    f.kill9(f.s.stack.pid_of("persist"), "the persist consumer")


def fault_web(f: Faults) -> None:
    f.kill9(f.s.stack.pid_of("web"), "daphne (web)")


def fault_redis(f: Faults) -> None:
    f.kill9(f.s.stack.service_pid("valkey"), "the embedded Valkey")


def fault_broker(f: Faults) -> None:
    f.kill9(f.s.stack.service_pid("tansu"), "the embedded broker (Tansu)")


def fault_postgres(f: Faults) -> None:
    f.pause_postgres(PAUSE_S)


def fault_stop(f: Faults) -> None:
    f.stop_and_start(PAUSE_S)


def fault_stop_spill(f: Faults) -> None:
    f.stop_and_start(SPILL_PAUSE_S)


@dataclass(frozen=True)
class Kind:
    name: str
    what: str
    inject: Callable[[Faults], None]
    env: tuple = ()


SCENARIOS = {
    k.name: k
    for k in (
        Kind("persist", "kill -9 the persist consumer", fault_persist),
        Kind("web", "kill -9 daphne (web)", fault_web),
        Kind("redis", "kill -9 the embedded Valkey (Redis)", fault_redis),
        Kind("postgres-pause", f"SIGSTOP PostgreSQL for {PAUSE_S:.0f} s, then SIGCONT", fault_postgres),
        Kind("stop", f"stop `make run` (SIGTERM) while PostgreSQL is paused for {PAUSE_S:.0f} s, start again",
             fault_stop),
        Kind("broker", "kill -9 the embedded broker (Tansu)", fault_broker),
        # The drain runs out of time while PostgreSQL is still paused, so the stop spills to disk.
        Kind("stop-spill", f"as stop, PostgreSQL paused {SPILL_PAUSE_S:.0f} s, DRAIN_TIMEOUT_S=1: the stop spills"
             " to disk, the start re-produces", fault_stop_spill, (("DRAIN_TIMEOUT_S", "1"),)),
    )
}  # fmt: skip
DEFAULT = ("persist", "web", "redis", "postgres-pause", "stop", "broker", "stop-spill")


# -- one scenario -------------------------------------------------------------------------------------
@dataclass
class Row:
    scenario: str
    what: str
    offered: int = 0
    accepted: int = 0
    stored: int = 0
    lost: int = 0
    lost_without_resend: int = 0
    server_lost: list = field(default_factory=list)  # the first 200 of those, in detail
    doubled: int = 0
    seq_gaps: int = 0
    recovery_s: float | None = None
    unsettled: int = 0
    failed: int = 0
    sends: int = 0
    errors: dict = field(default_factory=dict)
    closes: dict = field(default_factory=dict)
    settle_s: float = 0.0
    notes: list = field(default_factory=list)
    log: str = ""
    error: str | None = None


class Scenario:
    def __init__(self, kind: Kind, args: argparse.Namespace, folder: Path) -> None:
        self.kind = kind
        self.args = args
        self.folder = folder
        self.extra_env = {"DRAIN_TIMEOUT_S": str(args.drain_timeout), **dict(kind.env)}
        self.stack: StackRun | None = None
        self.t0 = time.monotonic()
        self.row = Row(kind.name, kind.what)

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.t0:6.1f} s  {text}"
        self.row.notes.append(line)
        print(f"  [{self.kind.name}] {line}", flush=True)

    def run(self) -> Row:
        data = self.folder / "stack"
        log_path = self.folder / "devstack.log"
        self.row.log = str(log_path)
        self.stack = StackRun(data, free_port(), log_path, only=self.args.only, **self.extra_env).start()
        faults = Faults(self)
        try:
            took = self.stack.wait_ready()
            self.note(f"stack ready in {took:.1f} s on port {self.stack.port}")
            people, rooms = populate(self.stack, users=self.args.users)
            self.note(f"{len(people)} users in {len(rooms)} rooms")
            asyncio.run(self._chat(people, rooms, faults))
        except Exception as exc:  # noqa: BLE001 - a failed scenario is a row with its error
            self.row.error = f"{type(exc).__name__}: {exc}"
            self.note(f"failed: {self.row.error}")
        finally:
            faults.close()
            for thread in faults.background:
                thread.join(STOP_TIMEOUT_S + READY_TIMEOUT_S)
            if self.stack is not None:
                code = self.stack.stop()
                self.note(f"stack stopped (code {code})")
            self._log_notes(log_path)
            if not self.args.keep:
                shutil.rmtree(data, ignore_errors=True)
        return self.row

    async def _chat(self, people: list, rooms: list[int], faults: Faults) -> None:
        load = Load(f"ws://127.0.0.1:{self.stack.port}/ws/chat/", people, self.args.rate, self.args.unsettled_resend)
        fault_at = min(FAULT_AT_S, self.args.seconds / 3)
        fault_t: list[float] = []

        def inject() -> None:
            fault_t.append(time.monotonic())
            self.note(f"fault: {self.kind.what}")
            self.kind.inject(faults)

        try:
            await load.connect()
            await load.offer(self.args.seconds, [(fault_at, inject)])
            self.note(f"load over: {len(load.messages)} offered, {load.pending()} pending")
            # A stop-and-start finishes in the background; clients reconnect to the new stack.
            while any(t.is_alive() for t in faults.background):
                await asyncio.sleep(0.2)
            self.row.settle_s = round(await load.settle(self.args.settle), 1)
            self.note(f"settled in {self.row.settle_s} s: {load.pending()} pending")
            await asyncio.sleep(1.0)  # late frames
        finally:
            await load.close()
        self._count(load, rooms, fault_t[0] if fault_t else None)

    def _count(self, load: Load, rooms: list[int], fault_t: float | None) -> None:
        row = self.row
        senders = sorted({m.sender for m in load.messages} | {c.user_id for c in load.clients})
        with psycopg2.connect(self.stack.state()["urls"]["DATABASE_URL"]) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT sender_id, client_msg_id::text, body FROM chat_messages_message WHERE sender_id = ANY(%s)",
                [senders],
            )
            rows = cur.fetchall()
            cur.execute(
                "SELECT room_id, count(*), coalesce(max(seq), 0) FROM chat_messages_message"
                " WHERE room_id = ANY(%s) GROUP BY room_id",
                [rooms],
            )
            per_room = cur.fetchall()
        conn.close()
        by_key = Counter((sender, cmid) for sender, cmid, _ in rows)
        by_body = Counter()
        stored_attempt: dict[tuple[int, str], int] = {}
        for sender, cmid, body in rows:
            parts = body.split("|")
            if len(parts) >= 3 and parts[0] == BODY_TAG:
                by_body[(sender, parts[1])] += 1
                stored_attempt[(sender, cmid)] = int(parts[2])
        row.offered = len(load.messages)
        row.sends = load.sends
        server_lost: list[tuple[float, float]] = []  # (offered, first accepted) of each message the server lost
        for msg in load.messages:
            key = (msg.sender, msg.cmid)
            stored = key in by_key
            row.accepted += bool(msg.accepted)
            row.stored += stored
            row.failed += msg.failed is not None
            if msg.accepted and not stored:
                row.lost += 1
            if msg.accepted and (not stored or stored_attempt.get(key, 0) > min(msg.accepted)):
                row.lost_without_resend += 1
                server_lost.append((msg.offered_at, msg.accepted[min(msg.accepted)]))
                if len(row.server_lost) < 200:
                    row.server_lost.append(
                        {
                            "n": msg.n,
                            "room": msg.room,
                            "cmid": msg.cmid,
                            "accepted_s_after_fault": {
                                k: round(t - fault_t, 3) if fault_t else None for k, t in msg.accepted.items()
                            },
                            "stored_attempt": stored_attempt.get(key),
                            "offered_s_after_fault": round(msg.offered_at - fault_t, 3) if fault_t else None,
                        }
                    )
            if not stored and msg.failed is None:
                row.unsettled += 1
        row.doubled = max(
            sum(count - 1 for count in by_key.values()),
            sum(count - 1 for count in by_body.values()),
        )
        row.seq_gaps = sum(last - count for _room, count, last in per_room)
        if fault_t is not None:
            after = [m.delivered_other_at for m in load.messages if m.offered_at >= fault_t and m.delivered_other_at]
            row.recovery_s = round(min(after) - fault_t, 1) if after else None
        if server_lost and fault_t is not None:
            # Relative to the fault (negative: before). A message.accepted read a few ms after the
            # fault may still be the dead part's answer: the clients share the loop that injects it.
            offered = sorted(o - fault_t for o, _ in server_lost)
            accepted = sorted(a - fault_t for _, a in server_lost)
            self.note(
                f"lost w/o re-send: {len(server_lost)}, offered {offered[0]:+.3f}..{offered[-1]:+.3f} s and first"
                f" accepted {accepted[0]:+.3f}..{accepted[-1]:+.3f} s from the fault"
            )
        row.errors = dict(load.errors)
        closes = Counter()
        for client in load.clients:
            closes.update(client.closes)
        row.closes = {str(k): v for k, v in sorted(closes.items())}

    def _log_notes(self, log_path: Path) -> None:
        try:
            lines = log_path.read_text(errors="replace").splitlines()
        except OSError:
            return
        kept = [line for line in lines if NOTEWORTHY.search(line)]
        self.row.notes.append(f"log: {len(kept)} noteworthy lines of {len(lines)} ({log_path})")
        self.row.notes.extend("  " + line[:300] for line in kept[:60])


# -- the table ------------------------------------------------------------------------------------------
COLUMNS = (
    ("scenario", "scenario"),
    ("offered", "offered"),
    ("accepted", "accepted"),
    ("stored", "stored"),
    ("lost", "lost"),
    ("doubled", "doubled"),
    ("lost w/o re-send", "lost_without_resend"),
    ("seq gaps", "seq_gaps"),
    ("recovery s", "recovery_s"),
    ("unsettled", "unsettled"),
)


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(title for title, _ in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        cells = []
        for _, name in COLUMNS:
            value = getattr(row, name)
            if name == "scenario":
                value = f"{row.scenario}: {row.what}" + (f" (failed: {row.error})" if row.error else "")
            cells.append("-" if value is None else f"{value:,}" if isinstance(value, int) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default: all")
    parser.add_argument("--rate", type=float, default=200.0, help="messages/s offered by all clients together")
    parser.add_argument("--users", type=int, default=25, help=f"clients, in rooms of {ROOM_SIZE}")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per scenario")
    parser.add_argument("--settle", type=float, default=SETTLE_S, help="longest wait for pending messages")
    parser.add_argument(
        "--unsettled-resend",
        type=float,
        default=UNSETTLED_S,
        help="re-send a message with no message.new after this many seconds on an open socket (doubling);"
        " 0: only after a reconnect",
    )
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="DRAIN_TIMEOUT_S of the stack")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--json", type=Path, help="every row with its notes, as JSON")
    parser.add_argument("--logs", type=Path, help="where data folders and logs go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's data folder")
    parser.add_argument("--only", help="devstack run --only (e.g. web,persist for a quick smoke run)")
    return parser.parse_args(argv)


def run_scenario(name: str, args: argparse.Namespace, folder: Path) -> Row:
    """One scenario on a fresh stack in ``folder``; its row (``error`` set when it could not run)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Scenario(SCENARIOS[name], args, folder).run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.scenario or list(DEFAULT)
    base = args.logs or Path(tempfile.mkdtemp(prefix="faults-"))
    base.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    print(f"fault table: {', '.join(names)}; {args.users} users, {args.rate:g} messages/s, {args.seconds:g} s of"
          f" load each; logs in {base}", flush=True)  # fmt: skip
    rows = []
    for name in names:
        print(f"== {name}: {SCENARIOS[name].what}", flush=True)
        rows.append(run_scenario(name, args, base / name))
    text = table(rows)
    took = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
    print(f"\n{text}\n\n({took:.0f} s; started {started:%Y-%m-%d %H:%M} UTC)", flush=True)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
