"""One STOMP session, whatever carries it (a raw WebSocket, SockJS over a WebSocket or XHR).

Thin like the JSON socket (chat_messages.consumers): parse a frame, authorise, call a service or
selector, format. A SEND to ``/pub/chat/message`` goes through ``message_send``, the same service
as REST (membership, mute, read-only room, validation, Kafka); room frames come from the process's
real-time hub, and each stored message (``message.new``) becomes a MESSAGE in the seed's shape.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async
from django.conf import settings
from redis.exceptions import RedisError

from accounts.ws_auth import socket_refusal, user_for_token
from chat_messages import services as message_services
from rooms import selectors as room_selectors
from streams import codec
from streams.errors import FORBIDDEN, INTERNAL, INVALID, NOT_MEMBER, RATE_LIMITED, UNAVAILABLE, ChatError
from streams.pipeline import kafka
from streams.realtime import limits
from streams.realtime.hub import get_hub, room_group, session_group, token_group, user_group
from streams.realtime.protocol import OP_CLOSE, OP_JOIN_ROOM, OP_LEAVE_ROOM, id_validate

from . import frames
from .frames import Frame, FrameError

log = logging.getLogger(__name__)

ROOM_DESTINATION = re.compile(r"/sub/chat/room/([1-9][0-9]{0,18})")
USER_DESTINATION = re.compile(r"/sub/user/([1-9][0-9]{0,18})")
SEND_MESSAGE = "/pub/chat/message"
SEND_ENTER = "/pub/chat/enter"
NEW_MESSAGE_PREFIX = '{"type":"message.new",'
ERROR_PREFIX = '{"type":"error",'
ENTER_FRAME = "stomp.enter"
# Derived client message ids: uuid5 in a namespace of our own, so no other id can collide.
CLIENT_MSG_NAMESPACE = uuid.UUID("0d8a52a6-54d1-4c1e-9a57-5f4a3c2b9e11")


def enter_group(room_id: int) -> str:
    """The hub group of the seed's enter broadcast (CHAT_STOMP_ENTER_BROADCAST): STOMP sessions only."""
    return f"stomp.room.{room_id}"


def _db(fn):
    return database_sync_to_async(fn, thread_sensitive=False)


def _heart_beat_setting() -> tuple[int, int]:
    return frames.heart_beat_parse(settings.CHAT_STOMP_HEART_BEAT)


