"""Data exports in the admin: every export, read-only, and a room's history exported and downloaded.

Exporting a room and downloading its ZIP take ``exports.export_room`` (superusers have it) and are
both audited (``room.exported_by_admin``, ``room.export_downloaded_by_admin``). A user's export of
their own data is listed here but never downloadable: it is theirs.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from streams.errors import ChatError
from streams.web.admin import ReadOnlyModelAdmin

from . import selectors, services
from .api import export_file_response
from .models import DataExport


class RoomExportForm(forms.Form):
    room = forms.IntegerField(min_value=1, label="Room id", help_text="The id shown on the room's admin page.")

    def clean_room(self):
        room = selectors.room_get(room_id=self.cleaned_data["room"])
        if room is None:
            raise forms.ValidationError("No room has this id.")
        return room


@admin.register(DataExport)
class DataExportAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id", "kind", "status", "progress_display", "requester_name", "room_display", "size", "created_at",
        "finished_at", "download_link",
    )  # fmt: skip
    list_filter = ("kind", "status")
    search_fields = ("requester_name", "=requester_id", "=room_id", "room_name")
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "kind", "status", "progress_display", "requester_id", "requester_name", "room_id", "room_name",
        "include_files", "items_done", "items_total", "size", "error", "created_at", "started_at", "finished_at",
        "expires_at",
    )  # fmt: skip
    fields = readonly_fields

    @admin.display(description="progress")
    def progress_display(self, obj: DataExport) -> str:
        return f"{obj.progress}% ({obj.items_done}/{obj.items_total} rows)"

    @admin.display(description="room")
    def room_display(self, obj: DataExport) -> str:
        return f"{obj.room_name} ({obj.room_id})" if obj.room_id else "—"

    @admin.display(description="file")
    def download_link(self, obj: DataExport) -> str:
        if obj.kind == DataExport.Kind.ROOM and obj.status == DataExport.Status.DONE and obj.file:
            return format_html('<a href="{}">Download</a>', reverse("admin:exports_dataexport_download", args=[obj.pk]))
        return ""

    def has_export_room_permission(self, request) -> bool:
        return services.export_room_allowed(actor=request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("export-room/", view(self.export_room_view), name="exports_dataexport_export_room"),
            path("<int:export_id>/download/", view(self.download_view), name="exports_dataexport_download"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_export_room": self.has_export_room_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def export_room_view(self, request):
        """A form naming a room (``?room=`` fills it from the room's page); its export is queued on POST."""
        if not self.has_export_room_permission(request):
            raise PermissionDenied
        form = RoomExportForm(request.POST or None, initial={"room": request.GET.get("room")})
        if request.method == "POST" and form.is_valid():
            room = form.cleaned_data["room"]
            export = services.export_request_room(room=room, actor=request.user, ip=request.META.get("REMOTE_ADDR"))
            self.message_user(
                request, f"The history of {room} is being exported (export {export.pk}); download it here once done.",
                messages.SUCCESS,
            )  # fmt: skip
            return redirect("admin:exports_dataexport_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Export a room's history",
            "form": form,
        }
        return TemplateResponse(request, "admin/exports/dataexport/export_room.html", context)

    def download_view(self, request, export_id: int):
        try:
            export = services.export_room_file_for_admin(
                export_id=export_id, actor=request.user, ip=request.META.get("REMOTE_ADDR")
            )
        except ChatError:
            if not self.has_export_room_permission(request):
                raise PermissionDenied from None
            raise Http404("No finished room export has this id.") from None
        return export_file_response(export)
