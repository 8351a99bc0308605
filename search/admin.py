"""The search index in the admin: its size and lag for operators (not its rows: there is one per
message, and nothing in them is for a person to edit)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from . import selectors
from .models import MessageDoc


@admin.register(MessageDoc)
class SearchIndexAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        status = selectors.index_status()
        lag = status["lag"] or {}
        context = {
            **self.admin_site.each_context(request),
            "title": "Search index",
            "opts": self.model._meta,
            "status": status,
            "index_lag": lag.get("chat-index"),
            "persist_lag": lag.get("chat-persist"),
        }
        return TemplateResponse(request, "admin/search/status.html", context)
