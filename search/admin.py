"""The search index in the admin: its size and lag for operators (not its rows: there is one per
message, and nothing in them is for a person to edit)."""

from __future__ import annotations

from django.contrib import admin

from streams.web.admin import StatusPageAdmin

from . import selectors
from .models import MessageDoc


@admin.register(MessageDoc)
class SearchIndexAdmin(StatusPageAdmin):
    status_title = "Search index"
    status_template = "admin/search/status.html"

    def status_context(self, request) -> dict:
        status = selectors.index_status()
        lag = status["lag"] or {}
        return {"status": status, "index_lag": lag.get("chat-index"), "persist_lag": lag.get("chat-persist")}
