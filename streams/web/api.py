"""REST plumbing shared by the apps: one error shape for every failure, per-user throttles."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from streams import errors
from streams.pipeline.kafka import KafkaUnavailable
from streams.realtime.protocol import BIGINT_MAX

log = logging.getLogger(__name__)

# No query parameter of the API needs more (the longest, `q`, allows 200); a longer value is a
# mistake or an attack, refused before any field parses it (int() of 4,300 digits raises).
QUERY_VALUE_MAX_CHARS = 1000

_DRF_CODES = {
    exceptions.NotAuthenticated: errors.UNAUTHENTICATED,
    exceptions.AuthenticationFailed: errors.UNAUTHENTICATED,
    exceptions.PermissionDenied: errors.FORBIDDEN,
    exceptions.NotFound: errors.NOT_FOUND,
    exceptions.Throttled: errors.RATE_LIMITED,
    exceptions.ValidationError: errors.INVALID,
    exceptions.ParseError: errors.INVALID,
    exceptions.UnsupportedMediaType: errors.INVALID,
    exceptions.MethodNotAllowed: errors.INVALID,
    exceptions.NotAcceptable: errors.INVALID,
}


def error_response(code: str, detail, http_status: int) -> Response:
    return Response({"error": {"code": code, "detail": detail}}, status=http_status)


# Raised by parsing or storing a value a client sent that no validator caught (a date past year
# 9999 after arithmetic, a time zone PostgreSQL refuses, nesting deeper than the stack): the
# request is at fault, not the server. The validators are the first line; this is the net.
_INPUT_FAULTS = (RecursionError, OverflowError, DataError)


def exception_handler(exc, context):
    """Render every error as ``{"error": {"code", "detail"}}`` with the WebSocket's codes.

    Exceptions this does not know (bugs) are left to Django, which logs them with a traceback
    and answers through :func:`handler500`: 500 ``internal``.
    """
    if isinstance(exc, _INPUT_FAULTS):
        request = context.get("request")
        path = request.path if request is not None else "?"
        # A client's bad input, not a fault to page anyone about: one line, no traceback.
        log.warning("Refused %s: %s: %s", path, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
        return error_response(errors.INVALID, "A value in the request is out of range or malformed.", 400)
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body past DATA_UPLOAD_MAX_MEMORY_SIZE; left alone it would be
        # its HTML 400 page, not the API's shape.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        log.warning("Refused %s: a body over %s bytes", context["request"].path, limit)
        return error_response(errors.TOO_LARGE, f"The body is larger than {limit} bytes.", 413)
    if isinstance(exc, errors.ChatError):
        return error_response(exc.code, exc.detail, exc.http_status)
    if isinstance(exc, KafkaUnavailable):
        return error_response(errors.UNAVAILABLE, str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), errors.INVALID)
    detail = exc.detail if isinstance(exc, exceptions.ValidationError) else str(getattr(exc, "detail", exc))
    response.data = {"error": {"code": code, "detail": detail}}
    return response


class _ScopedUserThrottle(UserRateThrottle):
    """Per-user (per-IP when anonymous) throttle of one endpoint class; off with RATE_LIMITS=off.

    Each class (``scope``) has its own rate (settings ``THROTTLE_<SCOPE>``) and its own counter,
    so a client sending fast still reads, and reading fast never eats into sending.
    """

    def get_rate(self):
        # DRF binds the rates when it is imported; reading them per request lets a changed
        # setting (a test's override) take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if not settings.RATE_LIMITS_ENABLED:
            return True
        return super().allow_request(request, view)


class SendThrottle(_ScopedUserThrottle):
    """Sending messages: the strictest, each send is a Kafka write and a fan-out to every member."""

    scope = "send"


class ReadThrottle(_ScopedUserThrottle):
    """Reads, and reporting a read position (cheap, idempotent, frequent)."""

    scope = "read"


class WriteThrottle(_ScopedUserThrottle):
    """Other changes: rooms, members, edits, the drawer, tokens."""

    scope = "write"


class UploadThrottle(_ScopedUserThrottle):
    """Uploads (attachments): each one stores a file, and decodes an image."""

    scope = "upload"


class SignupThrottle(_ScopedUserThrottle):
    """Sign-ups, per client address: each one costs a password hash."""

    scope = "signup"


class LoginThrottle(_ScopedUserThrottle):
    """Password attempts per client address (web log-in and API token), against guessing."""

    scope = "login"


class ChatJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 ``invalid`` for nesting deeper than Python can decode.

    ``json`` decodes recursively: about 1,000 nested ``[`` raise RecursionError, which DRF does
    not catch (it is not a ValueError), so a 2 KB body reached the 500 handler without a login.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


class ChatAPIView(APIView):
    """The base of every REST view: JSON bodies only, reads and changes throttled apart.

    JSON only: one body format for every client keeps the schema exact (a form-encoded
    ``is_public=0`` is not the boolean the schema promises). Reads (GET, HEAD, OPTIONS) count
    against ``read_throttle``, everything else against ``write_throttle``.
    """

    parser_classes = [ChatJSONParser]
    read_throttle: type[_ScopedUserThrottle] = ReadThrottle
    write_throttle: type[_ScopedUserThrottle] = WriteThrottle

    def get_throttles(self):
        return [self.read_throttle() if self.request.method in SAFE_METHODS else self.write_throttle()]


_STRING_FIELDS = (serializers.CharField, serializers.ChoiceField, serializers.DateTimeField, serializers.UUIDField)


def _json_type_error(field: serializers.Field, value) -> str | None:
    """Why ``value`` (parsed JSON) is not of the JSON type the schema gives ``field``, or None."""
    if value is None:
        return None if field.allow_null else "This field may not be null."
    if isinstance(field, serializers.BooleanField):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(field, serializers.IntegerField):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(field, _STRING_FIELDS):
        ok, expected = isinstance(value, str), "a string"
    elif isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return "Expected a list."
        for item in value:
            problem = _json_type_error(field.child, item)
            if problem:
                return f"Each item: {problem}"
        return None
    else:
        return None  # nested serializers and JSON fields check their own shape
    return None if ok else f"Must be {expected}."


class JSONBodySerializer(serializers.Serializer):
    """A request body whose values must have exactly the types the schema shows.

    DRF reads form data, so it turns ``"5"`` into 5, ``1`` or ``"yes"`` into true and 5 into
    ``"5"``. JSON has real types: a client sending the wrong one has a bug, and hearing so at once
    beats a guess that happens to work.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            problems = {}
            for name, field in self.fields.items():
                if not field.read_only and name in data:
                    problem = _json_type_error(field, data[name])
                    if problem:
                        problems[name] = [problem]
            if problems:
                raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


