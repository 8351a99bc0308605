"""The load generator: many real WebSocket clients in one asyncio process.

It speaks two protocols over the same bookkeeping:

- ``product``: the project's /ws/chat/ (docs/protocol.md) (``Authorization: Token``, ``message.send`` ->
  ``message.accepted`` -> ``message.new`` to every member, ``sync`` -> replay -> ``sync.done``);
- ``tutorial``: the Channels tutorial chat (``{"message": ...}`` to /ws/chat/<room>/, echoed to
  every socket of the room, no acknowledgement, no seq, no history).

Every message body is ``"<n>|<send time ns>|xxxx..."`` padded to the payload size, so a receipt
names its message and its send time whatever the protocol wraps around it. The generator sends
open loop (on a clock, never waiting for replies), so a slow server shows up as latency and loss
rather than as a politely lowered rate.

It imports no Django: it runs pinned to its own core, as ``python -m bench.loadgen SPEC OUT``
(JSON in, JSON out), or in-process from a test via :func:`fanout`.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import websockets
from websockets.asyncio.client import connect

PRODUCT = "product"
TUTORIAL = "tutorial"

# Knobs of the client sockets: no keepalive pings (they would only add noise), no compression
# (daphne does not negotiate it anyway), never a proxy (loopback only).
CLIENT_OPTIONS = {
    "compression": None,
    "proxy": None,
    "ping_interval": None,
    "open_timeout": 30,
    "close_timeout": 2,
    "max_queue": 1024,
    "max_size": 2**22,
}
CONNECT_BATCH = 25  # sockets opened at a time when setting up (S5 opens them all at once instead)


@dataclass
class Client:
    """One socket: its credentials (product) and the one room it is in and sends to."""

    room: int | str
    token: str | None = None


@dataclass
class FanoutSpec:
    """R rooms x M members, offered deliveries/s stepped through ``rates``."""

    protocol: str
    url: str
    clients: list[Client]
    rates: list[int]  # offered deliveries/s (messages/s x members of the room)
    duration: float = 10.0
    payload: int = 100
    drain: float = 10.0
    p99_limit_ms: float = 100.0
    stop_on_fail: bool = True
    warmup_timeout: float = 60.0
    watch_pids: dict[str, int] = field(default_factory=dict)  # name -> pid (with its children)
    server_cpu: int | None = None
    # S6: attachment ids uploaded beforehand, per client (by index); each client's every Nth
    # message carries the next one of its ids while they last.
    attachments: list[list[int]] = field(default_factory=list)
    attachment_every: int = 0


@dataclass
class Step:
    """What one offered rate gave: measured at once when its messages were drained, then the CPU it took."""

    offered: int
    duration: float
    sent: int
    accepted: int
    refused: dict
    # Refused with an error, yet delivered to members anyway (the client was told it failed).
    refused_but_delivered: int
    unanswered: int
    expected: int
    delivered: int
    lost: int
    duplicates: int
    out_of_order: int
    # Sockets the server closed during the step, by close code (the tutorial's do, overloaded).
    closed_by_server: dict
    delivered_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    accept_p50_ms: float | None
    accept_p99_ms: float | None
    send_seconds: float
    generator_cpu: float = 0.0
    server_cpu: float | None = None
    # Shares of the server core during the step: other processes (not ours), interrupts, steal.
    server_core_others: float | None = None
    server_core_irq: float | None = None
    server_core_steal: float | None = None
    cpu_by_process: dict = field(default_factory=dict)
    # CPU time of every watched server-side process (services included) over the step, sending
    # and draining, per delivery: the figure that compares across machines.
    server_cpu_seconds: float | None = None
    cpu_us_per_delivery: float | None = None
    # S6: the latency of messages with an attachment and of text-only ones, apart.
    attachment_sent: int = 0
    attachment_p50_ms: float | None = None
    attachment_p99_ms: float | None = None
    text_p50_ms: float | None = None
    text_p99_ms: float | None = None

    @property
    def held(self) -> bool:
        """Loss-free, nothing refused, and within the latency limit (set by the caller)."""
        return (
            self.lost == 0 and self.duplicates == 0 and not self.refused and not self.closed_by_server and self.sent > 0
        )

    def ok(self, p99_limit_ms: float) -> bool:
        return self.held and self.p99_ms is not None and self.p99_ms <= p99_limit_ms


@dataclass
class FanoutResult:
    protocol: str
    rooms: int
    clients: int
    steps: list[Step]
    # room -> client_msg_ids of every message the server accepted (product), warm-up included.
    accepted: dict = field(default_factory=dict)
    warmup_seconds: float = 0.0
    connect_failures: int = 0

    def best(self, p99_limit_ms: float) -> Step | None:
        held = [s for s in self.steps if s.ok(p99_limit_ms)]
        return max(held, key=lambda s: s.delivered_per_s) if held else None


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


# -- CPU accounting (Linux /proc) -----------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{current}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            stack.extend(int(child) for child in children)
    return found


def cpu_ticks(pid: int, *, reaped: bool = False) -> int | None:
    """Clock ticks of CPU ``pid`` used so far (utime + stime; with ``reaped``, also cutime +
    cstime: its children that ended and were waited for); None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(field) for field in fields[11 : 15 if reaped else 13])


