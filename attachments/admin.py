"""Attachments in the admin: read-only, for moderators to find what was uploaded where."""

from django.contrib import admin

from streams.web.admin import ReadOnlyModelAdmin

from .models import Attachment, AttachmentHold


class AttachmentHoldInline(admin.TabularInline):
    model = AttachmentHold
    extra = 0
    can_delete = False
    fields = ("holder", "user", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyModelAdmin):
    """Files change only through their messages (a deletion releases them, the purge removes them)."""

    list_display = ("id", "name", "kind", "content_type", "size", "room", "uploader", "message_id", "created_at",
                    "released_at")  # fmt: skip
    list_filter = ("kind", "content_type", ("released_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "uploader__username", "=room__id", "=message_id")
    list_select_related = ("room", "uploader")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    show_full_result_count = False
    inlines = [AttachmentHoldInline]
    readonly_fields = [f.name for f in Attachment._meta.fields]
