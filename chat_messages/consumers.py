"""The WebSocket endpoint /ws/chat/: one socket per client, all the user's rooms multiplexed.

Thin: parse a frame, authorise, call a service or selector, format the reply. Fan-out arrives
through the process's real-time hub (streams.realtime.hub), already serialised.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
from collections import deque
from datetime import UTC, datetime

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from rooms import selectors as room_selectors
from rooms import services as room_services
from streams import codec, logs
from streams.errors import INTERNAL, INVALID, NOT_MEMBER, RATE_LIMITED, UNAVAILABLE, ChatError
from streams.pipeline import kafka
from streams.realtime import limits, presence
from streams.realtime.hub import (
    frame,
    get_hub,
    redis_address,
    room_group,
    session_group,
    token_group,
    user_group,
)
from streams.realtime.protocol import (
    BIGINT_MAX,
    CLOSE_GOING_AWAY,
    CLOSE_SUSPENDED,
    CLOSE_TOO_MANY_SOCKETS,
    CLOSE_UNAUTHENTICATED,
    OP_CLOSE,
    OP_JOIN_ROOM,
    OP_LEAVE_ROOM,
    OP_PRESENCE,
    OP_ROOM_MUTE,
    WRITE_TEXT_EXTENSION,
    id_validate,
    is_json_int,
    seq_validate,
)

from . import selectors, services

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
SYNC_MAX_ROOMS = 500
MAX_REQ_CHARS = 200
# Frames about one message: a refusal echoes its seq.
SEQ_ECHOED = ("message.edit", "message.delete", "reaction.add", "reaction.remove")
# A socket's own typing throttle, before the per-user one in Redis: a chatty client costs no
# Redis round trip per keystroke.
TYPING_INTERVAL_S = 1.0
_ROOM_KEY = re.compile(r"[1-9][0-9]{0,18}")  # a room id as a JSON object key: ASCII digits only
# Frames that show a person at the keyboard: each one keeps the user "online" (presence). Noted in
# memory only (streams.realtime.presence), so they cost the frame no Redis round trip.
ACTIVITY = frozenset(
    ("presence.active", "message.send", "message.edit", "message.delete", "reaction.add", "reaction.remove",
     "room.enter", "room.read", "room.mark_unread", "typing")
)  # fmt: skip
# Frames handled beside the sends still in flight: no answer, nothing an earlier send could change.
# Every other frame first waits until the socket's sends are answered (ChatConsumer.receive).
BESIDE_SENDS = frozenset(("message.send", "presence.active"))
# How long a stopping server's socket waits for its answers to be written before it closes.
CLOSE_DRAIN_S = 1.0


class ChatConsumer(AsyncWebsocketConsumer):
    user_id: int | None = None
    present = False  # counted by presence (and so uncounted when it closes)

    async def dispatch(self, message):
        # Channels would first close stale database connections in a worker thread: a thread
        # round trip for every frame, though a message.send touches no database. Every database
        # call here goes through database_sync_to_async, which does that cleanup itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()  # a close code needs an accepted socket
            # A suspended account (accounts.ws_auth) is told so: its client waits instead of logging in again.
            refused = self.scope.get("auth_refused") == "suspended"
            await self.close(code=CLOSE_SUSPENDED if refused else CLOSE_UNAUTHENTICATED)
            return
        hub = get_hub()
        if hub.stopping:
            # This server is stopping: the client reconnects to a server that is not.
            await self.accept()
            await self.close(code=CLOSE_GOING_AWAY)
            return
        self.socket_id = limits.socket_registry().new_id()
        # Bound for the life of this connection's task: each of its log lines names the socket.
        logs.bind(conn_id=self.socket_id)
        if not await limits.socket_registry().register(user_id=user.pk, socket_id=self.socket_id):
            log.info("user %s has %d sockets open; refused another", user.pk, settings.CHAT_MAX_SOCKETS_PER_USER)
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.user_id = user.pk
        self.username = user.username
        self.outbox: deque[str] = deque()
        self.draining = True  # frames that arrive before the accept wait in the outbox
        self.write_text = (self.scope.get("extensions") or {}).get(WRITE_TEXT_EXTENSION, {}).get("write")
        self.typing_sent: dict[int, float] = {}
        self.presence_seen: dict[int, int] = {}  # user -> version of the last presence.updated passed on
        self.closed = False
        # Sends on their way to the broker, oldest first: (delivery, accepted frame, req, error
        # context, log ids), or (None, answer, None, None, None) for a frame answered while sends
        # were in flight. Answered strictly in this order by the task in `answering`
        # (ChatConsumer._answer_sends).
        self.in_flight: deque[tuple[kafka.Delivery | None, str, object, dict | None, dict | None]] = deque()
        self.answering: asyncio.Task | None = None
        self.answered = asyncio.Event()  # set each time the oldest send in flight is answered
        self.log_context = contextvars.copy_context()  # the socket's ids, none of a frame's
        self.rooms: set[int] = set()
        # Rooms a moderator muted this user in: {room: end (epoch seconds, None: until lifted)},
        # kept current by room.mute controls, so a send is refused in memory like a non-member's.
        self.mutes: dict[int, float | None] = {}
        # Controls (room joins and leaves) that arrive before the room snapshot is read wait here,
        # then apply on top of it: a removal committed while connecting is never missed.
        self.pending_controls: list[dict] | None = []
        personal = {user_group(user.pk)}
        if self.scope.get("auth_via") == "session" and self.scope.get("session_key"):
            personal.add(session_group(self.scope["session_key"]))
        if self.scope.get("auth_via") == "token":
            personal.add(token_group(self.scope["auth_token"]))
        self.hub_groups: set[str] = set(personal)
        try:
            # Subscribe before accepting: a logout or removal published from now on reaches this socket.
            await hub.join(self, personal)
            self.rooms = set(await _db(room_selectors.room_ids_for_user)(user_id=user.pk))
            self.mutes = await _db(room_selectors.room_mutes_for_user)(user_id=user.pk)
            pending, self.pending_controls = self.pending_controls, None
            for control in pending:
                self._control(control)
            rooms = {room_group(r) for r in self.rooms}
            self.hub_groups |= rooms
            await hub.join(self, rooms)
            if hub.stopping:  # the server began stopping while this socket connected
                await self.accept()
                await self.close(code=CLOSE_GOING_AWAY)
                return
            await self.accept()
        except BaseException:
            # disconnect() never runs for a socket that failed to connect: free what it took.
            self.closed = True
            await hub.leave(self, self.hub_groups)
            await limits.socket_registry().unregister(socket_id=self.socket_id)
            raise
        self.draining = False
        if self.outbox:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        self.present = True
        await presence.tracker(rooms_of=_db(room_selectors.room_ids_by_user)).connected(
            user_id=user.pk, username=user.username, socket_id=self.socket_id, rooms=self.rooms
        )

    async def disconnect(self, code):
        self.closed = True
        if self.user_id is not None:
            await get_hub().leave(self, self.hub_groups)
            await limits.socket_registry().unregister(socket_id=self.socket_id)
            if self.present:
                await presence.tracker().disconnected(
                    user_id=self.user_id, socket_id=self.socket_id, stopping=get_hub().stopping
                )

    # -- outgoing ----------------------------------------------------------------------------------
    async def deliver(self, group: str, frame_text: str | None, control: dict | None) -> None:
        """Called by the hub for each event of a group this socket is in."""
        if control:
            if self.pending_controls is not None and control.get("op") != OP_CLOSE:
                self.pending_controls.append(control)
            else:
                self._control(control)
        if frame_text is None:
            return
        if group.startswith("room.") and int(group[5:]) not in self.rooms:
            return  # removed from the room: stop at once, even before the unsubscribe lands
        if control and control.get("op") == OP_PRESENCE and not presence.is_fresh(self.presence_seen, control):
            return  # the same change, through another room this socket shares with that user
        if self.draining or self.outbox:
            self.outbox.append(frame_text)
            return
        # The common case: write now, in the hub's order. Under chatproject.serve one call writes
        # the frame; elsewhere daphne's send only hands it to Twisted's buffer, which costs far
        # less than a task per frame.
        try:
            if self.write_text is not None:
                self.write_text(frame_text)
            else:
                await self.send(text_data=frame_text)
        except Exception:  # noqa: BLE001 - the socket went away; disconnect() cleans up
            log.debug("send to a closing socket of user %s failed", self.user_id)

    def push(self, text: str) -> None:
        """Send ``text`` after the frames queued before it, from code that does not await."""
        if self.write_text is not None and not (self.draining or self.outbox):
            self.write_text(text)  # written now, in order: nothing waits before it
            return
        self.outbox.append(text)
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.outbox:
                await self.send(text_data=self.outbox.popleft())
        except Exception:  # noqa: BLE001 - the socket went away; disconnect() cleans up
            self.outbox.clear()
        finally:
            self.draining = False

    def _control(self, control: dict) -> None:
        op = control.get("op")
        loop = asyncio.get_running_loop()
        if op == OP_JOIN_ROOM:
            self.rooms.add(control["room"])
            self.hub_groups.add(room_group(control["room"]))
            loop.create_task(self._join_room(control["room"]))
        elif op == OP_LEAVE_ROOM:
            self.rooms.discard(control["room"])
            self.hub_groups.discard(room_group(control["room"]))
            loop.create_task(get_hub().leave(self, [room_group(control["room"])]))
        elif op == OP_ROOM_MUTE:
            if control.get("active"):
                self.mutes[control["room"]] = control.get("until")
            else:
                self.mutes.pop(control["room"], None)
        elif op == OP_CLOSE:
            loop.create_task(self._close(control.get("code", CLOSE_UNAUTHENTICATED)))

    async def _close(self, code: int) -> None:
        if code == CLOSE_GOING_AWAY:
            # A stopping server answers the sends already on their way first (each within the
            # broker's delivery timeout), so the client knows which ones it must re-send.
            await self._sends_below(1)
            deadline = time.monotonic() + CLOSE_DRAIN_S
            while (self.draining or self.outbox) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        await self.close(code=code)

    async def _join_room(self, room_id: int) -> None:
        group = room_group(room_id)
        await get_hub().join(self, [group])
        if self.closed:  # the socket went away while subscribing: do not leave it in the hub
            await get_hub().leave(self, [group])

    def error(self, req, code: str, detail: str, **extra) -> None:
        self._answer(frame("error", req=req, code=code, detail=detail, **extra))

    def _answer(self, text: str) -> None:
        """Reply to a frame, after the answers of the sends that came before it."""
        if self.in_flight:
            self.in_flight.append((None, text, None, None, None))
        else:
            self.push(text)

    async def _answer_sends(self) -> None:
        """Answer the socket's sends in flight in the order they came, each once the broker has."""
        try:
            while self.in_flight:
                delivery, text, req, context, ids = self.in_flight[0]
                if delivery is not None:
                    bound = logs.bind(**ids)  # the frame's: its client_msg_id and event_id
                    try:
                        await delivery.wait()
                        log.debug("message.send produced to %s", kafka.MESSAGES)
                    except kafka.KafkaUnavailable as exc:
                        text = frame("error", req=req, code=UNAVAILABLE, detail=str(exc), **context)
                    finally:
                        logs.unbind(bound)
                self.in_flight.popleft()
                self.push(text)
                self.answered.set()
        finally:
            self.answering = None
            self.answered.set()

    def _answer_later(self, delivery: kafka.Delivery, accepted: str, req, context: dict, ids: dict) -> None:
        self.in_flight.append((delivery, accepted, req, context, ids))
        if self.answering is None:
            loop = asyncio.get_running_loop()
            self.answering = loop.create_task(self._answer_sends(), context=self.log_context.copy())

    async def _sends_below(self, limit: int) -> None:
        """Wait until fewer than ``limit`` of this socket's sends are in flight (0: all answered).

        Meanwhile the socket's next frames are not read: past a few queued ones the server stops
        reading from the connection (chatproject.read_pause), so a fast sender is held back."""
        while len(self.in_flight) >= limit:
            if self.answering is None:  # its task was cancelled: answer the rest anyway
                self.answering = asyncio.get_running_loop().create_task(
                    self._answer_sends(), context=self.log_context.copy()
                )
            self.answered.clear()
            await self.answered.wait()

    # -- incoming ----------------------------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        if self.user_id is None:
            return
        if len(self.in_flight) >= settings.CHAT_SOCKET_MAX_IN_FLIGHT:
            # Pipelined sends (and the answers queued behind them) are bounded: the next frame,
            # whatever it is, is read once the oldest is answered.
            await self._sends_below(settings.CHAT_SOCKET_MAX_IN_FLIGHT)
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            self.error(None, INVALID, "Frames must be JSON text of at most 64 KB.")
            return
        try:
            data = codec.loads(text_data)
        except ValueError:
            self.error(None, INVALID, "The frame is not valid JSON.")
            return
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            self.error(None, INVALID, "A frame is a JSON object with a string `type`.")
            return
        req = data.get("req")
        if req is not None and not _valid_req(req):
            # Echoed in the reply: a nested or huge value could not even be written back.
            self.error(None, INVALID, f"`req` must be a string of at most {MAX_REQ_CHARS} characters or an integer.")
            return
        handler = self.HANDLERS.get(data["type"])
        if handler is None:
            self.error(req, INVALID, f"Unknown frame type {data['type']!r}.")
            return
        if data["type"] in ACTIVITY:
            presence.tracker().active(self.user_id)
        if data["type"] not in BESIDE_SENDS and self.in_flight:
            # A send is pipelined: it waits for the broker in the background (_answer_later).
            # Any other frame is handled as if sends were one at a time: an edit, a read position
            # or a sync comes after the sends before it are answered, and its answer after theirs.
            await self._sends_below(1)
        # The frame's client_msg_id names its log lines (the error lines below too); a send adds
        # its envelope's event_id. Unbound once the frame is handled.
        cmid = data.get("client_msg_id")
        bound = logs.bind(client_msg_id=cmid if isinstance(cmid, str) and len(cmid) <= 64 else None)
        try:
            await handler(self, data, req)
        except ChatError as exc:
            self.error(req, exc.code, exc.detail, **_context(data))
        except kafka.KafkaUnavailable as exc:
            self.error(req, UNAVAILABLE, str(exc), **_context(data))
        except RedisError as exc:
            log.warning("frame %r from user %s: Redis is unreachable: %s", data["type"], self.user_id, exc)
            detail = f"Redis at {redis_address()} is unavailable; retry later."
            self.error(req, UNAVAILABLE, detail, **_context(data))
        except Exception:
            log.exception("frame %r from user %s failed", data.get("type"), self.user_id)
            self.error(req, INTERNAL, "The server failed to handle this frame; it has been logged.", **_context(data))
        finally:
            logs.unbind(bound)

    async def on_send(self, data: dict, req) -> None:
        attachments = services.attachment_ids_validate(data.get("attachments"))
        room_id, msg_id, body = services.message_validate(
            room=data.get("room"), client_msg_id=data.get("client_msg_id"), body=data.get("body"),
            with_attachments=bool(attachments),
        )  # fmt: skip
        reply_to = services.reply_to_validate(data.get("reply_to"))
        self._require_member(room_id, sending=True)
        if attachments:  # checked before Kafka: each the sender's, in this room, not sent yet
            await _db(services.send_attachments_check)(
                user_id=self.user_id, room_id=room_id, client_msg_id=msg_id, ids=attachments
            )
        if get_hub().stopping:
            raise ChatError(UNAVAILABLE, "This server is stopping; reconnect and send it again.")
        await self._limit("send", settings.CHAT_SEND_RATE, settings.CHAT_SEND_BURST, "Too many messages")
        envelope = services.send_envelope(
            room_id=room_id, sender_id=self.user_id, client_msg_id=msg_id, body=body, reply_to=reply_to,
            attachments=attachments,
        )  # fmt: skip
        logs.bind(event_id=envelope["event_id"])  # unbound with the frame's ids in receive()
        log.debug("message.send accepted from user %s in room %s", self.user_id, room_id)
        # Queued now, in the order the frames came: one room's records reach its partition in
        # that order. The answer follows once the broker acknowledged (acks=all), after the
        # answers of the frames before it; meanwhile the socket's next frames are read.
        delivery = kafka.produce_begin(kafka.MESSAGES, key=room_id, value=envelope)
        accepted = frame("message.accepted", req=req, client_msg_id=str(msg_id), room=room_id)
        self._answer_later(delivery, accepted, req, _context(data), logs.bound())

    async def on_edit(self, data: dict, req) -> None:
        room_id = _room_id(data)
        self._require_member(room_id, sending=True)
        seq = seq_validate(data.get("seq"), minimum=1)
        body = services.body_validate(data.get("body"))
        await self._limit("send", settings.CHAT_SEND_RATE, settings.CHAT_SEND_BURST, "Too many messages")
        await _db(services.message_edit_request)(user=self.scope["user"], room_id=room_id, seq=seq, body=body)
        self.push(frame("message.edit.accepted", req=req, room=room_id, seq=seq))

    async def on_delete(self, data: dict, req) -> None:
        room_id = _room_id(data)
        self._require_member(room_id)
        seq = seq_validate(data.get("seq"), minimum=1)
        await self._limit("send", settings.CHAT_SEND_RATE, settings.CHAT_SEND_BURST, "Too many messages")
        await _db(services.message_delete_request)(user=self.scope["user"], room_id=room_id, seq=seq)
        self.push(frame("message.delete.accepted", req=req, room=room_id, seq=seq))

    async def on_react(self, data: dict, req) -> None:
        room_id = _room_id(data)
        self._require_member(room_id)
        await self._limit("pos", settings.CHAT_POSITION_RATE, settings.CHAT_POSITION_BURST, "Too many reactions")
        await _db(services.reaction_set)(
            user=self.scope["user"], room_id=room_id, seq=data.get("seq"), emoji=data.get("emoji"),
            on=data["type"] == "reaction.add",
        )  # fmt: skip

    async def on_enter(self, data: dict, req) -> None:
        room_id = _room_id(data)
        self._require_member(room_id)
        await self._limit("read", settings.CHAT_READ_RATE, settings.CHAT_READ_BURST, "Too many room entries and syncs")
        state = await _db(selectors.room_enter_state)(
            room_id=room_id, user_id=self.user_id, limit=settings.CHAT_PAGE_SIZE
        )
        self.push(frame("room.entered", req=req, **state))

    async def on_read(self, data: dict, req) -> None:
        room_id = _room_id(data)
        self._require_member(room_id)
        seq = seq_validate(data.get("seq"))
        await self._limit("pos", settings.CHAT_POSITION_RATE, settings.CHAT_POSITION_BURST, "Too many read positions")
        await _db(room_services.read_position_advance)(user_id=self.user_id, room_id=room_id, seq=seq)

    async def on_mark_unread(self, data: dict, req) -> None:
        room_id = _room_id(data)
        self._require_member(room_id)
        seq = seq_validate(data.get("seq"), minimum=1)
        await self._limit("pos", settings.CHAT_POSITION_RATE, settings.CHAT_POSITION_BURST, "Too many read positions")
        await _db(room_services.read_position_mark_unread)(user_id=self.user_id, room_id=room_id, seq=seq)

    async def on_sync(self, data: dict, req) -> None:
        rooms = data.get("rooms")
        if not isinstance(rooms, dict):
            raise ChatError(INVALID, "`rooms` must map room ids to the last seq seen.")
        if len(rooms) > SYNC_MAX_ROOMS:
            # Each room costs a query and may answer a frame: one small frame must not cost thousands.
            raise ChatError(INVALID, f"At most {SYNC_MAX_ROOMS} rooms per `sync`; send several.")
        wanted = {}
        for key, seq in rooms.items():
            if not _ROOM_KEY.fullmatch(key) or not is_json_int(seq):
                raise ChatError(INVALID, "`rooms` must map room ids to the last seq seen.")
            wanted[int(key)] = seq
        await self._limit("read", settings.CHAT_READ_RATE, settings.CHAT_READ_BURST, "Too many room entries and syncs")
        for room_id, seq in wanted.items():
            if room_id not in self.rooms:
                self.error(req, NOT_MEMBER, "You are not a member of this room.", room=room_id)
                continue
            messages, more = await _db(selectors.messages_after)(
                room_id=room_id, user_id=self.user_id, after_seq=seq, limit=settings.CHAT_SYNC_MAX
            )
            if more:
                self.push(frame("sync.gap", req=req, room=room_id, from_seq=seq + 1))
                continue
            for message in messages:
                self.push(frame("message.new", message=message))
        self.push(frame("sync.done", req=req))

    async def on_typing(self, data: dict, req) -> None:
        room_id = _room_id(data)
        self._require_member(room_id)
        # Typing is advisory and fans out to the whole room: at most one per room per interval,
        # whatever a client sends, so a chatty client cannot amplify load on every member.
        now = time.monotonic()
        if now - self.typing_sent.get(room_id, float("-inf")) < TYPING_INTERVAL_S:
            return
        self.typing_sent[room_id] = now
        # Once per user and room, whatever the number of sockets and processes they type from.
        if not await limits.once_per(f"typing:{room_id}:{self.user_id}", interval_s=settings.CHAT_TYPING_INTERVAL_S):
            return
        await get_hub().publish(
            room_group(room_id), frame("typing", room=room_id, user={"id": self.user_id, "username": self.username})
        )

    async def on_presence_active(self, data: dict, req) -> None:
        """``presence.active {}``: the person is here (counted in ``receive``); nothing to answer."""

    async def _limit(self, bucket: str, rate: float, burst: int, what: str) -> None:
        """Take a token from the user's bucket (shared by all their sockets), else ``rate_limited``."""
        verdict = await limits.take(f"{bucket}:{self.user_id}", rate=rate, burst=burst)
        if not verdict.allowed:
            raise ChatError(RATE_LIMITED, f"{what}; retry in {verdict.retry_after:.1f} s.")

    def _require_member(self, room_id: int, *, sending: bool = False) -> None:
        # Kept current by participant.added / participant.removed events on the user's group;
        # the persistence consumer checks membership again when it stores the message.
        if room_id not in self.rooms:
            raise ChatError(NOT_MEMBER, "You are not a member of this room.")
        if sending and room_id in self.mutes:
            # A moderator's mute (room.mute controls); expired ones simply stop counting.
            ends = self.mutes[room_id]
            if ends is not None and ends <= time.time():
                del self.mutes[room_id]
                return
            raise room_selectors.room_mute_refusal(None if ends is None else datetime.fromtimestamp(ends, UTC))

    HANDLERS = {
        "message.send": on_send,
        "message.edit": on_edit,
        "message.delete": on_delete,
        "reaction.add": on_react,
        "reaction.remove": on_react,
        "room.enter": on_enter,
        "room.read": on_read,
        "room.mark_unread": on_mark_unread,
        "sync": on_sync,
        "typing": on_typing,
        "presence.active": on_presence_active,
    }


def _db(fn):
    """Run ORM code off the event loop, in the thread pool rather than on one shared thread.

    Each call is self-contained (its own queries, its own transaction), so the thread affinity of
    database_sync_to_async's default would only queue every socket's reads behind each other.
    """
    return database_sync_to_async(fn, thread_sensitive=False)


def _room_id(data: dict) -> int:
    return id_validate(data.get("room"), "room")


def _valid_req(req) -> bool:
    if isinstance(req, str):
        return len(req) <= MAX_REQ_CHARS
    return is_json_int(req, minimum=-BIGINT_MAX)


def _context(data: dict) -> dict:
    """The fields of a failed frame that its error echoes, when they are of their right shape."""
    extra = {}
    cmid = data.get("client_msg_id")
    if isinstance(cmid, str) and len(cmid) <= 64:
        extra["client_msg_id"] = cmid
    room = data.get("room")
    if is_json_int(room, minimum=1):
        extra["room"] = room
        seq = data.get("seq")
        if data.get("type") in SEQ_ECHOED and is_json_int(seq, minimum=1):
            extra["seq"] = seq  # which message an edit, a deletion or a reaction was refused for
    return extra
