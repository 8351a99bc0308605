"""The audit log in the admin, read-only for everyone; and the mixin that records admin form edits.

Nobody adds, changes or deletes an entry here, superusers included: a log its readers can edit
proves nothing. Viewing needs the ``audit.view_auditentry`` permission (superusers have it).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.utils.html import format_html, format_html_join

from streams.web.admin import ReadOnlyModelAdmin

from .models import AuditEntry
from .services import audit_record, audit_values


def _json(value, *, indent: int | None = None) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True, indent=indent)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    list_display = ("at", "actor_display", "action", "target_display", "short_detail", "ip")
    list_filter = ("action", ("actor", admin.RelatedOnlyFieldListFilter), "target_type")
    date_hierarchy = "at"
    search_fields = ("actor_username", "=target_id", "detail")
    ordering = ("-at", "-id")
    show_full_result_count = False  # counting a long log on every page is slow
    fields = (
        "at", "actor", "actor_username", "action", "target_type", "target_id", "changes", "before_json",
        "after_json", "detail", "ip",
    )  # fmt: skip
    readonly_fields = fields

    @admin.display(description="actor", ordering="actor_username")
    def actor_display(self, entry: AuditEntry) -> str:
        if entry.actor_id is None and entry.actor_username:
            return f"{entry.actor_username} (deleted)"
        return entry.actor_username or "system"

    @admin.display(description="target")
    def target_display(self, entry: AuditEntry) -> str:
        return f"{entry.target_type} {entry.target_id}".strip()

    @admin.display(description="detail")
    def short_detail(self, entry: AuditEntry) -> str:
        return entry.detail if len(entry.detail) <= 100 else entry.detail[:99] + "…"

    @admin.display(description="changes")
    def changes(self, entry: AuditEntry) -> str:
        """Each key of before/after on a line of its own, the changed ones marked."""
        before = entry.before if isinstance(entry.before, dict) else {}
        after = entry.after if isinstance(entry.after, dict) else {}
        keys = sorted(set(before) | set(after))
        if not keys:
            return "-"
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    key,
                    _json(before[key]) if key in before else "",
                    _json(after[key]) if key in after else "",
                    "changed" if before.get(key, ...) != after.get(key, ...) else "",
                )
                for key in keys
            ),
        )
        return format_html(
            "<table><thead><tr><th>field</th><th>before</th><th>after</th><th></th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="before")
    def before_json(self, entry: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", _json(entry.before, indent=2)) if entry.before is not None else "-"

    @admin.display(description="after")
    def after_json(self, entry: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", _json(entry.after, indent=2)) if entry.after is not None else "-"


class AuditedModelAdmin(admin.ModelAdmin):
    """Records the admin's own add, change and delete of a model with no service to do it.

    Mix in before ``admin.ModelAdmin`` (or a subclass) for models the admin edits directly
    (users' fields, permission groups): each save is ``<name>.added_by_admin`` /
    ``<name>.changed_by_admin`` with the changed form fields before and after, each deletion
    ``<name>.deleted_by_admin`` with the row's values. Models changed through a service record
    there instead (the service knows what the change means). Fields named like a password, and
    ``audit_exclude``, never reach the log.
    """

    audit_name: str | None = None  # the action's first word; the model's name if not set
    audit_exclude: tuple[str, ...] = ("password",)

    def audit_target(self, obj) -> tuple[str, str]:
        """(target_type, target_id) of the entry."""
        return self.model._meta.model_name, str(obj.pk)

    def audit_describe(self, obj) -> str:
        """The object as the entry's detail names it (override where ``str()`` shows a secret)."""
        return str(obj)

    def save_model(self, request, obj, form, change) -> None:
        before = {}
        if change:
            before = {name: _form_value(form, name, form.initial.get(name)) for name in self._audited(form)}
        super().save_model(request, obj, form, change)
        after = {name: _form_value(form, name, form.cleaned_data.get(name)) for name in self._audited(form)}
        if change and not after:
            return  # saved unchanged
        self._record(request, obj, "changed" if change else "added", before=before if change else None, after=after)

    def delete_model(self, request, obj) -> None:
        self._record(request, obj, "deleted", before=self._values(obj), after=None)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self._record(request, obj, "deleted", before=self._values(obj), after=None)
        super().delete_queryset(request, queryset)

    def _audited(self, form) -> list[str]:
        return [n for n in form.changed_data if "password" not in n and n not in self.audit_exclude]

    def _values(self, obj) -> dict:
        exclude = tuple(f.name for f in obj._meta.concrete_fields if "password" in f.name) + self.audit_exclude
        return audit_values(obj, exclude=exclude)

    def _record(self, request, obj, verb: str, *, before: dict | None, after: dict | None) -> None:
        target_type, target_id = self.audit_target(obj)
        audit_record(
            action=f"{self.audit_name or self.model._meta.model_name}.{verb}_by_admin",
            actor=request.user,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
            detail=f"{verb} in the admin: {self.audit_describe(obj)}",
        )


def _form_value(form, name: str, value):
    """A form field's initial or cleaned value as JSON: rows by their name, several sorted.

    A foreign key's initial value is its id while the cleaned one is the row: both become the
    row's name, so before and after compare.
    """
    field = form.fields.get(name)
    single_row = isinstance(field, ModelChoiceField) and not isinstance(field, ModelMultipleChoiceField)
    if single_row and value is not None and not isinstance(value, models.Model):
        value = field.queryset.filter(pk=value).first() or value
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, (models.QuerySet, list, tuple, set)):
        return sorted((str(v) if isinstance(v, models.Model) else v for v in value), key=str)
    return value
