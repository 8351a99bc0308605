"""Web page of a room: the conversation (the room list is rooms/views.py).

Thin: authorise, read through the selectors, render. The page carries its initial data (the
user's rooms, the room's read state and first page, its members) as JSON in the HTML, in the
shapes the REST API and the WebSocket use, so the modules of static/js/chat/ draw the first paint
and every later update with the same code and need no round trip before showing anything.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rooms import selectors as room_selectors
from rooms.models import Participant, Room
from rooms.serializers import ParticipantSerializer, RoomSerializer
from rooms.views import chat_config, rooms_of
from streams.errors import ChatError
from streams.realtime.protocol import BIGINT_MAX

from . import selectors

_SEQ = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() is also true for "²", which int() refuses


def _anchor(request) -> int | None:
    # ?at=<seq> opens the room at that message (the drawer's "jump to message"); anything else
    # opens the room as usual (a link is not worth an error page).
    value = request.GET.get("at", "")
    if not _SEQ.fullmatch(value):
        return None
    seq = int(value)
    return seq if 0 < seq <= BIGINT_MAX else None


@login_required
@require_GET
def room_detail(request, room_id: int):
    user_id = request.user.pk
    try:
        summary = room_selectors.room_summary_for_member(room_id=room_id, user_id=user_id)
    except ChatError:
        # A room the user is not in looks exactly like one that does not exist.
        return render(request, "chat/room_missing.html", status=404)
    state = selectors.room_enter_state(room_id=room_id, user_id=user_id, limit=settings.CHAT_PAGE_SIZE)
    at = _anchor(request)
    if at is not None and at <= summary.room.last_seq:
        state["messages"] = selectors.messages_around(
            room_id=room_id, user_id=user_id, seq=at, limit=settings.CHAT_PAGE_SIZE
        )
    else:
        at = None
    members = ParticipantSerializer(room_selectors.participant_list(room_id=room_id, user_id=user_id), many=True).data
    room = RoomSerializer(summary).data
    rooms = rooms_of(request)
    config = chat_config(
        request,
        rooms=rooms,
        room=room,
        state=state,
        members=members,
        at=at,
        page_size=settings.CHAT_PAGE_SIZE,
        max_body_bytes=settings.CHAT_MAX_BODY_BYTES,
        edit_window_s=settings.CHAT_EDIT_WINDOW_S,
    )
    context = {
        "rooms": rooms,
        "room": room,
        "title": room["title"],
        "is_group": summary.room.kind == Room.Kind.GROUP,
        "can_manage": summary.role in (Participant.Role.OWNER, Participant.Role.ADMIN),
        "chat_config": config,
    }
    return render(request, "chat/room.html", context)
