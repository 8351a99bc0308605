"""``python -m bench.ceiling --port N``: the bare ``websockets`` broadcast server, the bench's ceiling.

What a Python WebSocket chat server costs at the least: one asyncio process of the ``websockets``
library, rooms by path (``/ws/chat/<room>/``), every received ``{"message": ...}`` parsed and
sent as ``{"message": ...}`` to every socket of its room (the sender's included) with
``websockets.broadcast``, which writes each frame without a task per socket. No authentication,
no persistence, no broker: the load generator drives it with the tutorial's protocol (the same
payload and receipts), and the bench reports the other targets' CPU per delivery against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from websockets.asyncio.server import ServerConnection, broadcast, serve

rooms: dict[str, set[ServerConnection]] = {}


async def handler(ws: ServerConnection) -> None:
    """Join the room the path names; broadcast each message to it until the socket closes."""
    room = ws.request.path.strip("/").rsplit("/", 1)[-1]
    members = rooms.setdefault(room, set())
    members.add(ws)
    try:
        async for text in ws:
            try:
                body = json.loads(text)["message"]
            except (ValueError, KeyError, TypeError):
                continue  # not a chat message: ignored, as the tutorial's consumer would fail it
            broadcast(members, json.dumps({"message": body}))
    finally:
        members.discard(ws)
        if not members:
            rooms.pop(room, None)


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.cancel)
    # No compression and no keepalive pings, as the load generator's sockets; frames up to 1 MiB.
    async with serve(handler, host, port, compression=None, ping_interval=None, max_size=2**20):
        print(f"ceiling | listening on {host}:{port}", flush=True)
        try:
            await stop
        except asyncio.CancelledError:
            pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
