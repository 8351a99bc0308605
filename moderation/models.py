"""Reports of messages by members, and moderators' warnings to users.

The sanctions themselves live where they are enforced (rooms.RoomSanction, accounts' suspension
fields); these are the records that lead to them and the word a moderator sends.
"""

from django.conf import settings
from django.db import models


class Report(models.Model):
    """A member's report of a message in a room they are in; moderators work them in the admin.

    One open report per reporter and message (reporting again is a no-op). Handling a message's
    reports (any action, or dismissing) resolves every open report of that message at once.
    """

    class Reason(models.TextChoices):
        SPAM = "spam", "Spam"
        ABUSE = "abuse", "Abuse or harassment"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACTIONED = "actioned", "Actioned"
        DISMISSED = "dismissed", "Dismissed"

    # The message goes with its room (or retention); its reports with it.
    message = models.ForeignKey("chat_messages.Message", on_delete=models.CASCADE, related_name="+")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports_made"
    )
    reason = models.CharField(max_length=5, choices=Reason.choices)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True, help_text="What was done, in words (the action, by whom).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "reporter"], condition=models.Q(status="open"), name="one_open_report_per_reporter"
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="report_queue_idx")]

    def __str__(self) -> str:
        return f"report {self.pk} of message {self.message_id} ({self.status})"


class ModerationWarning(models.Model):
    """A moderator's warning to a user: sent live (``moderation.warning.v1``) and listed to them
    until they dismiss it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_warnings")
    text = models.TextField()
    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.SET_NULL, related_name="warnings")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="warning_by_user_idx")]

    def __str__(self) -> str:
        return f"warning {self.pk} to {self.user_id}"
