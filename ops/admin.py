"""The admin's Pipeline page: consumer lag, batch sizes and rates, dead letters (re-drive, discard),
Celery beat's schedule and its tasks' last runs. The same figures as /metrics (ops.selectors)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from rest_framework.throttling import BaseThrottle

from streams.pipeline.kafka import KafkaUnavailable

from . import selectors, services
from .models import Pipeline

# Dead letters shown per partition of the topic (the newest).
LIST_LAST = 50


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        # The page only: the marks behind it are not for a person to add, change or delete.
        meta = self.model._meta
        name = f"{meta.app_label}_{meta.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._act(request)
        handled = request.GET.get("handled") == "1"
        sources = selectors.pipeline_status(
            timeout=settings.METRICS_TIMEOUT_S, dead_letter_list=LIST_LAST, handled=handled
        )
        redis = sources["redis"].value or {}
        consumers = redis.get("consumers") or []
        groups = []
        for row in sources["kafka"].value or []:
            mine = [c for c in consumers if c["group"] == row["group"]]
            groups.append({**row, "processes": mine})
        known = {row["group"] for row in groups}
        context = {
            **self.admin_site.each_context(request),
            "title": "Pipeline",
            "opts": self.model._meta,
            "sources": sources,
            "down": [s for s in sources.values() if not s.ok],
            "groups": groups,
            # Processes of groups the broker was not asked about (it was down, or they are not configured).
            "other_consumers": [c for c in consumers if c["group"] not in known],
            "dead_letters": sources["dead_letters"].value,
            "letters": sources["dead_letter_list"].value,
            "letters_error": sources["dead_letter_list"].error,
            "handled": handled,
            "search": sources["search"].value,
            "index_lag": ((sources["search"].value or {}).get("lag") or {}).get("chat-index"),
            "capture": sources["capture"].value if "capture" in sources else None,
            "schedule": selectors.beat_schedule(redis.get("tasks")),
            "tasks_known": "tasks" in redis,
            "can_act": self.has_change_permission(request),
            "list_last": LIST_LAST,
        }
        return TemplateResponse(request, "admin/ops/pipeline.html", context)

    def _act(self, request):
        """POST ``action`` (redrive | discard) with the letter's ``partition``, ``offset`` and ``digest``."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        action = request.POST.get("action")
        try:
            place = {
                "partition": int(request.POST["partition"]),
                "offset": int(request.POST["offset"]),
                "digest": request.POST["digest"],
            }
        except (KeyError, ValueError):
            messages.error(request, "The dead letter was not named (partition, offset, digest).")
            return HttpResponseRedirect(request.get_full_path())
        act = {"redrive": services.dead_letter_redrive, "discard": services.dead_letter_discard}.get(action)
        if act is None:
            messages.error(request, f"Unknown action {action!r}.")
            return HttpResponseRedirect(request.get_full_path())
        try:
            letter = act(**place, actor=request.user, ip=BaseThrottle().get_ident(request))
        except services.DeadLetterRefused as exc:
            messages.error(request, str(exc))
        except KafkaUnavailable as exc:
            messages.error(request, f"Nothing was done: {exc}")
        else:
            done = "re-driven" if action == "redrive" else "discarded"
            messages.success(request, f"Dead letter {letter.place} ({letter.kind}, {letter.failed_group}) {done}.")
        return HttpResponseRedirect(request.get_full_path())
