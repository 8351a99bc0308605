"""Reads about accounts: finding people to invite."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Case, IntegerField, QuerySet, Value, When

from .models import Device

USER_SEARCH_MAX = 20


def users_search(*, query: str, exclude_user_id: int | None = None, limit: int = USER_SEARCH_MAX) -> QuerySet:
    """Active users whose username contains ``query`` (any case): exact and prefix matches first.

    An empty query finds nobody rather than listing every account.
    """
    query = (query or "").strip()
    if not query:
        return get_user_model().objects.none()
    rank = Case(
        When(username__iexact=query, then=Value(0)),
        When(username__istartswith=query, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    users = get_user_model().objects.filter(is_active=True, username__icontains=query)
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    return users.annotate(rank=rank).order_by("rank", "username").only("id", "username")[: min(limit, USER_SEARCH_MAX)]


def devices_of(*, user) -> list[Device]:
    """The user's devices registered for push, newest first."""
    return list(Device.objects.filter(user=user).order_by("-created_at", "-id"))
