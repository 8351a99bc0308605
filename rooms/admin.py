"""Admin of rooms and participants.

Moderators search and edit rooms and memberships here. Deleting a room, removing a participant,
adding one and changing a role all go through rooms.services, so members' open sockets hear of
it exactly as when the owner does it in the app.
"""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from streams.errors import ChatError

from . import services
from .models import Participant, Room, RoomSanction
from .selectors import rooms_with_pair_names


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ("user", "role", "joined_at", "last_read_seq")
    # A read position is the member's own; moderators see it but do not move it.
    readonly_fields = ("joined_at", "last_read_seq")
    raw_id_fields = ("user",)
    ordering = ("joined_at", "id")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("id", "__str__", "kind", "is_public", "member_count", "last_seq", "last_message_at", "created_at")
    list_filter = ("kind", "is_public", "legal_hold")
    search_fields = ("=id", "name", "participants__user__username")
    ordering = ("-last_message_at", "-id")
    date_hierarchy = "created_at"
    fields = (
        "kind",
        "name",
        "topic",
        "is_public",
        "created_by",
        "direct_key",
        "last_seq",
        "last_message_at",
        "last_message_preview",
        "created_at",
        "retention_days",
        "legal_hold",
        "legal_hold_by",
        "legal_hold_at",
    )
    # What a moderator may change here: the rest is the room's history, or set by the chat itself.
    # A legal hold only a site admin (superuser) sets or lifts.
    readonly_fields = tuple(
        f for f in fields if f not in ("name", "topic", "is_public", "retention_days", "legal_hold")
    )
    inlines = [ParticipantInline]

    def get_queryset(self, request):
        # Direct rooms named by their pair ("alice ↔ bob"), in the same query as the list.
        rooms = rooms_with_pair_names(super().get_queryset(request))
        return rooms.annotate(n_members=Count("participants", distinct=True))

    def get_search_results(self, request, queryset, search_term):
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False

    @admin.display(description="members", ordering="n_members")
    def member_count(self, room: Room) -> int:
        return room.n_members

    def get_readonly_fields(self, request, obj=None):
        readonly = self.readonly_fields
        if not request.user.is_superuser:
            readonly = (*readonly, "legal_hold")
        if obj is not None and obj.kind == Room.Kind.DIRECT:
            return (*readonly, "name", "topic", "is_public")
        return readonly

    def has_add_permission(self, request) -> bool:
        # Rooms are made by their users (a direct room needs its pair's key).
        return False

    def save_model(self, request, obj: Room, form, change) -> None:
        if not change:
            return
        try:
            with transaction.atomic():
                if {"name", "topic", "is_public"} & set(form.changed_data):
                    services.room_update_by_moderator(
                        room=obj, name=obj.name, topic=obj.topic, is_public=obj.is_public, actor=request.user
                    )
                if "retention_days" in form.changed_data:
                    services.room_retention_set_by_moderator(
                        room=obj, retention_days=obj.retention_days, actor=request.user
                    )
                if "legal_hold" in form.changed_data:
                    services.room_legal_hold_set(room=obj, hold=obj.legal_hold, actor=request.user)
        except ChatError as exc:
            self.message_user(request, exc.detail, messages.ERROR)

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not Participant:
            super().save_formset(request, form, formset, change)
            return
        with transaction.atomic():
            changed = formset.save(commit=False)
            for participant in formset.deleted_objects:
                services.participant_remove_by_moderator(participant=participant, actor=request.user)
            for participant in changed:
                _save_participant(self, request, participant)

    def delete_model(self, request, obj: Room) -> None:
        services.room_delete_by_moderator(room=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        _each_atomically(queryset, lambda room: services.room_delete_by_moderator(room=room, actor=request.user))


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("id", "room", "user", "role", "last_read_seq", "joined_at")
    list_filter = ("role", "room__kind")
    search_fields = ("user__username", "room__name", "=room__id")
    list_select_related = ("room", "user")
    raw_id_fields = ("room", "user")
    readonly_fields = ("joined_at", "last_read_seq")
    ordering = ("-joined_at", "-id")

    def get_readonly_fields(self, request, obj=None):
        # Moving a membership to another room or user is a removal plus an invitation.
        return (*self.readonly_fields, "room", "user") if obj is not None else self.readonly_fields

    def save_model(self, request, obj: Participant, form, change) -> None:
        _save_participant(self, request, obj)

    def delete_model(self, request, obj: Participant) -> None:
        services.participant_remove_by_moderator(participant=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        _each_atomically(
            queryset,
            lambda participant: services.participant_remove_by_moderator(participant=participant, actor=request.user),
        )


@admin.register(RoomSanction)
class RoomSanctionAdmin(admin.ModelAdmin):
    """Moderators' mutes and bans in rooms: imposed by adding one here (or from the report
    queue), ended early with the lift action; through rooms.services, audited there."""

    list_display = ("id", "kind", "user", "room", "until", "active", "reason", "created_by", "created_at", "lifted_at")
    list_filter = ("kind", ("lifted_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username", "room__name", "=room__id")
    list_select_related = ("user", "room", "created_by")
    raw_id_fields = ("room", "user")
    fields = ("room", "user", "kind", "until", "reason", "created_by", "created_at", "lifted_at", "lifted_by")
    readonly_fields = ("created_by", "created_at", "lifted_at", "lifted_by")
    ordering = ("-created_at", "-id")
    actions = ["lift"]

    @admin.display(description="in force", boolean=True)
    def active(self, sanction: RoomSanction) -> bool:
        return sanction.is_active()

    def get_readonly_fields(self, request, obj=None):
        # A sanction is the record of what was done: end it with "lift", impose a new one to change it.
        return self.fields if obj is not None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        class SanctionForm(form):
            def clean_until(self):
                until = self.cleaned_data.get("until")
                if until is not None and until <= timezone.now():
                    raise forms.ValidationError("A sanction must end in the future (or be left empty: until lifted).")
                return until

        return SanctionForm

    def save_model(self, request, obj: RoomSanction, form, change) -> None:
        if change:
            return
        try:
            imposed = services.room_sanction_impose(
                room=obj.room, user=obj.user, kind=obj.kind, until=obj.until, reason=obj.reason, actor=request.user
            )
            obj.pk = imposed.pk
        except ChatError as exc:
            self.message_user(request, exc.detail, messages.ERROR)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Lift (end now)", permissions=["change"])
    def lift(self, request, queryset) -> None:
        lifted = sum(services.room_sanction_lift(sanction=s, actor=request.user) for s in queryset)
        self.message_user(request, f"Lifted {lifted} sanction(s).", messages.SUCCESS)


def _each_atomically(queryset, action) -> None:
    """A bulk delete from the changelist: the service for each row (its events), all or none."""
    with transaction.atomic():
        for obj in queryset:
            action(obj)


def _save_participant(model_admin, request, participant: Participant) -> None:
    """Add a new participant or apply a role change, through the services."""
    try:
        if participant.pk is None:
            added = services.participant_add(room=participant.room, user_id=participant.user_id, moderator=request.user)
            if participant.role != added.role:
                services.participant_role_set_by_moderator(participant=added, role=participant.role, actor=request.user)
            participant.pk = added.pk
        else:
            services.participant_role_set_by_moderator(
                participant=Participant.objects.get(pk=participant.pk), role=participant.role, actor=request.user
            )
    except ChatError as exc:
        model_admin.message_user(request, exc.detail, messages.ERROR)
