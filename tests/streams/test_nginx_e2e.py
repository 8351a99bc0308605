"""docker/nginx.conf tested for real: Debian's nginx, run from that file, in front of two daphnes.

The configuration nginx runs is generated from the shipped file, read at test time, with only what
names Compose's hosts and port 80 substituted (see ``proxied_conf``), and wrapped the way the
nginx image's own /etc/nginx/nginx.conf includes it from conf.d/. So the WebSocket upgrade, the
headers, timeouts and locations under test are the ones deployed. Behind it run two web
processes of the test and a persist consumer, on Kafka topics of their own (as ``own_server``).

nginx is /usr/sbin/nginx, installed with apt-get when missing (as root, once per machine, under a
file lock); where it cannot be, the tests are skipped saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
from django.conf import settings

from devstack.stack import port_lock
from tests.conftest import ROOT, ServerProcesses, free_port, wait_for_port
from tests.support import in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

NGINX = Path("/usr/sbin/nginx")
SHIPPED_CONF = ROOT / "docker" / "nginx.conf"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "chat-tests-nginx-install.lock"
POLICY_RC = Path("/usr/sbin/policy-rc.d")


# --- nginx: found, or installed once per machine ----------------------------------------------


def _install_nginx() -> str | None:
    """Make sure /usr/sbin/nginx is there; return why it cannot be, or None when it is."""
    if NGINX.exists():
        return None
    if os.geteuid() != 0:
        return f"{NGINX} is missing and installing it with apt-get needs root"
    apt = shutil.which("apt-get")
    if apt is None:
        return f"{NGINX} is missing and there is no apt-get to install it"
    # pytest-xdist workers and parallel runs on the machine: one apt-get at a time, and the ones
    # that waited find nginx installed.
    with open(INSTALL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return None if NGINX.exists() else _apt_install(apt)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _apt_install(apt: str) -> str | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Debian's package starts the system nginx on port 80 after installing it; the tests run their
    # own. policy-rc.d answering 101 is Debian's way to install a service without starting it.
    made_policy = not POLICY_RC.exists()
    if made_policy:
        POLICY_RC.write_text(
            "#!/bin/sh\n# tests/streams/test_nginx_e2e.py: start no service while installing\nexit 101\n"
        )
        POLICY_RC.chmod(0o755)
    try:
        failure = ""
        # A machine whose package lists were never fetched knows no nginx: update once and retry.
        for step in ([[apt, "install", "-y", "nginx"]], [[apt, "update"], [apt, "install", "-y", "nginx"]]):
            for argv in step:
                try:
                    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
                except subprocess.TimeoutExpired:
                    return f"`{' '.join(argv)}` did not finish in 240 s"
                if done.returncode != 0:
                    tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
                    failure = f"`{' '.join(argv)}` failed ({done.returncode}): {tail}"
                    break
            if NGINX.exists():
                return None
        return failure or f"apt-get install -y nginx succeeded but {NGINX} is missing"
    finally:
        if made_policy:
            POLICY_RC.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def nginx_binary() -> Path:
    reason = _install_nginx()
    if reason is not None:
        pytest.skip(f"no nginx: {reason}")
    return NGINX


# --- the configuration: docker/nginx.conf with the test's addresses ----------------------------


def _substitute(pattern: str, replace, text: str, what: str, *, expected: int = 1) -> str:
    text, count = re.subn(pattern, replace, text, flags=re.MULTILINE)
    if count != expected:
        raise AssertionError(
            f"docker/nginx.conf has {count} {what}, where this test substitutes {expected}: adapt proxied_conf()"
        )
    return text


def proxied_conf(shipped: str, *, workdir: Path, listen: int, upstreams: list[int], bucket: int) -> str:
    """The shipped configuration as nginx runs it here; every change to it is in this function.

    - ``listen 80`` becomes ``listen 127.0.0.1:<listen>`` (an unprivileged port of the test);
    - each upstream's one ``server web:8000 <parameters>`` (the round robin's and SockJS's sticky
      one) becomes one line per test web process, with the same parameters (Compose's DNS returns
      both replicas under that one name);
    - ``http://minio:9000`` points at a closed local port: nginx resolves every proxy_pass host at
      start and refuses to start without it; the bucket's location is not under test here.

    Around it, what the nginx image's /etc/nginx/nginx.conf puts around conf.d/default.conf, with
    this test's pid, logs and temporary paths, one worker process (the image says ``auto``: one
    keeps the round robin over the two upstreams deterministic), and no daemon.
    """
    body = _substitute(
        r"^(\s*)listen\s+80\s*;", lambda m: f"{m[1]}listen 127.0.0.1:{listen};", shipped, "`listen 80;` lines"
    )
    body = _substitute(
        r"^(\s*)server\s+web:8000\b([^;]*);",
        lambda m: "\n".join(f"{m[1]}server 127.0.0.1:{port}{m[2]};" for port in upstreams),
        body,
        "`server web:8000 ...;` upstream lines",
        expected=2,
    )
    body = body.replace("http://minio:9000", f"http://127.0.0.1:{bucket}")
    return f"""\
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;

