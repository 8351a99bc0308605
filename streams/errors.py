"""The error codes shared by WebSocket `error` frames and REST error bodies."""

UNAUTHENTICATED = "unauthenticated"
NOT_MEMBER = "not_member"
RATE_LIMITED = "rate_limited"
TOO_LARGE = "too_large"
INVALID = "invalid"
UNAVAILABLE = "unavailable"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
# HTTP 415: an upload whose content is not a type the server accepts, or whose name lies about it.
UNSUPPORTED_TYPE = "unsupported_type"
# Moderation (docs/moderation.md): muted in the room, banned from it, the account suspended.
MUTED = "muted"
BANNED = "banned"
SUSPENDED = "suspended"
# HTTP 500: an unexpected server fault (logged); unlike `unavailable`, not a "retry later" signal.
INTERNAL = "internal"


class ChatError(Exception):
    """A refusal a client should see: a code from this module and a human-readable detail.

    Services raise it; WebSocket consumers turn it into an ``error`` frame and REST views into
    ``{"error": {"code", "detail"}}`` with the matching HTTP status.
    """

    status = {
        UNAUTHENTICATED: 401,
        NOT_MEMBER: 403,
        FORBIDDEN: 403,
        RATE_LIMITED: 429,
        TOO_LARGE: 413,
        INVALID: 400,
        UNAVAILABLE: 503,
        NOT_FOUND: 404,
        CONFLICT: 409,
        UNSUPPORTED_TYPE: 415,
        INTERNAL: 500,
        MUTED: 403,
        BANNED: 403,
        SUSPENDED: 403,
    }

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    @property
    def http_status(self) -> int:
        return self.status.get(self.code, 400)
