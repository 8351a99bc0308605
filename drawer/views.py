"""Web page of the talk drawer: the user's saved messages, filtered, a page at a time.

Thin: parse the filters (with the REST API's own query serializer, so the page and the API
accept the same parameters), read through the selectors, render. The filters are a plain GET
form, so they work without JavaScript; static/js/chat/drawer.js adds the "more" button (it asks for
the next page as an HTML fragment, ``?partial=1``), note editing and removal over REST.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from streams.errors import ChatError

from . import selectors
from .serializers import DrawerListQuerySerializer

FILTERS = ("room", "tag", "since", "until", "q")


def _filled(params: QueryDict) -> QueryDict:
    # A GET form sends every field, the empty ones too ("any tag" is tag=); those filter nothing.
    filled = QueryDict(mutable=True)
    for key, values in params.lists():
        values = [v for v in values if v.strip()]
        if values:
            filled.setlist(key, values)
    return filled


@login_required
@require_GET
def drawer_page(request):
    user_id = request.user.pk
    query = DrawerListQuerySerializer(data=_filled(request.GET))
    error = None
    entries, next_cursor = [], None
    if query.is_valid():
        data = query.validated_data
        try:
            page = selectors.drawer_entries_for_query(user_id=user_id, data=data)
        except ChatError as exc:
            error = exc.detail
        else:
            # The payload (the REST shape) plus the two times as datetimes, for the date filter.
            entries = [
                {**selectors.drawer_entry_payload(e), "created": e.message_created_at, "saved": e.saved_at}
                for e in page.entries
            ]
            next_cursor = page.next_cursor
    else:
        error = "Some filters are not valid: " + "; ".join(
            f"{field}: {' '.join(str(m) for m in messages)}" for field, messages in query.errors.items()
        )
    more = None
    if next_cursor:
        more = request.GET.copy()
        more.pop("partial", None)
        more["cursor"] = next_cursor
        more = more.urlencode()
    context = {
        "entries": entries,
        "more": more,
        "error": error,
        "filtered": any(request.GET.get(name) for name in FILTERS),
        "current": {name: request.GET.get(name, "") for name in FILTERS},
        "is_next_page": bool(request.GET.get("cursor")),
    }
    if request.GET.get("partial"):
        return render(request, "drawer/_entries.html", context)
    context.update(
        rooms=selectors.drawer_rooms(user_id=user_id),
        tags=selectors.drawer_tags(user_id=user_id),
        chat_config={"me": {"id": user_id, "username": request.user.username}},
    )
    return render(request, "drawer/drawer.html", context)