events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {workdir}/access.log;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {workdir}/client_body_temp;
    proxy_temp_path {workdir}/proxy_temp;
    fastcgi_temp_path {workdir}/fastcgi_temp;
    uwsgi_temp_path {workdir}/uwsgi_temp;
    scgi_temp_path {workdir}/scgi_temp;

# ---- docker/nginx.conf (conf.d/default.conf in the image), addresses substituted ----
{body}
}}
"""


class Nginx:
    """nginx in the foreground on a port of its own, its files in a directory of its own."""

    def __init__(self, binary: Path, *, upstreams: list[int], log_dir: Path) -> None:
        self.binary = binary
        self.upstreams = upstreams
        # Not under pytest's tmp_path (mode 0700): nginx started as root runs its workers as
        # `nobody`, who writes proxied bodies larger than its buffers under the temp paths.
        self.workdir = Path(tempfile.mkdtemp(prefix="chat-nginx-"))
        self.workdir.chmod(0o755)
        self.log_dir = log_dir
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def start(self) -> None:
        conf = self.workdir / "nginx.conf"
        argv = [str(self.binary), "-p", str(self.workdir), "-e", str(self.workdir / "error.log"), "-c", str(conf)]
        with port_lock():
            self.port = free_port()
            shipped = SHIPPED_CONF.read_text()
            conf.write_text(
                proxied_conf(
                    shipped, workdir=self.workdir, listen=self.port, upstreams=self.upstreams, bucket=free_port()
                )
            )
            checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, f"nginx -t refused the generated configuration:\n{checked.stderr}"
            self.process = subprocess.Popen([*argv, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
            wait_for_port(self.port, process=self.process)

    def access_log(self) -> list[str]:
        path = self.workdir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        # Kept beside the servers' logs for a failure's post-mortem.
        for name in ("nginx.conf", "error.log", "access.log"):
            with contextlib.suppress(OSError):
                shutil.copy(self.workdir / name, self.log_dir / f"nginx-{name}")
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Proxied:
    servers: ServerProcesses
    nginx: Nginx
    webs: dict[str, int]  # web process name -> its port

    def holders(self, user_id: int) -> set[str]:
        """Which of the web processes hold a socket of the user, from the socket registry in Redis.

        Each entry is named ``<pid>-...`` by the process that holds it (streams.realtime.limits);
        a killed process's entries stay until they lapse, so only live processes are counted.
        """
        import redis

        from streams.realtime.limits import PREFIX

        pids = {
            str(p.pid): name for name, p in self.servers.processes.items() if name in self.webs and p.poll() is None
        }
        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            entries = client.zrange(f"{PREFIX}sockets:{user_id}", 0, -1)
        finally:
            client.close()
        return {pids[pid] for pid in (e.decode().split("-", 1)[0] for e in entries) if pid in pids}


@pytest.fixture
def behind_nginx(server, tmp_path, nginx_binary):
    """Two web processes and a persist consumer of the test's own, with nginx in front of both."""
    from django.test import override_settings

    from streams.pipeline import kafka

    prefix = f"nginx-{uuid.uuid4().hex[:8]}-"
    with override_settings(KAFKA_TOPIC_PREFIX=prefix):
        kafka.ensure_topics()
    # NUM_PROXIES as docker-compose.yml sets it behind this nginx.
    servers = ServerProcesses({**server.env, "KAFKA_TOPIC_PREFIX": prefix, "NUM_PROXIES": "1"}, tmp_path)
    nginx = None
    try:
        servers.start("web")
        second = free_port()
        servers.start("web:2", port=second)
        servers.start("persist")
        webs = {"web": servers.port, "web:2": second}
        nginx = Nginx(nginx_binary, upstreams=list(webs.values()), log_dir=tmp_path)
        nginx.start()
        yield Proxied(servers=servers, nginx=nginx, webs=webs)
    finally:
        if nginx is not None:
            nginx.stop()
        servers.stop_all()


