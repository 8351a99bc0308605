"""Admin of the talk drawer: browse and search saved entries; removal goes through the service."""

from django.contrib import admin
from django.db import transaction

from .models import SavedMessage
from .services import drawer_entry_remove


@admin.register(SavedMessage)
class SavedMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "room_name", "message_seq", "sender_name", "short_body", "tag_list", "saved_at")
    list_filter = ("saved_at", "message_created_at")
    search_fields = ("user__username", "body", "note", "room_name", "sender_name")
    list_select_related = ("user",)
    date_hierarchy = "saved_at"
    ordering = ("-saved_at", "-id")
    raw_id_fields = ("user", "message", "room")
    # Entries are made by their owners (membership is checked then) and a snapshot is never
    # rewritten, so the admin only reads them and removes them.
    readonly_fields = (
        "user",
        "message",
        "room",
        "room_name",
        "sender_name",
        "body",
        "message_seq",
        "message_created_at",
        "note",
        "tags",
        "saved_at",
    )

    @admin.display(description="body")
    def short_body(self, obj: SavedMessage) -> str:
        return obj.body if len(obj.body) <= 80 else obj.body[:79] + "…"

    @admin.display(description="tags")
    def tag_list(self, obj: SavedMessage) -> str:
        return ", ".join(obj.tags)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: SavedMessage) -> None:
        # Through the service, so the owner's open sessions drop the entry too.
        drawer_entry_remove(user=obj.user, entry_id=obj.pk, moderator=request.user)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for entry in queryset.select_related("user"):
                drawer_entry_remove(user=entry.user, entry_id=entry.pk, moderator=request.user)
