"""REST endpoint of message search (/api/v1/search/): parse, call messages.search, format."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from streams.web.api import ChatAPIView, error_responses

from . import search
from .serializers import SearchPageSerializer, SearchQuerySerializer


class SearchView(ChatAPIView):
    @extend_schema(
        tags=["search"],
        operation_id="search_messages",
        summary="Search the messages of my rooms",
        description="Messages containing every word of `q` (whole words, any case), from the rooms I am in "
        "now, newest first; deleted messages are never found. With `room`, that room only: a room I am not "
        "in answers 403 `not_member`, like a room that does not exist.",
        parameters=[SearchQuerySerializer],
        responses={200: SearchPageSerializer, **error_responses(400, 403)},
    )
    def get(self, request):
        params = SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        page = search.message_search(
            user_id=request.user.pk,
            query=data["q"],
            room_id=data.get("room"),
            before=data.get("before"),
            limit=data["limit"],
        )
        return Response({"hits": page.hits, "next_before": page.next_before})
