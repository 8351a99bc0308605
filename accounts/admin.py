"""Admin of accounts: users (deleted only through the deletion service) and deletion progress.

Every change made here is in the audit log: through the account services where they do the
work, else recorded by ``AuditedModelAdmin`` (users' fields, permission groups, devices, API tokens).
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.authtoken.admin import TokenAdmin as DRFTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from audit.admin import AuditedModelAdmin
from audit.services import audit_record
from streams.web.admin import ReadOnlyModelAdmin

from . import services
from .forms import UserAddForm, UserEditForm
from .models import AccountDeletion, Device, User


class SuspensionActionForm(ActionForm):
    """The action bar of users, with the reason a suspension gives (shown to the user)."""

    reason = forms.CharField(required=False, label="Reason", widget=forms.TextInput(attrs={"size": 40}))


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    """Django's user admin, where deleting and deactivating go through the account services.

    The stock delete would cascade without handing rooms on or announcing the change, and its
    confirmation page lists every message of the user; both delete actions below replace it.
    Unticking "Active" (or the deactivate action) also signs the user out everywhere at once:
    their open sockets close with 4401, their sessions and API token go. Usernames added or
    changed here follow the sign-up rules (accounts/usernames.py).
    """

    form = UserEditForm
    add_form = UserAddForm
    list_display = ("username", "is_active", "suspension", "is_staff", "date_joined", "last_login")
    actions = [
        "deactivate", "suspend_24h", "suspend_7d", "suspend_until_lifted", "unsuspend",
        "delete_keep_messages", "delete_erase_messages",
    ]  # fmt: skip
    action_form = SuspensionActionForm
    readonly_fields = ("suspended_at", "suspended_until", "suspension_reason")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return (*fieldsets, ("Suspension", {"fields": self.readonly_fields}))

    @admin.display(description="suspended")
    def suspension(self, user: User) -> str:
        if not user.is_suspended():
            return ""
        return f"until {user.suspended_until:%Y-%m-%d %H:%M}" if user.suspended_until else "until lifted"

    def _suspend(self, request, queryset: QuerySet, until) -> None:
        reason = request.POST.get("reason", "").strip()
        count = 0
        for user in queryset:
            if user.pk == request.user.pk:
                self.message_user(request, "You cannot suspend your own account.", messages.WARNING)
                continue
            services.account_suspend(user=user, until=until, reason=reason, actor=request.user)
            count += 1
        self.message_user(request, f"Suspended {count} account(s); their sockets are closed.", messages.SUCCESS)

    @admin.action(description="Suspend for 24 hours (reason above; sign out everywhere)", permissions=["change"])
    def suspend_24h(self, request, queryset: QuerySet) -> None:
        self._suspend(request, queryset, timezone.now() + timedelta(hours=24))

    @admin.action(description="Suspend for 7 days (reason above; sign out everywhere)", permissions=["change"])
    def suspend_7d(self, request, queryset: QuerySet) -> None:
        self._suspend(request, queryset, timezone.now() + timedelta(days=7))

    @admin.action(description="Suspend until lifted (reason above; sign out everywhere)", permissions=["change"])
    def suspend_until_lifted(self, request, queryset: QuerySet) -> None:
        self._suspend(request, queryset, None)

    @admin.action(description="Lift the suspension", permissions=["change"])
    def unsuspend(self, request, queryset: QuerySet) -> None:
        lifted = sum(services.account_unsuspend(user=user, actor=request.user) for user in queryset)
        self.message_user(request, f"Lifted {lifted} suspension(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change) -> None:
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Saving is_active=False alone would leave their open tabs talking until they reconnect.
            # Before the save: the service then finds the account active, as the audit log should.
            services.account_deactivate(user=obj, actor=request.user)
        super().save_model(request, obj, form, change)

    def user_change_password(self, request, id, form_url=""):
        # Django's view, with the password set here recorded (never the hash): a moderator who can
        # set anyone's password can become anyone.
        with transaction.atomic():
            user = self.get_object(request, unquote(id))
            before = user.password if user is not None else None
            response = super().user_change_password(request, id, form_url)
            if user is not None and request.method == "POST":
                user.refresh_from_db(fields=["password"])
                if user.password != before:
                    audit_record(
                        action="user.password_set_by_admin", actor=request.user, target_type="user",
                        target_id=user.pk, after={"usable_password": user.has_usable_password()},
                        detail=f"password of {user.username} set in the admin",
                    )  # fmt: skip
        return response

    @admin.action(description="Deactivate account (sign out everywhere, close open sockets)", permissions=["change"])
    def deactivate(self, request, queryset: QuerySet) -> None:
        count = 0
        for user in queryset.filter(is_active=True):
            if user.pk == request.user.pk:
                self.message_user(request, "You cannot deactivate your own account from here.", messages.WARNING)
                continue
            services.account_deactivate(user=user, actor=request.user)
            count += 1
        self.message_user(request, f"Deactivated {count} account(s).", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_purge_permission(self, request) -> bool:
        return request.user.has_perm("accounts.delete_user")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Delete account (keep messages as “deleted user”)", permissions=["purge"])
    def delete_keep_messages(self, request, queryset: QuerySet) -> None:
        self._delete(request, queryset, erase_messages=False)

    @admin.action(description="Delete account and erase its messages", permissions=["purge"])
    def delete_erase_messages(self, request, queryset: QuerySet) -> None:
        self._delete(request, queryset, erase_messages=True)

    def _delete(self, request, queryset: QuerySet, *, erase_messages: bool) -> None:
        done = queued = 0
        for user in queryset:
            if user.pk == request.user.pk:
                self.message_user(request, "You cannot delete your own account from here.", messages.WARNING)
                continue
            deletion = services.account_delete_request(
                user=user, erase_messages=erase_messages, requested_by=request.user.username, actor=request.user
            )
            if deletion.status == AccountDeletion.Status.DONE:
                done += 1
            else:
                queued += 1
        if done:
            self.message_user(request, f"Deleted {done} account(s).", messages.SUCCESS)
        if queued:
            self.message_user(
                request,
                f"{queued} large account(s) deactivated; their purge runs in the background (see Account deletions).",
                messages.INFO,
            )


@admin.register(AccountDeletion)
class AccountDeletionAdmin(ReadOnlyModelAdmin):
    """Progress of account deletions; a failed or stuck purge can be run again (it resumes)."""

    list_display = (
        "username", "user_id", "status", "progress_display", "erase_messages", "requested_by", "requested_at",
        "finished_at",
    )  # fmt: skip
    list_filter = ("status", "erase_messages")
    search_fields = ("username", "=user_id")
    ordering = ("-requested_at",)
    actions = ["run_again"]
    readonly_fields = (
        "user_id", "username", "erase_messages", "requested_by", "status", "progress_display", "messages_total",
        "messages_done", "room_ids", "error", "requested_at", "finished_at",
    )  # fmt: skip
    fields = readonly_fields

    @admin.display(description="progress")
    def progress_display(self, obj: AccountDeletion) -> str:
        return f"{obj.progress}% ({obj.messages_done}/{obj.messages_total} messages)"

    def has_purge_permission(self, request) -> bool:
        return request.user.has_perm("accounts.delete_user")

    @admin.action(description="Run the purge again (resumes where it stopped)", permissions=["purge"])
    def run_again(self, request, queryset: QuerySet) -> None:
        unfinished = list(queryset.exclude(status=AccountDeletion.Status.DONE))
        for deletion in unfinished:
            audit_record(
                action="account.purge_rerun_by_admin", actor=request.user, target_type="user",
                target_id=deletion.user_id, before={"deletion": deletion.pk, "status": deletion.status,
                                                    "error": deletion.error},
                detail=f"purge of {deletion.username} queued again",
            )  # fmt: skip
            services.account_purge_enqueue(deletion=deletion)
        self.message_user(request, f"Queued {len(unfinished)} purge(s).", messages.INFO)


@admin.register(Device)
class DeviceAdmin(AuditedModelAdmin):
    """Devices registered for push: seen and removed here (a lost phone), never edited."""

    audit_exclude = ("token",)  # it addresses the phone: not for the log

    list_display = ("id", "user", "platform", "name", "created_at", "last_seen_at")
    list_filter = ("platform",)
    search_fields = ("user__username", "name")
    list_select_related = ("user",)
    readonly_fields = ("user", "platform", "token", "name", "created_at", "last_seen_at")

    def has_add_permission(self, request) -> bool:
        return False  # a device registers itself, with a token only its push service knows


# Permission groups decide who moderates: their changes are in the audit log too.
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(AuditedModelAdmin, DjangoGroupAdmin):
    pass


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(AuditedModelAdmin, DRFTokenAdmin):
    """DRF's API token admin; deleting one is a revoke (the sockets opened with it close), and
    the key, a password, never reaches the audit log."""

    audit_name = "token"
    audit_exclude = ("key",)

    def audit_target(self, obj) -> tuple[str, str]:
        return "user", str(obj.user_id)

    def audit_describe(self, obj) -> str:
        return f"API token of {obj.user}"

    def delete_model(self, request, obj) -> None:
        services.token_revoke(user=obj.user, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for token in queryset.select_related("user"):
                services.token_revoke(user=token.user, actor=request.user)
