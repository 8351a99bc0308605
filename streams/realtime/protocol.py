"""The real-time protocol's shared names: ids, close codes, and the controls sent to sockets.

Frames are built by ``streams.realtime.hub.frame`` with their dotted names where they are sent; what
several apps must agree on lives here, once (docs/protocol.md is the description for clients).
"""

from __future__ import annotations

from streams.errors import INVALID, ChatError

# How a deleted account is named wherever its name would show (senders, direct rooms, drawers).
DELETED_USER = "deleted user"

# What a room's system lines tell (``room.event`` envelopes from rooms, stored by chat_messages).
ROOM_EVENTS = ("joined", "left", "invited", "removed", "renamed")
# The envelope rooms put on the messages topic for each of those, stored as a system line.
ROOM_EVENT = "room.event"

# Ids and seqs are PostgreSQL bigints; the wire carries them as JSON integers.
BIGINT_MAX = 2**63 - 1

# WebSocket close codes (daphne allows 1000 and 3000-4999 for an application's own).
CLOSE_UNAUTHENTICATED = 4401  # no (longer) valid credentials: log in again, do not reconnect
CLOSE_SUSPENDED = 4403  # the account is suspended (docs/moderation.md): do not reconnect until it ends
CLOSE_EVENTS_LOST = 4012  # events for this socket may be lost: reconnect and `sync`
CLOSE_TOO_MANY_SOCKETS = 4429  # CHAT_MAX_SOCKETS_PER_USER reached: retry much later
CLOSE_GOING_AWAY = 4503  # this server is stopping: reconnect after a short delay and `sync`
CLOSE_TOO_SLOW = 4408  # the socket fell CHAT_SOCKET_MAX_BUFFER_BYTES behind in reading: reconnect and `sync`

# The ASGI scope extension through which chatproject.serve gives a socket's consumer a direct
# writer of text frames, ``scope["extensions"][WRITE_TEXT_EXTENSION]["write"](text)``: the
# fan-out writes each frame with one call instead of going through ASGI's send, daphne's reply
# handling and autobahn's framing per socket. Absent under any other server (send is used then).
WRITE_TEXT_EXTENSION = "chat.write_text"

# Controls: instructions published to a group for the sockets in it, never sent to clients.
OP_JOIN_ROOM = "room.join"  # the user's sockets start receiving the room
OP_LEAVE_ROOM = "room.leave"  # the user's sockets stop receiving the room at once
OP_ROOM_MUTE = "room.mute"  # a moderator's mute in ``room`` until ``until`` (epoch seconds; None: for good), or lifted
OP_CLOSE = "close"  # the sockets close with ``code``
OP_PRESENCE = "presence"  # with a presence.updated frame: ``user`` and ``v``, so a socket drops its copies


def close_control(code: int = CLOSE_UNAUTHENTICATED) -> dict:
    return {"op": OP_CLOSE, "code": code}


def is_json_int(value, *, minimum: int = 0, maximum: int = BIGINT_MAX) -> bool:
    """A JSON integer (not a boolean, a float or a string of digits) within the bounds."""
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum


def seq_validate(value, *, minimum: int = 0) -> int:
    """A seq: a JSON integer from ``minimum`` up to the bigint maximum, else ``invalid``."""
    if not is_json_int(value, minimum=minimum):
        kind = "non-negative" if minimum == 0 else "positive"
        raise ChatError(INVALID, f"`seq` must be a {kind} integer.")
    return value


def id_validate(value, name: str) -> int:
    """A room, user or seq id: a JSON integer within PostgreSQL's bigint, else ``invalid``.

    Strings are refused, even of digits: Python's isdigit() and int() also take "١" or "²".
    """
    if not is_json_int(value, minimum=1):
        raise ChatError(INVALID, f"`{name}` must be a positive integer id.")
    return value