def processes_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU time used so far by each of these processes and all their descendants, by pid.

    By pid, so that a step's figure counts only processes alive at its end: a PostgreSQL
    backend that exits mid-step would otherwise make the difference negative.
    """
    times = {}
    for root in pids:
        for pid in _descendants(root):
            ticks = cpu_ticks(pid)
            if ticks is not None:
                times[pid] = ticks / _TICK
    return times


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


CoreSnapshot = tuple[dict[str, dict[int, float]], tuple[float, float, float]]


def core_snapshot(pids: dict[str, int], cpu: int | None) -> CoreSnapshot:
    """CPU time so far of each named process (with its descendants) and of the server core."""
    busy = core_seconds(cpu) if cpu is not None else (0.0, 0.0, 0.0)
    return {name: processes_cpu_seconds([pid]) for name, pid in pids.items()}, busy


def core_shares(before: CoreSnapshot, after: CoreSnapshot, wall: float) -> tuple[dict[str, float], dict[str, float]]:
    """Shares of the server core between two snapshots: by process, and the rest of the core
    ({"others": processes not ours, "irq": interrupts, "steal": hypervisor steal})."""
    by_process = {name: round(cpu_between(before[0][name], after[0][name]) / wall, 3) for name in before[0]}
    processes, irq, steal = ((b - a) / wall for a, b in zip(before[1], after[1], strict=True))
    others = max(0.0, processes - round(sum(by_process.values()), 3))
    return by_process, {"others": round(others, 3), "irq": round(irq, 3), "steal": round(steal, 3)}


def core_seconds(cpu: int) -> tuple[float, float, float]:
    """Time of one core so far: (processes, whoever they are; interrupts; hypervisor steal).

    Interrupt time is mostly the loopback network work our own sockets cause; steal is time
    the hypervisor gave to other machines.
    """
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in line.split()[1:9])
            return (user + nice + system) / _TICK, (irq + softirq) / _TICK, steal / _TICK
    return 0.0, 0.0, 0.0


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the fan-out run ---------------------------------------------------------------------------------
class _Socket:
    def __init__(self, index: int, client: Client, ws) -> None:
        self.index = index
        self.client = client
        self.ws = ws
        self.seen: set[int] = set()
        self.last_seq: dict[int, int] = {}
        self.sends = 0


class Fanout:
    """Bookkeeping of one fan-out run: who was sent what, who received it, when."""

    def __init__(self, spec: FanoutSpec) -> None:
        self.spec = spec
        self.sockets: list[_Socket] = []
        self.members: dict = {}
        self.t_send: list[int] = []
        self.step_of: list[int] = []
        self.room_of: list = []
        self.cmid_of: list[str | None] = []
        self.answer: list[str | None] = []  # None, "accepted" or an error code
        self.received: list[int] = []
        self.latencies: dict[int, list[float]] = {}
        self.with_attachment: set[int] = set()
        self.attachment_latencies: dict[int, list[float]] = {}
        self.text_latencies: dict[int, list[float]] = {}
        self.pools = [list(ids) for ids in spec.attachments]
        self.accept_latencies: dict[int, list[float]] = {}
        self.duplicates: Counter = Counter()
        self.out_of_order: Counter = Counter()
        self.by_cmid: dict[str, int] = {}
        self.readers: list[asyncio.Task] = []
        self.connect_failures = 0
        self.errors: Counter = Counter()
        self.step = -1
        self.closing = False
        self.closed_by_server: dict[int, Counter] = {}

    # -- sockets --
    def _url(self, client: Client) -> str:
        if self.spec.protocol == TUTORIAL:
            return f"{self.spec.url.rstrip('/')}/{client.room}/"
        return self.spec.url

    async def _open(self, index: int, client: Client) -> _Socket | None:
        try:
            ws = await open_socket(self.spec.protocol, self._url(client), client)
        except (OSError, websockets.WebSocketException, TimeoutError):
            self.connect_failures += 1
            return None
        return _Socket(index, client, ws)

    async def connect(self) -> None:
        for start in range(0, len(self.spec.clients), CONNECT_BATCH):
            batch = list(enumerate(self.spec.clients))[start : start + CONNECT_BATCH]
            opened = await asyncio.gather(*(self._open(i, c) for i, c in batch))
            self.sockets.extend(s for s in opened if s is not None)
        for sock in self.sockets:
            self.members.setdefault(sock.client.room, []).append(sock)
        loop = asyncio.get_running_loop()
        self.readers = [loop.create_task(self._read(sock)) for sock in self.sockets]

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(sock.ws.close() for sock in self.sockets), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)

    # -- receiving --
    async def _read(self, sock: _Socket) -> None:
        product = self.spec.protocol == PRODUCT
        try:
            async for text in sock.ws:
                now = time.perf_counter_ns()
                data = json.loads(text)
                if not product:
                    self._delivered(sock, data.get("message"), now, None, None)
                    continue
                kind = data.get("type")
                if kind == "message.new":
                    message = data["message"]
                    self._delivered(sock, message["body"], now, message["room"], message["seq"])
                elif kind == "message.accepted":
                    self._answered(data.get("client_msg_id"), "accepted", now)
                elif kind == "error":
                    self.errors[data.get("code")] += 1
                    self._answered(data.get("client_msg_id"), data.get("code") or "error", now)
        except websockets.ConnectionClosed as exc:
            if not self.closing:
                code = exc.rcvd.code if exc.rcvd else "none"
                self.closed_by_server.setdefault(self.step, Counter())[str(code)] += 1

    def _delivered(self, sock: _Socket, body, now: int, room, seq) -> None:
        if not isinstance(body, str) or body.count("|") < 2:
            return  # not one of ours
        head, sent_ns, _ = body.split("|", 2)
        n = int(head)
        if n >= len(self.t_send):
            return
        if n in sock.seen:
            self.duplicates[self.step_of[n]] += 1
            return
        sock.seen.add(n)
        if seq is not None:
            last = sock.last_seq.get(room)
            if last is not None and seq != last + 1:
                self.out_of_order[self.step_of[n]] += 1
            sock.last_seq[room] = seq
        self.received[n] += 1
        latency = (now - int(sent_ns)) / 1e6
        self.latencies.setdefault(self.step_of[n], []).append(latency)
        apart = self.attachment_latencies if n in self.with_attachment else self.text_latencies
        apart.setdefault(self.step_of[n], []).append(latency)

    def _answered(self, cmid, answer: str, now: int) -> None:
        n = self.by_cmid.get(cmid)
        if n is None or self.answer[n] is not None:
            return
        self.answer[n] = answer
        if answer == "accepted":
            self.accept_latencies.setdefault(self.step_of[n], []).append((now - self.t_send[n]) / 1e6)

    # -- sending --
    def _body(self, n: int, now: int) -> str:
        head = f"{n}|{now}|"
        return head + "x" * max(0, self.spec.payload - len(head))

    async def _send(self, step: int, sock: _Socket) -> None:
        n = len(self.t_send)
        now = time.perf_counter_ns()
        body = self._body(n, now)
        room = sock.client.room
        self.t_send.append(now)
        self.step_of.append(step)
        self.room_of.append(room)
        self.received.append(0)
        if self.spec.protocol == PRODUCT:
            cmid = str(uuid.uuid4())
            self.cmid_of.append(cmid)
            self.answer.append(None)
            self.by_cmid[cmid] = n
            frame = {"type": "message.send", "room": room, "client_msg_id": cmid, "body": body}
            pool = self.pools[sock.index] if sock.index < len(self.pools) else None
            every = self.spec.attachment_every
            # Offset by the socket's index, so that one in ``every`` of all sends carries one
            # even when each socket sends only a few messages; never the warm-up's.
            if pool and every and step >= 0 and (sock.sends + sock.index) % every == 0:
                frame["attachments"] = [pool.pop(0)]
                self.with_attachment.add(n)
            sock.sends += 1
            text = json.dumps(frame)
        else:
            self.cmid_of.append(None)
            self.answer.append("accepted")  # the tutorial answers nothing; every send counts
            text = json.dumps({"message": body})
        try:
            await sock.ws.send(text)
        except websockets.ConnectionClosed:
            self.answer[n] = "socket closed"  # never sent: the server had closed this socket

    def _senders(self):
        """Round robin over rooms, and over each room's members in turn."""
        rooms = list(self.members.values())
        turn = 0
        while True:
            for members in rooms:
                yield members[turn % len(members)]
            turn += 1

    async def run_step(self, step: int, deliveries_per_s: int, duration: float) -> Step:
        members_per_room = sum(len(m) for m in self.members.values()) / max(1, len(self.members))
        msg_rate = deliveries_per_s / members_per_room
        total = max(1, round(msg_rate * duration))
        first = len(self.t_send)
        self.step = step
        senders = self._senders()
        cpu0, own0 = self._server_cpu(), _own_cpu_seconds()
        wall0 = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - wall0) * msg_rate) + 1)
            while sent < due:
                await self._send(step, next(senders))
                sent += 1
            if sent < total:
                wait = wall0 + sent / msg_rate - time.perf_counter()
                await asyncio.sleep(max(0.0, wait))
        send_seconds = time.perf_counter() - wall0
        await self._drain(first, self.spec.drain)
        wall = time.perf_counter() - wall0
        cpu1, own1 = self._server_cpu(), _own_cpu_seconds()
        result = self._summarise(step, deliveries_per_s, duration, first, send_seconds)
        result.generator_cpu = round((own1 - own0) / wall, 3)
        if cpu0 is not None:
            result.cpu_by_process, rest = core_shares(cpu0, cpu1, wall)
            result.server_cpu = round(sum(result.cpu_by_process.values()), 3)
            result.server_core_others, result.server_core_irq = rest["others"], rest["irq"]
            result.server_core_steal = rest["steal"]
            spent = sum(cpu_between(cpu0[0][name], cpu1[0][name]) for name in cpu0[0])
            result.server_cpu_seconds = round(spent, 3)
            if result.delivered:
                result.cpu_us_per_delivery = round(spent / result.delivered * 1e6, 1)
        return result

    def _server_cpu(self) -> CoreSnapshot | None:
        if not self.spec.watch_pids:
            return None
        return core_snapshot(self.spec.watch_pids, self.spec.server_cpu)

    def _expected(self, n: int) -> int:
        answer = self.answer[n]
        if answer is not None and answer != "accepted":
            return 0  # refused with an error: nobody should get it
        return len(self.members[self.room_of[n]])

    async def _drain(self, first: int, timeout: float) -> None:
        """Wait until every expected delivery of messages ``first``.. arrived, or ``timeout``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            last = len(self.t_send)
            complete = all(self.received[n] >= self._expected(n) for n in range(first, last))
            answered = self.spec.protocol != PRODUCT or all(self.answer[n] is not None for n in range(first, last))
            if complete and answered:
                return
            await asyncio.sleep(0.02)

    def _summarise(self, step: int, offered: int, duration: float, first: int, send_seconds: float) -> Step:
        ns = range(first, len(self.t_send))
        accepted = unanswered = refused_but_delivered = expected = delivered = 0
        refused: Counter = Counter()
        for n in ns:
            answer = self.answer[n]
            if answer == "accepted":
                accepted += 1
            elif answer is None:
                unanswered += 1
            else:
                refused[answer] += 1
                if self.received[n]:
                    refused_but_delivered += 1
            wanted = self._expected(n)
            expected += wanted
            delivered += min(self.received[n], wanted)
        latencies = sorted(self.latencies.get(step, []))
        accepts = sorted(self.accept_latencies.get(step, []))
        with_attachment = sorted(self.attachment_latencies.get(step, []))
        text_only = sorted(self.text_latencies.get(step, []))
        return Step(
            offered=offered,
            duration=duration,
            sent=len(ns),
            accepted=accepted,
            refused=dict(refused),
            refused_but_delivered=refused_but_delivered,
            unanswered=unanswered,
            expected=expected,
            delivered=delivered,
            lost=expected - delivered,
            duplicates=self.duplicates[step],
            out_of_order=self.out_of_order[step],
            closed_by_server=dict(self.closed_by_server.get(step, {})),
            delivered_per_s=round(delivered / max(send_seconds, duration), 1),
            p50_ms=_round(percentile(latencies, 50)),
            p99_ms=_round(percentile(latencies, 99)),
            max_ms=_round(latencies[-1] if latencies else None),
            accept_p50_ms=_round(percentile(accepts, 50)),
            accept_p99_ms=_round(percentile(accepts, 99)),
            send_seconds=round(send_seconds, 3),
            attachment_sent=sum(1 for n in ns if n in self.with_attachment),
            attachment_p50_ms=_round(percentile(with_attachment, 50)),
            attachment_p99_ms=_round(percentile(with_attachment, 99)),
            text_p50_ms=_round(percentile(text_only, 50)) if with_attachment else None,
            text_p99_ms=_round(percentile(text_only, 99)) if with_attachment else None,
        )

    async def warm_up(self) -> float:
        """One message per room, waited for by every member: the whole path is up and subscribed."""
        started = time.perf_counter()
        first = len(self.t_send)
        for members in self.members.values():
            await self._send(-1, members[0])
        await self._drain(first, self.spec.warmup_timeout)
        missing = sum(self._expected(n) - self.received[n] for n in range(first, len(self.t_send)))
        if missing:
            raise RuntimeError(f"warm-up: {missing} deliveries missing after {self.spec.warmup_timeout} s")
        return time.perf_counter() - started

    def accepted_ids(self) -> dict:
        accepted: dict = {}
        for n, cmid in enumerate(self.cmid_of):
            if cmid is not None and self.answer[n] == "accepted":
                accepted.setdefault(str(self.room_of[n]), []).append(cmid)
        return accepted


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def open_socket(protocol: str, url: str, client: Client):
    if protocol == PRODUCT:
        return await connect(url, additional_headers={"Authorization": f"Token {client.token}"}, **CLIENT_OPTIONS)
    # The tutorial sits behind AllowedHostsOriginValidator: a browser-like Origin is required.
    origin = "http://" + url.split("://", 1)[1].split("/", 1)[0]
    return await connect(url, origin=origin, **CLIENT_OPTIONS)


async def fanout(spec: FanoutSpec, progress=None, warmed=None) -> FanoutResult:
    """Run every step of ``spec``; stop after two steps in a row that miss the p99 limit or lose.

    ``warmed()`` is called once every socket is connected and the path is warm, ``progress(step)``
    after each step.
    """
    run = Fanout(spec)
    await run.connect()
    if run.connect_failures:
        await run.close()
        raise RuntimeError(f"{run.connect_failures} of {len(spec.clients)} sockets could not connect")
    try:
        warmup = await run.warm_up()
        if warmed:
            warmed()
        steps = []
        for index, rate in enumerate(spec.rates):
            step = await run.run_step(index, rate, spec.duration)
            steps.append(step)
            if progress:
                progress(step)
            # Two failing steps in a row end the sweep: one can be a blip of a shared machine.
            if spec.stop_on_fail and len(steps) >= 2 and not any(s.ok(spec.p99_limit_ms) for s in steps[-2:]):
                break
    finally:
        await run.close()
    return FanoutResult(
        protocol=spec.protocol,
        rooms=len(run.members),
        clients=len(run.sockets),
        steps=steps,
        accepted=run.accepted_ids(),
        warmup_seconds=round(warmup, 2),
    )


# -- idle sockets (S4) --------------------------------------------------------------------------------
async def hold_idle(protocol: str, url: str, clients: list[Client], ready, release) -> dict:
    """Open every socket (in batches), report, hold them until ``release`` is set, close."""
    spec = FanoutSpec(protocol=protocol, url=url, clients=clients, rates=[])
    run = Fanout(spec)
    await run.connect()
    await asyncio.sleep(1.0)
    still_open = sum(1 for s in run.sockets if s.ws.state.name == "OPEN")
    info = {"opened": len(run.sockets), "open_after_1s": still_open, "failures": run.connect_failures}
    await ready(info)
    await release.wait()
    await run.close()
    return info


# -- everyone reconnecting at once (S5) ----------------------------------------------------------------
@dataclass
class ReconnectSpec:
    protocol: str
    url: str
    clients: list[Client]
    # product: room -> seq the clients last saw, and room -> the room's last seq (what "whole" is)
    last_seen: dict = field(default_factory=dict)
    last_seq: dict = field(default_factory=dict)
    timeout: float = 30.0


@dataclass
class ReconnectResult:
    clients: int
    accepted: int = 0
    whole: int = 0
    all_whole_seconds: float | None = None
    p50_seconds: float | None = None
    p99_seconds: float | None = None
    failures: dict = field(default_factory=dict)


async def reconnect_storm(spec: ReconnectSpec) -> ReconnectResult:
    """Every client connects at the same instant; how long until each one is whole?

    Product: whole = ``sync`` answered with exactly the missed seqs, then ``sync.done``.
    Tutorial (no history): whole = its socket stayed open and received a message sent to its
    room once everyone had connected.
    """
    result = ReconnectResult(clients=len(spec.clients))
    failures: Counter = Counter()
    done_at: list[float] = []
    sockets: list = [None] * len(spec.clients)
    t0 = time.perf_counter()

    async def product_client(i: int, client: Client) -> None:
        try:
            ws = await open_socket(PRODUCT, spec.url, client)
        except Exception as exc:  # noqa: BLE001 - every way of failing is counted and reported
            failures[_failure(exc)] += 1
            return
        sockets[i] = ws
        result.accepted += 1
        room = str(client.room)
        await ws.send(json.dumps({"type": "sync", "rooms": {room: spec.last_seen[room]}, "req": "s"}))
        seqs = []
        try:
            async for text in ws:
                data = json.loads(text)
                if data.get("type") == "message.new" and str(data["message"]["room"]) == room:
                    seqs.append(data["message"]["seq"])
                elif data.get("type") in ("sync.done", "sync.gap", "error"):
                    if data["type"] != "sync.done":
                        failures[f"{data['type']} {data.get('code', '')}".strip()] += 1
                        return
                    break
        except websockets.ConnectionClosed as exc:
            failures[_failure(exc)] += 1
            return
        if seqs == list(range(spec.last_seen[room] + 1, spec.last_seq[room] + 1)):
            result.whole += 1
            done_at.append(time.perf_counter() - t0)
        else:
            failures["incomplete replay"] += 1

    async def tutorial_client(i: int, client: Client) -> None:
        url = f"{spec.url.rstrip('/')}/{client.room}/"
        try:
            sockets[i] = await open_socket(TUTORIAL, url, client)
        except Exception as exc:  # noqa: BLE001
            failures[_failure(exc)] += 1
            return
        result.accepted += 1

    runner = product_client if spec.protocol == PRODUCT else tutorial_client
    try:
        await asyncio.wait_for(asyncio.gather(*(runner(i, c) for i, c in enumerate(spec.clients))), spec.timeout)
    except TimeoutError:
        failures["timeout"] += 1
    if spec.protocol == TUTORIAL:
        await _tutorial_probe(spec, sockets, t0, done_at, failures, result)
    await asyncio.gather(*(ws.close() for ws in sockets if ws is not None), return_exceptions=True)
    done_at.sort()
    if result.whole == result.clients and done_at:
        result.all_whole_seconds = round(done_at[-1], 3)
    result.p50_seconds = _round(percentile(done_at, 50))
    result.p99_seconds = _round(percentile(done_at, 99))
    result.failures = dict(failures)
    return result


async def _tutorial_probe(spec, sockets, t0, done_at, failures, result) -> None:
    by_room: dict = {}
    for i, ws in enumerate(sockets):
        if ws is not None:
            by_room.setdefault(spec.clients[i].room, []).append(ws)
    waiting = {}
    loop = asyncio.get_running_loop()

    async def await_probe(ws, probe: str):
        try:
            while True:
                data = json.loads(await ws.recv())
                if data.get("message") == probe:
                    return time.perf_counter() - t0
        except websockets.ConnectionClosed as exc:
            failures[_failure(exc)] += 1
            return None

    for room, members in by_room.items():
        probe = f"probe {room}"
        for ws in members:
            waiting[loop.create_task(await_probe(ws, probe))] = ws
        try:
            await members[0].send(json.dumps({"message": probe}))
        except websockets.ConnectionClosed:
            pass
    if not waiting:
        return
    finished, pending = await asyncio.wait(waiting, timeout=10)
    for task in pending:
        task.cancel()
        failures["no probe"] += 1
    for task in finished:
        if task.result() is not None:
            result.whole += 1
            done_at.append(task.result())


def _failure(exc: BaseException) -> str:
    if isinstance(exc, websockets.InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, websockets.ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd else "none"
        return f"closed {code}"
    return type(exc).__name__


# -- command line: python -m bench.loadgen SPEC.json OUT.json -------------------------------------------
def _clients(raw: list[dict]) -> list[Client]:
    return [Client(**c) for c in raw]


async def _main(spec_path: Path, out_path: Path) -> None:
    raw = json.loads(spec_path.read_text())
    mode = raw.pop("mode")
    raw["clients"] = _clients(raw["clients"])
    if mode == "fanout":

        def progress(step: Step) -> None:
            print("STEP " + json.dumps(asdict(step)), flush=True)

        def warmed() -> None:
            print("WARM", flush=True)

        result = asdict(await fanout(FanoutSpec(**raw), progress, warmed))
    elif mode == "reconnect":
        result = asdict(await reconnect_storm(ReconnectSpec(**raw)))
    elif mode == "idle":
        release = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), release.set)

        async def ready(info: dict) -> None:
            print("READY " + json.dumps(info), flush=True)

        result = await hold_idle(raw["protocol"], raw["url"], raw["clients"], ready, release)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    out_path.write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.loadgen SPEC.json OUT.json")
    asyncio.run(_main(Path(sys.argv[1]), Path(sys.argv[2])))
