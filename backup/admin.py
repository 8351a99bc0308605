"""Change capture in the admin: the slot's state, lag and retained WAL, with the warning when it
retains more than ``CAPTURE_WAL_WARN_BYTES`` (a stopped capture fills the disk otherwise)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from . import services, slot
from .models import ReplicationSlot


@admin.register(ReplicationSlot)
class ChangeCaptureAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Change capture",
            "opts": self.model._meta,
            "status": slot.slot_status(),
            "publication": slot.publication_name(),
            "backup_configured": services.backup_configured(),
        }
        return TemplateResponse(request, "admin/backup/capture.html", context)
