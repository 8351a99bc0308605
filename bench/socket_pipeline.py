"""Sends per second from one socket: pipelined (issue 23) against one in flight at a time.

    python -m devstack up --data /tmp/stack-x > /tmp/stack-x.log &    # services, then:
    env $(grep = /tmp/stack-x.log | xargs) python -m bench.socket_pipeline [--sends 2000] [--rounds 3] [--busy 20]

Starts, on the services named by DATABASE_URL, REDIS_URL and KAFKA_BOOTSTRAP_SERVERS (topics of
its own), one persist consumer and two daphne servers that differ only in
CHAT_SOCKET_MAX_IN_FLIGHT: 1, which is the server before pipelining (the socket's next frame was
read once the broker had answered the last), and the default. Each round, alternating, one socket
floods ``--sends`` message.send frames over two rooms (written without waiting) to each server,
and one socket sends one at a time (the next once the last was answered) to the pipelining one.
``--busy N`` keeps N other sockets sending one at a time on each server meanwhile. Prints
sends/s per mode (median of the rounds) and checks every answer came in the order sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup(busy: int) -> tuple[str, list[int], list[tuple[str, int]]]:
    """Migrate, then make the flooding user, its two rooms and the busy users' rooms."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from rooms.services import room_create_group

    call_command("migrate", verbosity=0)
    tag = uuid.uuid4().hex[:6]

    def user(name: str):
        u = get_user_model().objects.create_user(username=f"{name}-{tag}", password=uuid.uuid4().hex)
        return u, Token.objects.create(user=u).key

    flooder, key = user("flood")
    rooms = [room_create_group(owner=flooder, name=f"pipe{i}", member_ids=[]).pk for i in range(2)]
    others = []
    for i in range(busy):
        u, k = user(f"busy{i}")
        others.append((k, room_create_group(owner=u, name=f"busy{i}", member_ids=[]).pk))
    return key, rooms, others


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _wait_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


async def _connect(url: str, key: str):
    import websockets

    # No keepalive pings: a ping written behind a flood waits for the frames before it to be read,
    # and past the in-flight bound the server reads only as fast as the broker answers.
    return await websockets.connect(
        url, additional_headers={"Authorization": f"Token {key}"}, max_size=None, ping_interval=None
    )


def _frame(room: int, i: int) -> tuple[str, str]:
    msg_id = str(uuid.uuid4())
    text = json.dumps(
        {"type": "message.send", "room": room, "client_msg_id": msg_id, "body": f"pipe {i}", "req": msg_id}
    )
    return msg_id, text


async def _answers(ws, count: int) -> list[str]:
    """The req of each answer, in arrival order, until ``count`` arrived."""
    out = []
    while len(out) < count:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if "req" in frame:
            if frame["type"] != "message.accepted":
                raise RuntimeError(f"refused: {frame}")
            out.append(frame["req"])
    return out


async def flood(url: str, key: str, rooms: list[int], sends: int) -> float:
    """Write every send at once; sends/s until the last is answered. Checks the answers' order."""
    ws = await _connect(url, key)
    frames = [_frame(rooms[i % 2], i) for i in range(sends)]
    start = time.perf_counter()
    reading = asyncio.get_running_loop().create_task(_answers(ws, sends))
    for _msg_id, text in frames:
        await ws.send(text)
    order = await reading
    elapsed = time.perf_counter() - start
    await ws.close()
    if order != [m for m, _ in frames]:
        raise RuntimeError("answers out of order")
    return sends / elapsed


async def one_at_a_time(url: str, key: str, rooms: list[int], sends: int) -> float:
    ws = await _connect(url, key)
    start = time.perf_counter()
    for i in range(sends):
        msg_id, text = _frame(rooms[i % 2], i)
        await ws.send(text)
        if await _answers(ws, 1) != [msg_id]:
            raise RuntimeError("an answer to another frame")
    elapsed = time.perf_counter() - start
    await ws.close()
    return sends / elapsed


async def _busy(url: str, key: str, room: int, stop: asyncio.Event) -> None:
    ws = await _connect(url, key)
    i = 0
    try:
        while not stop.is_set():
            _msg_id, text = _frame(room, i)
            await ws.send(text)
            await _answers(ws, 1)
            i += 1
    finally:
        ws.transport.abort()


async def measure(servers: dict[str, str], key: str, rooms: list[int], others, args) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"before (1 in flight)": [], "one at a time": [], "pipelined": []}
    stop = asyncio.Event()
    busy = [
        asyncio.get_running_loop().create_task(_busy(url, k, room, stop))
        for url in servers.values()
        for k, room in others
    ]
    await asyncio.sleep(1.0 if busy else 0)
    try:
        for n in range(args.rounds):
            results["before (1 in flight)"].append(await flood(servers["before"], key, rooms, args.sends))
            results["pipelined"].append(await flood(servers["after"], key, rooms, args.sends))
            # One at a time costs a round trip per send: a tenth of the sends is enough to rate it.
            sends = max(50, args.sends // 10)
            results["one at a time"].append(await one_at_a_time(servers["after"], key, rooms, sends))
            print(f"round {n + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items()), flush=True)
    finally:
        stop.set()
        for task in busy:
            task.cancel()
        await asyncio.gather(*busy, return_exceptions=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.socket_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000, help="sends per flood (default 2000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="other sockets sending one at a time on each server")
    args = parser.parse_args(argv)

    prefix = f"pipe-{uuid.uuid4().hex[:6]}-"
    os.environ["KAFKA_TOPIC_PREFIX"] = prefix
    os.environ["RATE_LIMITS"] = "off"
    key, rooms, others = _setup(args.busy)
    from streams.pipeline import kafka

    kafka.ensure_topics()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{prefix.rstrip('-')}"
    logs.mkdir(exist_ok=True)
    from devstack.services import free_port

    processes = [_start([sys.executable, "manage.py", "consume", "persist"], env, logs / "persist.log")]
    servers = {}
    try:
        for name, in_flight in (("before", "1"), ("after", "")):
            port = free_port()
            server_env = {**env, "CHAT_SOCKET_MAX_IN_FLIGHT": in_flight} if in_flight else env
            argv = [sys.executable, "-m", "chatproject.serve", "-b", "127.0.0.1", "-p", str(port)]
            processes.append(_start([*argv, "chatproject.asgi:application"], server_env, logs / f"web-{name}.log"))
            _wait_port(port)
            servers[name] = f"ws://127.0.0.1:{port}/ws/chat/"
        results = asyncio.run(measure(servers, key, rooms, others, args))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    print(
        f"sends/s from one socket, median of {args.rounds} rounds ({args.sends} sends a flood, {args.busy} busy sockets):"
    )
    for name, values in results.items():
        print(f"  {name:22} {statistics.median(values):8,.0f}   ({', '.join(f'{v:,.0f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
