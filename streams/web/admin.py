"""Admin bases shared by the apps: read-only model admins, and status pages for operators.

A status page replaces a model's changelist with a page of figures, for models whose rows are not
for a person to list or edit (a search index's documents, PostgreSQL's replication slots): nobody
adds, changes or deletes there, and the list is the page ``status_template`` draws from
``status_context``.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows the admin shows but never adds, changes or deletes (records, logs, derived state)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class StatusPageAdmin(ReadOnlyModelAdmin):
    status_title = ""
    status_template = ""

    def status_context(self, request) -> dict:
        """The figures the page shows."""
        return {}

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": self.status_title,
            "opts": self.model._meta,
            **self.status_context(request),
        }
        return TemplateResponse(request, self.status_template, context)
