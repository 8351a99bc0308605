"""Moderation of messages in the Django admin: find a message, remove it for everyone."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from streams.pipeline.kafka import KafkaUnavailable

from . import services
from .models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Messages are read-only here: they change through the pipeline, in their room's order."""

    list_display = ["room", "seq", "sender", "short_body", "created_at", "edited_at", "deleted_at"]
    list_filter = [("deleted_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["body", "sender__username", "room__name", "=room__id"]
    list_select_related = ["room", "sender"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    actions = ["delete_for_everyone"]
    show_full_result_count = False  # counting a large table on every page is slow

    @admin.display(description="body")
    def short_body(self, message: Message) -> str:
        return message.body[:80] if not message.deleted_at else "(deleted)"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    # Deleting a row here would leave a gap in the room's seqs and skip the members' sockets, so
    # the admin's own delete is off. (The delete permission itself stays: deleting a room or an
    # account removes its messages by cascade, and Django checks it for those.)
    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied("Use the 'Delete for everyone' action.")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "show_delete": False})

    @admin.action(description="Delete for everyone (the body is erased, members are told)")
    def delete_for_everyone(self, request, queryset):
        done = 0
        try:
            for message in queryset.filter(deleted_at__isnull=True)[:500]:
                services.message_delete_by_moderator(message=message, moderator=request.user)
                done += 1
        except KafkaUnavailable as exc:
            self.message_user(request, f"Stopped after {done}: {exc}", level=messages.ERROR)
            return
        self.message_user(request, f"{done} message(s) will be deleted in their rooms' order.")
