"""REST shapes of data exports: the request in, the export and its progress out."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from streams.web.api import JSONBodySerializer

from .models import DataExport


# -- requests -------------------------------------------------------------------------------------
class ExportRequestSerializer(JSONBodySerializer):
    include_files = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Put the files of my attachments in the ZIP (while they total at most EXPORT_FILES_MAX_BYTES); "
        "false: their details only.",
    )


# -- answers --------------------------------------------------------------------------------------
class ExportProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(source="items_done", help_text="Rows written so far.")
    total = serializers.IntegerField(source="items_total", help_text="Rows to write (0 until counted).")
    percent = serializers.IntegerField(source="progress", help_text="100 only once the ZIP is ready.")


class ExportUrlsSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="This export, to poll.")
    download = serializers.CharField(allow_null=True, help_text="The ZIP, once `status` is `done`; else null.")


class DataExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DataExport.Status.choices)
    progress = ExportProgressSerializer(source="*")
    include_files = serializers.BooleanField()
    size = serializers.IntegerField(allow_null=True, help_text="The ZIP's size in bytes, once done.")
    error = serializers.CharField(allow_blank=True, help_text="Why it failed; empty otherwise.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the ZIP is deleted.")
    urls = serializers.SerializerMethodField()

    @extend_schema_field(ExportUrlsSerializer)
    def get_urls(self, export: DataExport) -> dict:
        ready = export.status == DataExport.Status.DONE and bool(export.file)
        return {
            "status": reverse("account-export", args=[export.pk]),
            "download": reverse("account-export-download", args=[export.pk]) if ready else None,
        }
