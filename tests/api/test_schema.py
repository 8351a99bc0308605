"""The OpenAPI schema is complete enough to write a client from it alone."""

from __future__ import annotations

import pytest

from chat_messages.models import Reaction
from streams import errors
from tests.api.support import operations, schema_document

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def document():
    return schema_document()


def test_the_schema_and_its_docs_page_are_served(client):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")
    assert schema.status_code == 200 and b"openapi: 3" in schema.content
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_every_operation_has_an_id_a_summary_and_a_successful_answer_with_its_body(document):
    ids = set()
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation.get("operationId") and operation["operationId"] not in ids, where
        ids.add(operation["operationId"])
        assert operation.get("summary") or operation.get("description"), where
        successes = {code: answer for code, answer in operation["responses"].items() if code.startswith("2")}
        assert successes, where
        for code, answer in successes.items():
            if path.endswith(("/file/", "/thumbnail/", "/download/")):  # a file's bytes (an attachment, an export)
                assert answer["content"]["*/*"]["schema"] == {"type": "string", "format": "binary"}, where
            elif code != "204" and not (code == "202" and method in ("patch", "delete")):
                assert answer["content"]["application/json"]["schema"], (where, code)


def test_no_operation_is_described_by_a_base_class_written_for_maintainers(document):
    """A view without a description of its own inherits no docstring of the REST base classes."""
    import inspect

    from streams.web.api import ChatAPIView

    note = inspect.getdoc(ChatAPIView).splitlines()[0]
    described = [(m, p) for m, p, operation in operations(document) if note in operation.get("description", "")]
    assert described == []


def test_every_request_body_is_json_with_a_schema(document):
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body is not None and path.endswith("/attachments/"):  # an upload: the file, multipart
            assert list(body["content"]) == ["multipart/form-data"], (method, path)
            assert body["content"]["multipart/form-data"]["schema"], (method, path)
        elif body is not None:
            assert list(body["content"]) == ["application/json"], (method, path)
            assert body["content"]["application/json"]["schema"], (method, path)
        elif method in ("post", "patch"):
            assert path.endswith("/join/"), f"{method.upper()} {path} documents no body"


def test_every_operation_documents_its_errors_in_the_one_error_shape(document):
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        failures = {code for code in responses if code[0] in "45"}
        assert {"401", "429"} <= failures, where
        if "{" in path:
            assert "404" in failures, f"{where}: a malformed id is a 404"
        if operation.get("requestBody") or any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert "400" in failures, f"{where}: bad input is a 400"
        for code in failures:
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (where, code)
            assert responses[code]["description"], (where, code)


def test_the_error_shape_lists_the_shared_codes(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = document["components"]["schemas"][error["properties"]["error"]["$ref"].rsplit("/", 1)[-1]]
    codes = document["components"]["schemas"][detail["properties"]["code"]["$ref"].rsplit("/", 1)[-1]]["enum"]
    shared = {value for name, value in vars(errors).items() if name.isupper() and isinstance(value, str)}
    assert set(codes) == shared


def test_every_path_parameter_is_a_positive_bigint_or_a_reaction(document):
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                continue
            if parameter["name"] == "emoji":
                assert set(parameter["schema"]["enum"]) == set(Reaction.REACTIONS), (method, path)
            else:
                assert parameter["schema"]["type"] == "integer" and parameter["schema"]["minimum"] == 1, (method, path)
