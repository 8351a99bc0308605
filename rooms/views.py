"""Web page of the rooms app: the room list at the site root.

Thin: read through the selectors, render. The page carries the user's rooms as JSON in the HTML
(the REST API's shape), so the modules of static/js/chat/ draw the first paint and every later
update with the same code. A room's own page is the conversation: chat_messages/views.py.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import selectors
from .serializers import RoomSerializer


def chat_config(request, **extra) -> dict:
    """The page data every chat page starts from (``chat-config``): who I am, plus ``extra``."""
    return {"me": {"id": request.user.pk, "username": request.user.username}, **extra}


def rooms_of(request) -> list[dict]:
    """The user's rooms as the room list shows them (the REST shape)."""
    return RoomSerializer(selectors.room_list_for_user(user_id=request.user.pk), many=True).data


@login_required
@require_GET
def room_list(request):
    rooms = rooms_of(request)
    return render(request, "chat/room_list.html", {"rooms": rooms, "chat_config": chat_config(request, rooms=rooms)})