_ASCII_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def _query_value_error(field: serializers.Field, value: str) -> str | None:
    """Why a query parameter's raw text cannot be a value of ``field``, or None."""
    if value == "" and not getattr(field, "allow_blank", False):
        return "Give a value, or leave the parameter out."
    if len(value) > QUERY_VALUE_MAX_CHARS:
        return f"At most {QUERY_VALUE_MAX_CHARS} characters."
    if isinstance(field, serializers.ListField):
        field = field.child
    # int() reads any Unicode digit ("١" is 1, "²" raises later): the schema says ASCII digits.
    if isinstance(field, serializers.IntegerField) and not _ASCII_INTEGER.fullmatch(value):
        return "A valid integer is required."
    return None


class QuerySerializer(serializers.Serializer):
    """Query parameters, checked as text before any field parses them.

    An empty value (``?before=``) is refused unless the field allows blank: DRF would take it as
    "not given"; the schema says a number, a date or a non-empty text, and a client sending an
    empty one most likely lost the value it meant to send. Every value has at most
    ``QUERY_VALUE_MAX_CHARS`` characters, and an integer is written in ASCII digits.
    """

    def to_internal_value(self, data):
        problems = {}
        for name, field in self.fields.items():
            values = data.getlist(name) if hasattr(data, "getlist") else ([data[name]] if name in data else [])
            for value in values:
                problem = _query_value_error(field, value) if isinstance(value, str) else None
                if problem:
                    problems[name] = [problem]
                    break
        if problems:
            raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


