"""REST shapes of message search."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from streams.realtime.protocol import BIGINT_MAX
from streams.web.api import QuerySerializer

from .selectors import ORDERS, SEARCH_PAGE_SIZE, SEARCH_PAGE_SIZE_MAX, SEARCH_QUERY_MAX_CHARS


@extend_schema_field(OpenApiTypes.STR)
class MomentField(serializers.Field):
    """An ISO 8601 datetime, or a date: its first moment, or with ``end_of_day`` the next day's
    (so ``until=2026-12-05`` includes all of that day). Naive values are in the server's time zone."""

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = str(data).strip()
        try:
            if len(value) == 10:
                day = dt.date.fromisoformat(value)
                moment = dt.datetime.combine(day + dt.timedelta(days=int(self.end_of_day)), dt.time())
            else:
                moment = dt.datetime.fromisoformat(value)
        except (ValueError, OverflowError):
            raise serializers.ValidationError(
                "An ISO 8601 date (2026-12-05) or datetime (2026-12-05T09:30:00Z)."
            ) from None
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment

    def to_representation(self, value):
        return value.isoformat()


class SearchQuerySerializer(QuerySerializer):
    q = serializers.CharField(
        max_length=SEARCH_QUERY_MAX_CHARS,
        help_text="Terms to find, all of them, anywhere in the message (part of a word too), any case; "
        '"quoted words" as one term.',
    )
    room = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Search this room only (you must be in it)."
    )
    sender = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Messages of this user only."
    )
    since = MomentField(required=False, help_text="Sent at or after this date or datetime.")
    until = MomentField(
        required=False, end_of_day=True, help_text="Sent before this datetime, or on or before this date."
    )
    order = serializers.ChoiceField(
        choices=ORDERS,
        required=False,
        default="recent",
        help_text="`recent`: newest first. `relevance`: whole-word hits first, among the newest 1,000 matches.",
    )
    cursor = serializers.CharField(
        required=False, max_length=200, help_text="The `next_cursor` of the previous page, as it is."
    )
    before = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=BIGINT_MAX,
        help_text="Older cursor: the `next_before` of the previous page.",
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=SEARCH_PAGE_SIZE_MAX, default=SEARCH_PAGE_SIZE
    )


class SearchSenderSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null once the sender's account is deleted.")
    username = serializers.CharField()


class SnippetSegmentSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    hit = serializers.BooleanField(help_text="True where a search term is: show it marked.")


class SearchHitSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The message's id (save it to the drawer with it).")
    room = serializers.IntegerField()
    room_name = serializers.CharField(help_text="The room's name as you see it (a direct room: the other person).")
    seq = serializers.IntegerField(help_text="Open the room's history with `anchor=<seq>` to show it in context.")
    sender = SearchSenderSerializer()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    snippet = SnippetSegmentSerializer(
        many=True,
        help_text="The body (a window of it around the first hit when long), cut into segments, the hits marked.",
    )


class SearchPageSerializer(serializers.Serializer):
    hits = SearchHitSerializer(many=True, help_text="In the order asked for.")
    next_cursor = serializers.CharField(
        allow_null=True,
        help_text="Pass as `cursor` for the next page; null at the end. A page may hold fewer than `limit` hits "
        "while there are more.",
    )
    next_before = serializers.IntegerField(
        allow_null=True, help_text="`recent` order only: pass as `before` for older hits (the older cursor)."
    )
