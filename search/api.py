"""REST endpoint of message search (/api/v1/search/): parse, call search.selectors, format."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from streams.web.api import ChatAPIView, error_responses, validated

from . import selectors
from .serializers import SearchPageSerializer, SearchQuerySerializer


class SearchView(ChatAPIView):
    @extend_schema(
        tags=["search"],
        operation_id="search_messages",
        summary="Search the messages of my rooms",
        description="Messages holding every term of `q` anywhere (part of a word too: `반갑` finds `반갑습니다`, "
        "`meet` finds `Meeting`), any case, from the rooms I am in now; deleted messages are never found. "
        "With `room`, that room only: a room I am not in answers 403 `not_member`, like a room that does not "
        "exist. Each hit has a `snippet` with the terms marked. 503 `unavailable` when the search index (Elasticsearch) "
        "cannot be reached.",
        parameters=[SearchQuerySerializer],
        responses={200: SearchPageSerializer, **error_responses(400, 403, 503)},
    )
    def get(self, request):
        data = validated(SearchQuerySerializer, request.query_params)
        page = selectors.message_search(
            user_id=request.user.pk,
            q=data["q"],
            room_id=data.get("room"),
            sender_id=data.get("sender"),
            since=data.get("since"),
            until=data.get("until"),
            order=data["order"],
            cursor=data.get("cursor"),
            before=data.get("before"),
            limit=data["limit"],
        )
        return Response({"hits": page.hits, "next_cursor": page.next_cursor, "next_before": page.next_before})
