"""Change capture in the admin: the slot's state, lag and retained WAL, with the warning when it
retains more than ``CAPTURE_WAL_WARN_BYTES`` (a stopped capture fills the disk otherwise)."""

from __future__ import annotations

from django.contrib import admin

from streams.web.admin import StatusPageAdmin

from . import services, slot
from .models import ReplicationSlot


@admin.register(ReplicationSlot)
class ChangeCaptureAdmin(StatusPageAdmin):
    status_title = "Change capture"
    status_template = "admin/backup/capture.html"

    def status_context(self, request) -> dict:
        return {
            "status": slot.slot_status(),
            "publication": slot.publication_name(),
            "backup_configured": services.backup_configured(),
        }
