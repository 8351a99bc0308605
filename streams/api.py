"""REST plumbing shared by the apps: one error shape for every failure."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
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
