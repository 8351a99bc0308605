"""Helpers of the cross-cutting API tests."""

from __future__ import annotations

import json


def schema_document() -> dict:
    """The OpenAPI document as /api/schema/ serves it, generated from the code in this process."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def operations(document: dict):
    """(method, path, operation) of every operation in the document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def error(response) -> tuple[int, str]:
    """(status, error code) of a JSON error answer."""
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.status_code, response.json()["error"]["code"]