class StompSession:
    """The protocol engine: bytes in through :meth:`received`, STOMP frames out through ``write``.

    ``write`` takes a batch of frame texts and writes them in order (one WebSocket message each,
    or one SockJS ``a[...]`` frame); ``close`` ends the transport. Both are the transport's.
    """

    def __init__(
        self,
        *,
        scope,
        session_id: str,
        write: Callable[[list[str]], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.scope = scope
        self.session_id = session_id
        self._write = write
        self._close = close
        self.parser = frames.Parser()
        self.version = "1.0"
        self.user = None
        self.user_id: int | None = None
        self.socket_id: str | None = None
        self.rooms: set[int] = set()
        self.pending_controls: list[dict] | None = []
        self.hub_groups: set[str] = set()
        # subscription id -> destination kind and id: ("room", 42) or ("user", 7)
        self.subscriptions: dict[str, tuple[str, int]] = {}
        self.frame_count = 0
        self.outbox: deque[str] = deque()
        self.writer: asyncio.Task | None = None
        self.heart_beater: asyncio.Task | None = None
        self.closed = False
        self.closing = False
        loop = asyncio.get_running_loop()
        self.last_received = loop.time()

    # -- outgoing ----------------------------------------------------------------------------------
    def _out(self, frame: Frame | str) -> None:
        if self.closed:
            return
        text = frame if isinstance(frame, str) else frames.encode(frame, self.version).decode()
        self.outbox.append(text)
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.outbox:
                batch = list(self.outbox)
                self.outbox.clear()
                await self._write(batch)
                self.last_sent = asyncio.get_running_loop().time()
        except Exception:  # noqa: BLE001 - the transport went away; closed() cleans up
            self.outbox.clear()

    async def flush(self) -> None:
        """Wait until everything queued so far was handed to the transport."""
        while self.writer is not None and not self.writer.done():
            await self.writer

    async def error_close(self, message: str, detail: str = "", *, code: str | None = None, receipt=None) -> None:
        """ERROR, then close: what STOMP asks of a server after any error."""
        if self.closing:
            return
        headers = {"message": message[:200], "content-type": "text/plain"}
        if code:
            headers["code"] = code
        if receipt is not None:
            headers["receipt-id"] = receipt
        self._out(Frame("ERROR", headers, (detail or message).encode()))
        self.closing = True
        await self.flush()
        await self._close()

    # -- incoming ----------------------------------------------------------------------------------
    async def received(self, data: bytes) -> None:
        """Bytes from the client, frames split or merged anyhow."""
        if self.closing:
            return
        self.last_received = asyncio.get_running_loop().time()
        try:
            parsed = self.parser.feed(data)
        except FrameError as exc:
            await self.error_close("malformed frame", str(exc), code=INVALID)
            return
        for frame in parsed:
            if self.closing:
                return
            await self._handle(frame)

    async def _handle(self, frame: Frame) -> None:
        self.frame_count += 1
        receipt = frame.header("receipt")
        if self.user_id is None:
            if frame.command in ("CONNECT", "STOMP"):
                await self._connect(frame)
            else:
                await self.error_close("not connected", "The first frame must be CONNECT.", code=INVALID)
            return
        handler = self.HANDLERS.get(frame.command)
        if handler is None:
            await self.error_close(
                "unknown command", f"Unknown command {frame.command}.", code=INVALID, receipt=receipt
            )
            return
        try:
            await handler(self, frame)
        except ChatError as exc:
            await self.error_close(exc.code, exc.detail, code=exc.code, receipt=receipt)
            return
        except kafka.KafkaUnavailable as exc:
            await self.error_close(UNAVAILABLE, str(exc), code=UNAVAILABLE, receipt=receipt)
            return
        except RedisError as exc:
            log.warning("STOMP %s from user %s: Redis is unreachable: %s", frame.command, self.user_id, exc)
            await self.error_close(UNAVAILABLE, "Redis is unavailable; retry later.", code=UNAVAILABLE, receipt=receipt)
            return
        except Exception:
            log.exception("STOMP %s from user %s failed", frame.command, self.user_id)
            await self.error_close(INTERNAL, "The server failed on this frame; it has been logged.", code=INTERNAL)
            return
        if receipt is not None and frame.command != "DISCONNECT":
            self._out(Frame("RECEIPT", {"receipt-id": receipt}))

    async def _connect(self, frame: Frame) -> None:
        version = frames.version_negotiate(frame.header("accept-version"))
        if version is None:
            self.version = "1.2"
            self.closing = True
            self._out(Frame("ERROR", {"version": ",".join(frames.VERSIONS), "content-type": "text/plain",
                                      "message": "unsupported version"}, b"Supported versions: 1.0, 1.1, 1.2."))  # fmt: skip
            await self.flush()
            await self._close()
            return
        self.version = self.parser.version = version
        try:
            cx, cy = frames.heart_beat_parse(frame.header("heart-beat"))
        except FrameError as exc:
            await self.error_close("invalid heart-beat", str(exc), code=INVALID)
            return
        user = self.scope.get("user")
        token = frame.header("passcode") or frame.header("login")
        if (user is None or not user.is_authenticated) and token:
            # A native client without cookies or an Authorization header: the token in the frame.
            found = await user_for_token(token.strip())
            if found is not None and socket_refusal(found):
                await self.error_close("suspended", "The account is suspended.", code="suspended")
                return
            if found is not None:
                user = found
                self.scope = {**self.scope, "auth_via": "token", "auth_token": token.strip()}
        if user is None or not user.is_authenticated:
            refused = self.scope.get("auth_refused") == "suspended"
            await self.error_close(
                "suspended" if refused else "unauthenticated",
                "The account is suspended." if refused else "Log in (session cookie) or give a token.",
                code="suspended" if refused else "unauthenticated",
            )
            return
        hub = get_hub()
        if hub.stopping:
            await self.error_close(UNAVAILABLE, "This server is stopping; reconnect.", code=UNAVAILABLE)
            return
        registry = limits.socket_registry()
        socket_id = registry.new_id()
        if not await registry.register(user_id=user.pk, socket_id=socket_id):
            await self.error_close(
                "too many connections", "Too many connections open for this user.", code=RATE_LIMITED
            )
            return
        self.socket_id = socket_id
        self.user, self.user_id = user, user.pk
        personal = {user_group(user.pk)}
        if self.scope.get("auth_via") == "session" and self.scope.get("session_key"):
            personal.add(session_group(self.scope["session_key"]))
        if self.scope.get("auth_via") == "token":
            personal.add(token_group(self.scope["auth_token"]))
        self.hub_groups |= personal
        # Subscribed before the room list is read: a removal from now on is never missed.
        await hub.join(self, personal)
        self.rooms = set(await _db(room_selectors.room_ids_for_user)(user_id=user.pk))
        pending, self.pending_controls = self.pending_controls, None
        for control in pending:
            self._control(control)
        sx, sy = _heart_beat_setting()
        self.send_every = max(sx, cy) / 1000 if sx and cy else 0
        self.expect_every = max(cx, sy) / 1000 if cx and sy else 0
        self._out(Frame("CONNECTED", {
            "version": version, "heart-beat": f"{sx},{sy}", "server": "chat/1", "session": self.session_id,
            "user-name": user.username,
        }))  # fmt: skip
        if self.send_every or self.expect_every:
            self.heart_beater = asyncio.get_running_loop().create_task(self._heart_beats())

    async def _heart_beats(self) -> None:
        loop = asyncio.get_running_loop()
        self.last_sent = loop.time()
        tick = min(t for t in (self.send_every, self.expect_every) if t) / 2
        while not self.closed and not self.closing:
            await asyncio.sleep(tick)
            now = loop.time()
            if self.send_every and now - self.last_sent >= self.send_every and not self.outbox:
                self._out("\n")
            # A missed beat or two is tolerated (the spec asks for some margin): twice the interval.
            if self.expect_every and now - self.last_received > 2 * self.expect_every:
                log.info(
                    "STOMP session of user %s sent nothing for %.1f s; closing", self.user_id, now - self.last_received
                )
                await self.error_close("heart-beat timeout", "No frame or heart-beat in time.", code="timeout")
                return

    async def on_subscribe(self, frame: Frame) -> None:
        destination = frame.header("destination") or ""
        sub_id = frame.header("id") or (destination if self.version == "1.0" else None)
        if sub_id is None:
            raise ChatError(INVALID, "SUBSCRIBE needs an `id` header.")
        if sub_id in self.subscriptions:
            raise ChatError(INVALID, f"Subscription {sub_id!r} exists already.")
        if match := ROOM_DESTINATION.fullmatch(destination):
            room_id = int(match.group(1))
            if room_id not in self.rooms:
                raise ChatError(NOT_MEMBER, "You are not a member of this room.")
            groups = [room_group(room_id)]
            if settings.CHAT_STOMP_ENTER_BROADCAST:
                groups.append(enter_group(room_id))
            self.subscriptions[sub_id] = ("room", room_id)
            self.hub_groups.update(groups)
            await get_hub().join(self, groups)
        elif match := USER_DESTINATION.fullmatch(destination):
            if int(match.group(1)) != self.user_id:
                raise ChatError(FORBIDDEN, "You may subscribe to your own user destination only.")
            self.subscriptions[sub_id] = ("user", self.user_id)
        else:
            raise ChatError(INVALID, f"Unknown destination {destination[:100]!r}.")

    async def on_unsubscribe(self, frame: Frame) -> None:
        sub_id = frame.header("id") or (frame.header("destination") if self.version == "1.0" else None)
        kind_id = self.subscriptions.pop(sub_id, None) if sub_id is not None else None
        if kind_id is None:
            raise ChatError(INVALID, f"No subscription {sub_id!r}.")
        if kind_id[0] == "room" and kind_id not in self.subscriptions.values():
            await self._leave_room_groups(kind_id[1])

    async def _leave_room_groups(self, room_id: int) -> None:
        groups = [room_group(room_id), enter_group(room_id)]
        self.hub_groups.difference_update(groups)
        await get_hub().leave(self, groups)

    async def on_send(self, frame: Frame) -> None:
        destination = frame.header("destination")
        data = self._json_body(frame)
        room_id = data.get("roomId")
        if isinstance(room_id, str) and room_id.isdigit():
            room_id = int(room_id)  # the seed's room ids were strings
        room_id = id_validate(room_id, "roomId")
        if destination == SEND_MESSAGE:
            await self._send_message(frame, data, room_id)
        elif destination == SEND_ENTER:
            await self._enter(data, room_id)
        else:
            raise ChatError(INVALID, f"Unknown destination {str(destination)[:100]!r}.")

    async def _send_message(self, frame: Frame, data: dict, room_id) -> None:
        if room_id not in self.rooms:
            raise ChatError(NOT_MEMBER, "You are not a member of this room.")
        if get_hub().stopping:
            raise ChatError(UNAVAILABLE, "This server is stopping; reconnect and send it again.")
        verdict = await limits.take(
            f"send:{self.user_id}", rate=settings.CHAT_SEND_RATE, burst=settings.CHAT_SEND_BURST
        )
        if not verdict.allowed:
            raise ChatError(RATE_LIMITED, f"Too many messages; retry in {verdict.retry_after:.1f} s.")
        # The same service as REST: membership, a moderator's mute, a read-only room, validation,
        # then Kafka (persist stores and fans out, the JSON sockets' message.new included).
        await _db(message_services.message_send)(
            user=self.user, room_id=room_id, client_msg_id=self._client_msg_id(frame, data), body=data.get("message")
        )

    def _client_msg_id(self, frame: Frame, data: dict):
        """The client's own id (``client-msg-id`` header or ``clientMsgId``), else one derived.

        Derived from the session and the ``receipt`` header (a re-sent frame with the same receipt
        is stored once), or the session and the frame's number in it. The session id is in both
        so two connections that count receipts from 0 never collide.
        """
        given = frame.header("client-msg-id") or data.get("clientMsgId")
        if given is not None:
            return given  # message_send validates it as a UUID
        receipt = frame.header("receipt")
        basis = f"r:{receipt}" if receipt is not None else f"n:{self.frame_count}"
        return uuid.uuid5(CLIENT_MSG_NAMESPACE, f"{self.user_id}:{self.session_id}:{basis}")

    async def _enter(self, data: dict, room_id) -> None:
        if room_id not in self.rooms:
            raise ChatError(NOT_MEMBER, "You are not a member of this room.")
        participant = await _db(room_selectors.participant_get)(room_id=room_id, user_id=self.user_id)
        state = {
            "type": "enter",
            "roomId": str(room_id),
            "lastReadSeq": participant.last_read_seq,
            "lastSeq": participant.room.last_seq,
            "unread": max(0, participant.room.last_seq - participant.last_read_seq),
        }
        self._to_user(state)
        if settings.CHAT_STOMP_ENTER_BROADCAST:
            # The seed announced every entry to the room; STOMP subscribers only (JSON clients
            # never had such a frame), and nothing is stored.
            text = codec.dumps({
                "type": ENTER_FRAME, "roomId": str(room_id), "writer": self.user.username, "writerId": self.user_id,
                "message": f"{self.user.username} entered the room.",
            }).decode()  # fmt: skip
            await get_hub().publish(enter_group(room_id), text)

    async def on_disconnect(self, frame: Frame) -> None:
        receipt = frame.header("receipt")
        if receipt is not None:
            self._out(Frame("RECEIPT", {"receipt-id": receipt}))
        self.closing = True
        await self.flush()
        await self._close()

    async def on_ack(self, frame: Frame) -> None:
        """ACK / NACK: every subscription is treated as ``ack:auto``; accepted and ignored."""

    def _json_body(self, frame: Frame) -> dict:
        try:
            data = codec.loads(frame.body)
        except ValueError:
            raise ChatError(INVALID, "The body must be a JSON object.") from None
        if not isinstance(data, dict):
            raise ChatError(INVALID, "The body must be a JSON object.")
        return data

    def _to_user(self, body: dict) -> None:
        """A MESSAGE to each of the session's ``/sub/user/{id}`` subscriptions."""
        for sub_id, (kind, _) in self.subscriptions.items():
            if kind == "user":
                self._message(sub_id, f"/sub/user/{self.user_id}", body, message_id=f"u-{uuid.uuid4().hex[:12]}")

    def _message(self, sub_id: str, destination: str, body: dict, *, message_id: str) -> None:
        self._out(Frame("MESSAGE", {
            "destination": destination, "subscription": sub_id, "message-id": message_id,
            "content-type": "application/json",
        }, codec.dumps(body)))  # fmt: skip

    # -- from the hub --------------------------------------------------------------------------------
    async def deliver(self, group: str, frame_text: str | None, control: dict | None) -> None:
        """Called by the hub for each event of a group this session is in."""
        if control:
            if self.pending_controls is not None and control.get("op") != OP_CLOSE:
                self.pending_controls.append(control)
            else:
                self._control(control)
        if frame_text is None or self.closing:
            return
        if group.startswith("room."):
            if frame_text.startswith(NEW_MESSAGE_PREFIX):
                self._room_message(codec.loads(frame_text)["message"])
        elif group.startswith("stomp.room."):
            data = codec.loads(frame_text)
            room_id = int(data["roomId"])
            if room_id in self.rooms:
                self._to_room(room_id, {k: v for k, v in data.items() if k != "type"}, f"e-{uuid.uuid4().hex[:12]}")
        elif group.startswith("user.") and frame_text.startswith(ERROR_PREFIX):
            # Storage refused a message after Kafka took it: the sender hears it on /sub/user/{id}.
            data = codec.loads(frame_text)
            self._to_user({
                "type": "error", "code": data.get("code"), "detail": data.get("detail"),
                "clientMsgId": data.get("client_msg_id"), "roomId": str(data.get("room") or ""),
            })  # fmt: skip

    def _room_message(self, message: dict) -> None:
        room_id = message["room"]
        if room_id not in self.rooms:
            return  # removed from the room: stop at once, even before the unsubscribe lands
        sender = message["sender"]
        body = {
            "roomId": str(room_id),
            "writer": sender["username"] or "",
            "writerId": sender["id"],
            "message": message["body"],
            "createAt": message["created_at"],
            "seq": message["seq"],
            "clientMsgId": message["client_msg_id"],
        }
        if message.get("kind") == "system":
            body["kind"] = "system"
        self._to_room(room_id, body, f"{room_id}-{message['seq']}")

    def _to_room(self, room_id: int, body: dict, message_id: str) -> None:
        for sub_id, kind_id in self.subscriptions.items():
            if kind_id == ("room", room_id):
                self._message(sub_id, f"/sub/chat/room/{room_id}", body, message_id=message_id)

    def _control(self, control: dict) -> None:
        op = control.get("op")
        loop = asyncio.get_running_loop()
        if op == OP_JOIN_ROOM:
            self.rooms.add(control["room"])
        elif op == OP_LEAVE_ROOM:
            room_id = control["room"]
            self.rooms.discard(room_id)
            for sub_id, kind_id in list(self.subscriptions.items()):
                if kind_id == ("room", room_id):
                    del self.subscriptions[sub_id]
            loop.create_task(self._leave_room_groups(room_id))
        elif op == OP_CLOSE:
            code = control.get("code")
            loop.create_task(self.error_close("closed", f"The server closed this session ({code}).", code=str(code)))

    async def closed_by_transport(self) -> None:
        """The transport is gone: free what the session holds."""
        self.closed = True
        if self.heart_beater is not None:
            self.heart_beater.cancel()
        if self.user_id is not None:
            await get_hub().leave(self, self.hub_groups)
            await limits.socket_registry().unregister(socket_id=self.socket_id)

    HANDLERS = {
        "SUBSCRIBE": on_subscribe,
        "UNSUBSCRIBE": on_unsubscribe,
        "SEND": on_send,
        "DISCONNECT": on_disconnect,
        "ACK": on_ack,
        "NACK": on_ack,
    }


def session_id_new() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()[:16]