# --- a client as docs/protocol.md asks ---------------------------------------------------------


async def until(predicate, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


class Member:
    """One user's chat client on one room, following docs/protocol.md "Delivery".

    Each typed message stays pending until its own ``message.new`` arrives; messages are sent one
    at a time, the next once the previous is accepted; a lost socket is reconnected (with
    back-off), then ``sync`` from the last contiguous seq, then every pending message is sent
    again with its same client_msg_id.
    """

    def __init__(self, url: str, user, key: str, room: int) -> None:
        self.url, self.user, self.key, self.room = url, user, key, room
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.lost = True
        self.connections = 0
        self.close_codes: list[int | None] = []  # of each socket lost
        self.typed: list[str] = []  # client_msg_ids in the order typed
        self.pending: dict[str, str] = {}  # client_msg_id -> body, until stored
        self.answered: set[str] = set()  # accepted on the current socket
        self.acknowledged: set[str] = set()  # ever answered message.accepted
        self.heard: dict[int, dict] = {}  # seq -> message, each kept once
        self.live: list[dict] = []  # every message.new, in arrival order
        self.errors: list[dict] = []
        self.syncs: set[str] = set()

    @property
    def name(self) -> str:
        return self.user.username

    async def connect(self) -> None:
        for attempt in range(1, 60):
            try:
                self.ws = await websockets.connect(
                    self.url, additional_headers={"Authorization": f"Token {self.key}"}, open_timeout=5
                )
                break
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                failure = exc
                await asyncio.sleep(min(0.05 * attempt, 0.5))
        else:
            raise AssertionError(f"{self.name} could not open a socket through nginx: {failure!r}")
        self.lost = False
        self.connections += 1
        self.answered.clear()
        self.reader = asyncio.get_running_loop().create_task(self._read(self.ws))
        await self._sync()

    def contiguous(self) -> int:
        seq = 0
        while seq + 1 in self.heard:
            seq += 1
        return seq

    async def _sync(self) -> None:
        req = f"sync-{uuid.uuid4().hex[:8]}"
        ws = self.ws
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps({"type": "sync", "req": req, "rooms": {str(self.room): self.contiguous()}}))
            await until(lambda: req in self.syncs or ws is not self.ws or self.lost, f"{self.name}: sync.done")

    async def _read(self, ws) -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                kind = frame["type"]
                if kind == "message.new" and frame["message"]["room"] == self.room:
                    message = frame["message"]
                    self.live.append(message)
                    self.heard.setdefault(message["seq"], message)
                    if message["sender"]["id"] == self.user.pk:
                        self.pending.pop(message["client_msg_id"], None)
                elif kind == "message.accepted":
                    self.answered.add(frame["client_msg_id"])
                    self.acknowledged.add(frame["client_msg_id"])
                elif kind == "sync.done":
                    self.syncs.add(frame["req"])
                elif kind in ("error", "sync.gap"):
                    self.errors.append(frame)
        except websockets.ConnectionClosed:
            pass
        if ws is self.ws:
            self.close_codes.append(ws.close_code)
            self.lost = True

    async def type(self, body: str) -> None:
        """The user writes a message: it is sent, and this returns once the broker accepted it."""
        client_msg_id = str(uuid.uuid4())
        self.typed.append(client_msg_id)
        self.pending[client_msg_id] = body
        await self.flush()

    async def flush(self) -> None:
        """Send every pending message not answered on this socket, one at a time; reconnect when lost."""
        while True:
            assert not self.errors, f"{self.name} was answered {self.errors}"
            if self.lost:
                await self.connect()
                continue
            waiting = [c for c in self.pending if c not in self.answered]
            if not waiting:
                return
            client_msg_id, ws = waiting[0], self.ws
            frame = {"type": "message.send", "room": self.room, "client_msg_id": client_msg_id}
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(json.dumps({**frame, "body": self.pending[client_msg_id], "req": client_msg_id}))
            await until(
                lambda c=client_msg_id: c in self.answered or c not in self.pending or self.lost or self.errors,
                f"{self.name}: message.accepted",
            )

    async def settle(self) -> None:
        """Wait until every message typed is stored (heard back), reconnecting if the socket is lost."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while self.pending or self.lost:
            assert loop.time() < deadline, f"{self.name}: still pending {list(self.pending.values())}"
            await self.flush()
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            await ws.close()
        if self.reader is not None:
            await self.reader


def _get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def stored_over_rest(base: str, room: int, key: str) -> list[dict]:
    """The room's whole history as a client reads it over REST (through nginx)."""
    messages, after = [], 0
    while True:
        page = await asyncio.to_thread(_get_json, f"{base}/api/v1/rooms/{room}/messages/?after={after}&limit=200", key)
        messages += page["messages"]
        if not page["has_newer"]:
            return messages
        after = page["messages"][-1]["seq"]


