"""The OpenAPI schema class of the REST API (``DEFAULT_SCHEMA_CLASS``)."""

from __future__ import annotations

import inspect

from drf_spectacular.openapi import AutoSchema


class ChatAutoSchema(AutoSchema):
    """drf-spectacular's schema, without a base class's docstring as an operation's description.

    An operation is described by its ``extend_schema`` or its own view's docstring; a view with
    neither would otherwise show ChatAPIView's notes for maintainers to the API's users.
    """

    def get_description(self) -> str:
        from .api import ChatAPIView  # DRF loads this class while its settings load: not at import

        description = super().get_description()
        return "" if description == inspect.getdoc(ChatAPIView) else description
