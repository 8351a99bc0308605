"""REST plumbing shared by the apps: one error shape for every failure."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from . import errors
from .kafka import KafkaUnavailable

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


def exception_handler(exc, context):
    """Render every error as ``{"error": {"code", "detail"}}`` with the WebSocket's codes."""
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
    """Per-user (per-IP when anonymous) throttle of one endpoint class; off with RATE_LIMITS=off."""

    def allow_request(self, request, view):
        if not settings.RATE_LIMITS_ENABLED:
            return True
        return super().allow_request(request, view)


class SendThrottle(_ScopedUserThrottle):
    scope = "send"


class ReadThrottle(_ScopedUserThrottle):
    scope = "read"


class WriteThrottle(_ScopedUserThrottle):
    scope = "write"


class SignupThrottle(_ScopedUserThrottle):
    scope = "signup"


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    class Detail(serializers.Serializer):
        code = serializers.ChoiceField(
            choices=[
                errors.UNAUTHENTICATED, errors.NOT_MEMBER, errors.FORBIDDEN, errors.NOT_FOUND, errors.INVALID,
                errors.RATE_LIMITED, errors.TOO_LARGE, errors.UNAVAILABLE, errors.CONFLICT,
            ]
        )  # fmt: skip
        detail = serializers.JSONField()

    error = Detail()


def error_responses(*statuses: int) -> dict:
    """drf-spectacular ``responses`` entries for the given error statuses (plus 401 and 429)."""
    wanted = {401, 429, *statuses}
    return {code: ErrorSerializer for code in sorted(wanted)}
