"""The moderators' report queue and warnings in the Django admin.

Open reports come first, each with how many open reports its message has; a report's page shows
the message in its room's context. The actions go through moderation.services.report_act, which
calls the sanction's own service (audited there) and resolves every open report of the message
(audited here). Reports are never edited or deleted by hand: they are the record.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from streams.errors import ChatError
from streams.pipeline.kafka import KafkaUnavailable
from streams.web.admin import ReadOnlyModelAdmin

from . import selectors, services
from .models import ModerationWarning, Report

BODY_EXCERPT = 80


class ReportActionForm(ActionForm):
    """The changelist's action bar, with the words a warning sends (a default if left empty)."""

    text = forms.CharField(required=False, label="Warning text", widget=forms.TextInput(attrs={"size": 50}))


def _act(action: str, duration: timedelta | None = None):
    """An admin action applying ``action`` to the messages of the selected reports, once each."""

    def run(model_admin: ReportAdmin, request, queryset: QuerySet[Report]) -> None:
        done, seen = [], set()
        text = request.POST.get("text", "")
        for report in queryset.select_related("message").order_by("pk"):
            if report.message_id in seen:
                continue  # one action per message, whatever the number of its reports selected
            seen.add(report.message_id)
            try:
                done.append(services.report_act(report=report, action=action, actor=request.user,
                                                duration=duration, text=text))  # fmt: skip
            except (ChatError, KafkaUnavailable) as exc:
                detail = exc.detail if isinstance(exc, ChatError) else str(exc)
                model_admin.message_user(request, f"Report {report.pk}: {detail}", messages.ERROR)
        if done:
            model_admin.message_user(request, "; ".join(done), messages.SUCCESS)

    run.__name__ = f"{action}_{int(duration.total_seconds() // 3600)}h" if duration else action
    return run


DESCRIPTIONS = {
    "dismiss": "Dismiss (nothing wrong)",
    "delete": "Delete the message for everyone",
    "warn": "Warn the sender (with the text above, or a default)",
    "mute_1h": "Mute the sender in the room for 1 hour",
    "mute_24h": "Mute the sender in the room for 24 hours",
    "mute_168h": "Mute the sender in the room for 7 days",
    "ban": "Ban the sender from the room (until lifted)",
    "suspend_168h": "Suspend the sender's account for 7 days",
    "suspend": "Suspend the sender's account (until lifted)",
}
ACTIONS = [
    _act(services.DISMISS),
    _act(services.DELETE),
    _act(services.WARN),
    _act(services.MUTE, timedelta(hours=1)),
    _act(services.MUTE, timedelta(hours=24)),
    _act(services.MUTE, timedelta(days=7)),
    _act(services.BAN),
    _act(services.SUSPEND, timedelta(days=7)),
    _act(services.SUSPEND),
]
for _action in ACTIONS:
    admin.action(description=DESCRIPTIONS[_action.__name__], permissions=["change"])(_action)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = (
        "id", "status", "open_on_message", "reason", "excerpt", "room_link", "sender", "reporter", "created_at",
    )  # fmt: skip
    list_display_links = ("id", "excerpt")
    list_filter = ("status", "reason")
    search_fields = ("=id", "message__body", "reporter__username", "message__sender__username")
    list_select_related = ("message", "message__room", "message__sender", "reporter")
    action_form = ReportActionForm
    actions = ACTIONS
    fields = (
        "status", "reason", "note", "reporter", "created_at", "context", "handled_by", "handled_at", "resolution",
    )  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        # Open reports first, then the most reported messages, oldest first (waiting longest).
        open_first = Case(When(status=Report.Status.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField())
        queryset = selectors.reports_with_counts(super().get_queryset(request))
        return queryset.annotate(open_first=open_first).order_by("open_first", "-open_on_message", "created_at", "id")

    @admin.display(description="open reports of the message", ordering="open_on_message")
    def open_on_message(self, report: Report) -> int:
        return report.open_on_message

    @admin.display(description="message")
    def excerpt(self, report: Report) -> str:
        message = report.message
        return "(deleted)" if message.deleted_at else message.body[:BODY_EXCERPT]

    @admin.display(description="room")
    def room_link(self, report: Report) -> str:
        room = report.message.room
        return format_html('<a href="{}">{}</a>', reverse("admin:rooms_room_change", args=[room.pk]), room)

    @admin.display(description="sender")
    def sender(self, report: Report) -> str:
        sender = report.message.sender
        return sender.username if sender is not None else "deleted user"

    @admin.display(description="the message in its room")
    def context(self, report: Report) -> str:
        rows = format_html_join("\n", "{}", ((_context_row(line),) for line in selectors.report_context(report=report)))
        queue = reverse("admin:moderation_report_changelist") + f"?message__id__exact={report.message_id}"
        return format_html(
            '<table class="report-context"><tbody>{}</tbody></table>'
            '<p>The reported message is marked ▶ and bold. <a href="{}">Act on this message\'s reports</a>.</p>',
            rows,
            queue,
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _context_row(line: dict) -> SafeString:
    """One line of a report's context; the reported one marked ▶ and in bold (the admin's CSP
    allows no inline style)."""
    body = "(deleted)" if line["deleted"] else line["body"]
    cells = (
        format_html("▶ #{}", line["seq"]) if line["reported"] else format_html("#{}", line["seq"]),
        line["created_at"].strftime("%Y-%m-%d %H:%M"),
        line["sender"] or "(system)",
        format_html("<strong>{}</strong>", body) if line["reported"] else body,
    )
    return format_html("<tr>{}</tr>", format_html_join("", "<td>{}</td>", ((cell,) for cell in cells)))


@admin.register(ModerationWarning)
class ModerationWarningAdmin(ReadOnlyModelAdmin):
    """Warnings sent, read-only: they are sent from the report queue (or the user admin)."""

    list_display = ("id", "user", "text", "created_by", "created_at", "dismissed_at", "report")
    list_select_related = ("user", "created_by")
    search_fields = ("user__username", "text")
    readonly_fields = ("user", "text", "report", "created_by", "created_at", "dismissed_at")