def texts(messages) -> list[tuple[int, int, str, str]]:
    """(seq, sender id, client_msg_id, body) of the people's messages (not the system lines), by seq."""
    return sorted(
        (m["seq"], m["sender"]["id"], str(m["client_msg_id"]), m["body"])
        for m in messages
        if m.get("kind", "text") == "text"
    )


async def members_of(proxied: Proxied, users, room) -> list[Member]:
    """Each user connected through nginx, one after the other (nginx alternates the two upstreams)."""
    members = []
    for user in users:
        member = Member(proxied.nginx.ws, user, await in_thread(token_for, user), room.pk)
        await member.connect()
        await until(lambda m=member: proxied.holders(m.user.pk), f"{member.name}'s socket registered")
        members.append(member)
    return members


# --- the tests -------------------------------------------------------------------------------


async def test_two_users_chat_through_nginx_each_on_one_of_the_two_app_servers(behind_nginx, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user("alice"), make_user("bob")])
    room = await in_thread(make_room, owner=alice, members=[bob], name="through nginx")
    members = await members_of(behind_nginx, [alice, bob], room)

    # The upgrade went through nginx to both app servers: one socket on each.
    held = [behind_nginx.holders(m.user.pk) for m in members]
    assert sorted(map(sorted, held)) == [["web"], ["web:2"]]

    async def chat(member: Member) -> None:
        for i in range(15):
            await member.type(f"{member.name} says {i}")

    await asyncio.gather(*(chat(m) for m in members))
    for member in members:
        await member.settle()
    for member in members:
        await until(lambda m=member: len(texts(m.heard.values())) == 30, f"{member.name} hears all 30 messages")

    stored = texts(await stored_over_rest(behind_nginx.nginx.http, room.pk, members[0].key))
    assert len(stored) == 30
    for member in members:
        live = [m for m in member.live if m.get("kind", "text") == "text"]
        # Each message arrives once, in the room's order, and as stored: across the two servers.
        assert [m["seq"] for m in live] == sorted({m["seq"] for m in live})
        assert texts(live) == stored
        assert member.close_codes == [] and member.connections == 1
    for user in (alice, bob):
        said = [body for _, sender, _, body in stored if sender == user.pk]
        assert said == [f"{user.username} says {i}" for i in range(15)]

    for member in members:
        await member.close()
    # nginx answered both handshakes 101 (it logs a WebSocket request once it ends).
    await until(
        lambda: sum('"GET /ws/chat/ HTTP/1.1" 101 ' in line for line in behind_nginx.nginx.access_log()) == 2,
        "nginx logs two upgraded sockets",
    )


