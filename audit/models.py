"""The audit log: who did what to what, when, with the values before and after.

An entry is written in the transaction of the action it records (a rolled-back action leaves
none) and never changed afterwards: the admin shows entries and nothing else can edit them
there. The actor is kept twice: a link to the account while it exists, and its username as it
was, so entries about an account's deletion (often by the account itself) still say who did it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AuditEntry(models.Model):
    """One recorded action: a moderator's or an admin's, or a security-relevant event."""

    at = models.DateTimeField(auto_now_add=True)
    # Null for the system (a task, a throttle), and once the account is deleted: the username stays.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # the (actor, at) index below serves the lookups, the admin's filter and SET_NULL
    )
    actor_username = models.CharField(max_length=150, blank=True)
    # Dotted and stable ("message.deleted_by_moderator"): what filters and alerts match on.
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True)
    # Text: targets are users, rooms, messages, Kafka records ("topic:partition:offset")...
    target_id = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    detail = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [
            # The admin's list (newest first), its date hierarchy, and each of its filters.
            models.Index(fields=["-at"], name="audit_at_desc"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["actor", "-at"], name="audit_actor_at"),
            # "Everything that happened to this message / user / room."
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        target = f" {self.target_type}#{self.target_id}" if self.target_type or self.target_id else ""
        when = self.at.strftime("%Y-%m-%d %H:%M:%S") if self.at else "-"
        return f"{when} {self.actor_username or 'system'}: {self.action}{target}"

    def save(self, *args, **kwargs) -> None:
        # An entry is written once: rewriting one would make the log say what did not happen.
        if not self._state.adding:
            raise ValueError("An audit entry is never changed once written.")
        super().save(*args, **kwargs)