def validated(serializer_class, data) -> dict:
    """``data`` (a request body or query) checked by ``serializer_class``; 400 ``invalid`` if not."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def path_id(name: str, description: str) -> OpenApiParameter:
    """A bigint id in the path, documented as the route accepts it (a positive integer)."""
    schema = {"type": "integer", "format": "int64", "minimum": 1, "maximum": BIGINT_MAX}
    return OpenApiParameter(name, schema, OpenApiParameter.PATH, description=description)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    class Detail(serializers.Serializer):
        code = serializers.ChoiceField(
            choices=[
                errors.UNAUTHENTICATED, errors.NOT_MEMBER, errors.FORBIDDEN, errors.NOT_FOUND, errors.INVALID,
                errors.RATE_LIMITED, errors.TOO_LARGE, errors.UNAVAILABLE, errors.CONFLICT, errors.INTERNAL,
                errors.UNSUPPORTED_TYPE, errors.MUTED, errors.BANNED, errors.SUSPENDED,
            ]
        )  # fmt: skip
        detail = serializers.JSONField()

    error = Detail()


ERROR_DESCRIPTIONS = {
    400: "`invalid`: a parameter or the body is wrong; `detail` says which (by field for bodies).",
    401: "`unauthenticated`: no valid token or session.",
    403: "`not_member`: you are not in the room (or it does not exist: the answer is the same); "
    "`forbidden`: your role in it does not allow this; `muted`, `banned`, `suspended`: a moderator's sanction "
    "(docs/moderation.md), `detail` says until when.",
    404: "`not_found`: no such item (message, member, entry), or the URL names nothing.",
    409: "`conflict`: it exists already.",
    413: "`too_large`: the text (or the whole body, past DATA_UPLOAD_MAX_MEMORY_SIZE) is longer than the limit.",
    415: "`unsupported_type`: the file's content is not a type the server accepts, or its name claims another; "
    "`invalid`: the body is not multipart/form-data.",
    429: "`rate_limited`: too many requests of this kind; retry after the `Retry-After` header's seconds.",
    500: "`internal`: an unexpected server fault, logged for the operators; not a signal to retry.",
    503: "`unavailable`: the message log (Kafka) did not acknowledge in time; retry with the same client_msg_id.",
}


def error_responses(*statuses: int) -> dict:
    """drf-spectacular ``responses`` entries for the given error statuses (plus 401, 429 and 500)."""
    wanted = {401, 429, 500, *statuses}
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in sorted(wanted)}


def on_off_schema(*, response, errors: tuple[int, ...], put: dict, delete: dict):
    """The schema of an idempotent switch: PUT turns it on, DELETE off, neither with a body.

    ``put`` and ``delete`` hold each operation's ``operation_id``, ``summary`` and ``description``
    (as ``extend_schema`` takes them); both answer ``response`` or the ``errors``.
    """
    answers = {200: response, **error_responses(*errors)}
    return extend_schema_view(
        put=extend_schema(request=None, responses=answers, **put),
        delete=extend_schema(request=None, responses=answers, **delete),
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    """The site's 404 page (templates/404.html) for pages; the JSON error body for an unknown URL under /api/."""
    if _is_api(request):
        return JsonResponse({"error": {"code": errors.NOT_FOUND, "detail": "No such endpoint."}}, status=404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    """The site's 500 page (templates/500.html) for pages; the JSON error body under /api/, so clients parse one shape.

    The code is ``internal``, not ``unavailable``: a bug does not go away by retrying.
    """
    if _is_api(request):
        detail = "The server failed to answer this request; it has been logged."
        return JsonResponse({"error": {"code": errors.INTERNAL, "detail": detail}}, status=500)
    return defaults.server_error(request)
