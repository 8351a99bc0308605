"""`WEB_CONCURRENCY=N make run`: N daphne processes serve one listening socket (issue 22).

The supervisor binds the port and each web process accepts on it (daphne ``--fd``); which process
serves a connection is read from /proc (the process holding its server side).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import uuid

import psutil
import websockets

from devstack.__main__ import process_commands
from devstack.stack import run_argv, run_env
from tests.conftest import ROOT

from .support import Run, make_chat


def _web_pids(run: Run) -> dict[str, int]:
    """The latest pid the supervisor printed for each web process, by name."""
    return {
        name: int(pid) for name, pid in re.findall(r"^(web(?::\d+)?)\s+\| started \(pid (\d+)\)", run.output(), re.M)
    }


def _server_pid(port: int, client_port: int, pids: list[int]) -> int | None:
    """The web process holding the server side of the connection from ``client_port``."""
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections("tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and c.laddr.port == port and c.raddr.port == client_port for c in connections):
            return pid
    return None


class Socket:
    """A chat WebSocket and every frame it received."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.frames: list[dict] = []
        self.pid: int | None = None

    async def open(self, pids: list[int]) -> Socket:
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/ws/chat/", additional_headers={"Authorization": f"Token {self.token}"}
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())
        self.pid = _server_pid(self.port, self.ws.local_address[1], pids)
        return self

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append(json.loads(text))
        except websockets.ConnectionClosed:
            pass

    async def send(self, room: int) -> str:
        cid = str(uuid.uuid4())
        frame = {"type": "message.send", "room": room, "client_msg_id": cid, "body": "hello", "req": cid}
        await self.ws.send(json.dumps(frame))
        return cid

    def got(self, cid: str) -> bool:
        return any(f.get("type") == "message.new" and f["message"].get("client_msg_id") == cid for f in self.frames)

    async def wait_for(self, cid: str, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while not self.got(cid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.got(cid)

    async def closed(self, timeout: float = 30) -> int | None:
        await asyncio.wait_for(self.reader, timeout)
        return self.ws.close_code


async def _spread(port: int, token: str, pids: list[int], *, batch: int = 8, most: int = 64) -> list[Socket]:
    """Open sockets (``batch`` at a time, as a page of tabs would) until each of ``pids`` serves one."""
    sockets: list[Socket] = []
    while len(sockets) < most and not set(pids) <= {s.pid for s in sockets}:
        sockets += await asyncio.gather(*(Socket(port, token).open(pids) for _ in range(batch)))
    return sockets


def test_web_concurrency_names_the_web_processes_and_hands_them_the_socket():
    commands = process_commands("8000", web_fd=5, concurrency=3)
    webs = [name for name in commands if name.startswith("web")]
    assert webs == ["web", "web:2", "web:3"]
    assert all(commands[name][-3:] == ["--fd", "5", "chatproject.asgi:application"] for name in webs)
    assert "-p" in process_commands("8000")["web"]  # one process binds the port itself, as before


def test_an_invalid_web_concurrency_is_refused_before_anything_starts(tmp_path):
    for value in ("0", "two", "-1"):
        done = subprocess.run(
            run_argv(tmp_path / "stack"), cwd=ROOT, env=run_env(1, WEB_CONCURRENCY=value),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2
        assert f"WEB_CONCURRENCY must be a positive integer (the number of web processes), not '{value}'" in done.stderr
    assert not (tmp_path / "stack").exists()


def test_two_web_processes_share_the_port_fan_out_to_each_other_and_survive_a_kill(tmp_path):
    # Only web and persist (CI has 2 cores); the stop's drain then need not wait for the index consumer.
    run = Run(tmp_path / "stack", only="web,persist", WEB_CONCURRENCY="2", DRAIN_TIMEOUT_S="2").start()
    try:
        run.wait_ready()
        pids = _web_pids(run)
        assert set(pids) == {"web", "web:2"}, run.tail()
        port = run.port
        tokens, (room,) = make_chat(port, users=2, rooms=1)
        asyncio.run(_chat_across_and_kill(run, port, tokens, room, pids))
    finally:
        run.kill()
    output = run.output()
    assert "stopping web, web:2 first: no new sends" in output
    assert re.search(r"^web:2\s+\| stopped \(code 0\)", output, re.M)


async def _chat_across_and_kill(run: Run, port: int, tokens: list[str], room: int, pids: dict[str, int]) -> None:
    both = list(pids.values())
    # The kernel hands connections to both processes.
    readers = await _spread(port, tokens[1], both)
    assert {s.pid for s in readers} == set(both), [s.pid for s in readers]
    sender = await Socket(port, tokens[0]).open(both)
    other = next(s for s in readers if s.pid != sender.pid)
    cid = await sender.send(room)
    assert await other.wait_for(cid), "a message sent on one process did not reach a socket on the other"

    # kill -9 of one web process: the other keeps serving the port, the supervisor restarts it.
    killed = pids["web:2"]
    survivor = pids["web"]
    os.kill(killed, signal.SIGKILL)
    for _ in range(20):
        body = run.readyz()
        assert body and body["status"] == "ready", run.tail()
    run.wait_output("web:2    | exited with code -9; restarting")
    kept = [s for s in readers if s.pid == survivor]
    fresh = await Socket(port, tokens[0]).open(both)
    cid = await fresh.send(room)
    assert all([await s.wait_for(cid) for s in kept]), "the surviving process stopped delivering"
    assert all(s.ws.close_code is None for s in kept)

    deadline = time.monotonic() + 60
    while _web_pids(run)["web:2"] == killed:
        assert time.monotonic() < deadline, run.tail()
        await asyncio.sleep(0.2)
    restarted = _web_pids(run)["web:2"]
    while len(re.findall(r"^web:2\s+\|.*Listening on TCP address", run.output(), re.M)) < 2:
        assert time.monotonic() < deadline, run.tail()  # the restarted process adopts the socket
        await asyncio.sleep(0.2)
    # Both processes serve again, and a stop closes the sockets of each with 4503 before it exits.
    serving = await _spread(port, tokens[1], [survivor, restarted])
    assert {s.pid for s in serving} == {survivor, restarted}
    assert run.stop() == 0, run.tail()
    codes = {s.pid: await s.closed() for s in serving}
    assert set(codes.values()) == {4503}, codes