async def test_a_killed_app_server_costs_its_clients_a_reconnect_through_nginx_and_loses_nothing(
    behind_nginx, make_user, make_room
):
    users = await in_thread(lambda: [make_user() for _ in range(4)])
    room = await in_thread(make_room, owner=users[0], members=users[1:], name="survivors")
    members = await members_of(behind_nginx, users, room)
    on = {m.name: behind_nginx.holders(m.user.pk) for m in members}
    assert all(len(servers) == 1 for servers in on.values()), on
    victim = next(iter(on[members[0].name]))
    (survivor,) = set(behind_nginx.webs) - {victim}
    cut = [m for m in members if on[m.name] == {victim}]
    spared = [m for m in members if on[m.name] == {survivor}]
    assert cut and spared, f"nginx sent every socket to one server: {on}"

    # Everyone says hello first, and sees it stored: the room's pipeline is up end to end.
    await asyncio.gather(*(m.type(f"{m.name} says hello") for m in members))
    for member in members:
        await member.settle()

    per_member = 30

    async def chat(member: Member) -> None:
        for i in range(per_member):
            await member.type(f"{member.name} says {i}")

    chatting = asyncio.gather(*(chat(m) for m in members))
    # Mid-conversation: a third of the messages accepted, the rest still to be typed.
    hello = len(members)
    await until(lambda: sum(len(m.acknowledged) for m in members) >= hello + len(members) * per_member // 3, "a third")
    behind_nginx.servers.stop(victim, sig=signal.SIGKILL)
    await chatting
    await until(lambda: all(m.close_codes for m in cut), "the killed server's clients see their sockets close")
    for member in members:
        await member.settle()

    # Those on the killed server saw their socket cut and came back through nginx, to the survivor;
    # the others never noticed.
    for member in cut:
        assert member.close_codes == [1006] and member.connections == 2, member.name
        assert behind_nginx.holders(member.user.pk) == {survivor}, member.name
    for member in spared:
        assert member.close_codes == [] and member.connections == 1, member.name

    # Stored: every message typed, once, each sender's in the order typed; every accepted one is there.
    stored = texts(await stored_over_rest(behind_nginx.nginx.http, room.pk, members[0].key))
    typed = [cid for m in members for cid in m.typed]
    assert sorted(cid for _, _, cid, _ in stored) == sorted(typed)
    acknowledged = set().union(*(m.acknowledged for m in members))
    assert acknowledged <= {cid for _, _, cid, _ in stored}
    for member in members:
        said = [body for _, sender, _, body in stored if sender == member.user.pk]
        assert said == [f"{member.name} says hello"] + [f"{member.name} says {i}" for i in range(per_member)]

    # Every client, after its `sync`, has the room whole and as stored.
    last = max(seq for seq, *_ in stored)
    for member in members:
        await until(lambda m=member: len(m.heard) >= last, f"{member.name} hears up to seq {last}")
        assert member.contiguous() == last, member.name
        assert texts(member.heard.values()) == stored, member.name
        assert member.errors == [], member.name
        await member.close()


async def test_stomp_clients_reach_the_app_servers_through_nginx(behind_nginx, make_user, make_room):
    """The seed's STOMP endpoint upgrades through nginx's /stomp/ location, and its messages flow."""
    from tests.stomp.client import StompClient

    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    url = behind_nginx.nginx.ws.replace("/ws/chat/", "/stomp/chat/websocket")
    clients = [await StompClient.connect(url, user) for user in (alice, bob)]
    try:
        destination = f"/sub/chat/room/{room.pk}"
        for client in clients:
            await client.subscribe(destination, "sub-0", receipt="subscribed")
            await client.wait_for(lambda c: c.of("RECEIPT"))
        for i, sender in enumerate(clients, start=1):  # one at a time: two servers, one order
            await sender.send_json("/pub/chat/message", {"roomId": room.pk, "message": f"hello {i}"})
            for client in clients:
                await client.wait_for(lambda c, i=i: len(c.messages(destination)) == i)
        for client in clients:
            assert [m["message"] for m in client.messages(destination)] == ["hello 1", "hello 2"]
    finally:
        for client in clients:
            await client.close()
