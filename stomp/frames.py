"""The STOMP 1.0, 1.1 and 1.2 frame codec: pure functions and an incremental parser, no I/O.

A frame is ``COMMAND EOL (name:value EOL)* EOL body NUL``; EOL is LF, or CR LF (1.2, accepted from
every version since clients written for 1.0 send it too). Between frames any number of EOLs may
come: heart-beats. With ``content-length`` the body is exactly that many bytes (it may hold NUL);
without, it runs to the first NUL. Header escapes (``\\n``, ``\\c``, ``\\\\`` from 1.1, ``\\r`` from
1.2) apply to every frame but CONNECT and CONNECTED; 1.0 has none. A repeated header: the first
one counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VERSIONS = ("1.0", "1.1", "1.2")
NUL = b"\x00"

# Limits of what a client may send: a frame larger than these is refused before it is buffered.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS = 32
MAX_BODY_BYTES = 64 * 1024


class FrameError(ValueError):
    """A frame that cannot be parsed or is over a limit: the session answers ERROR and closes."""


@dataclass
class Frame:
    command: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


_ESCAPES_11 = {"\\": "\\\\", "\n": "\\n", ":": "\\c"}
_ESCAPES_12 = {**_ESCAPES_11, "\r": "\\r"}
_UNESCAPES_11 = {"\\": "\\", "n": "\n", "c": ":"}
_UNESCAPES_12 = {**_UNESCAPES_11, "r": "\r"}
_RAW = frozenset(("CONNECT", "STOMP", "CONNECTED"))  # frames whose headers are never escaped


def escape(value: str, version: str) -> str:
    """A header name or value as written on the wire in ``version``.

    1.0 has no escapes: a newline there would end the header, so it is written as a space.
    """
    if version == "1.0":
        return value.replace("\r", " ").replace("\n", " ")
    table = _ESCAPES_12 if version == "1.2" else _ESCAPES_11
    return "".join(table.get(ch, ch) for ch in value)


def unescape(value: str, version: str) -> str:
    """A header as read from the wire; an undefined escape (``\\t``, a trailing ``\\``) is an error."""
    if version == "1.0" or "\\" not in value:
        return value
    table = _UNESCAPES_12 if version == "1.2" else _UNESCAPES_11
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1 : i + 2]
            if nxt not in table:
                raise FrameError(f"Undefined escape sequence \\{nxt} in a header.")
            out.append(table[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def encode(frame: Frame, version: str = "1.2") -> bytes:
    """A frame's bytes; a ``content-length`` is added to any frame with a body."""
    raw = frame.command in _RAW
    lines = [frame.command]
    headers = dict(frame.headers)
    if frame.body and "content-length" not in headers:
        headers["content-length"] = str(len(frame.body))
    for name, value in headers.items():
        if raw:
            lines.append(f"{name}:{value}".replace("\n", " "))
        else:
            lines.append(f"{escape(name, version)}:{escape(str(value), version)}")
    return ("\n".join(lines) + "\n\n").encode() + frame.body + NUL


def heart_beat_parse(value: str | None) -> tuple[int, int]:
    """``cx,cy`` of a heart-beat header in milliseconds ((0, 0) when absent)."""
    if value is None:
        return 0, 0
    try:
        cx, cy = (int(part) for part in value.split(","))
    except ValueError:
        raise FrameError(f"Invalid heart-beat header {value!r}.") from None
    if cx < 0 or cy < 0:
        raise FrameError(f"Invalid heart-beat header {value!r}.")
    return cx, cy


def version_negotiate(accept_version: str | None) -> str | None:
    """The highest version both sides speak; 1.0 when the client names none; None: no common one."""
    if accept_version is None:
        return "1.0"
    offered = {v.strip() for v in accept_version.split(",")}
    common = [v for v in VERSIONS if v in offered]
    return common[-1] if common else None


class Parser:
    """Bytes in (WebSocket messages, SockJS strings: frames split or merged anyhow), frames out.

    ``version`` decides the header escapes; the session sets it once CONNECT is negotiated.
    ``heart_beats`` counts the EOLs seen between frames.
    """

    def __init__(
        self, *, max_header_bytes: int = MAX_HEADER_BYTES, max_headers: int = MAX_HEADERS,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:  # fmt: skip
        self.buffer = bytearray()
        self.version = "1.0"
        self.heart_beats = 0
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body_bytes = max_body_bytes

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        buf = self.buffer
        # Heart-beats: EOLs before a frame.
        start = 0
        while start < len(buf):
            if buf[start] == 0x0A:
                start += 1
                self.heart_beats += 1
            elif buf[start] == 0x0D and buf[start + 1 : start + 2] == b"\n":
                start += 2
                self.heart_beats += 1
            elif buf[start] == 0x0D and start + 1 == len(buf):
                break  # a CR whose LF is still to come
            elif buf[start] == 0x0D:
                raise FrameError("A CR not followed by LF between frames.")
            else:
                break
        if start:
            del buf[:start]
        if not buf or buf[0] == 0x0D:
            return None
        end = buf.find(b"\n\n")
        end_crlf = buf.find(b"\n\r\n")
        if end_crlf != -1 and (end == -1 or end_crlf < end):
            head_end, body_start = end_crlf, end_crlf + 3
        elif end != -1:
            head_end, body_start = end, end + 2
        else:
            if len(buf) > self.max_header_bytes:
                raise FrameError(f"Frame headers over {self.max_header_bytes} bytes.")
            return None
        if head_end > self.max_header_bytes:
            raise FrameError(f"Frame headers over {self.max_header_bytes} bytes.")
        try:
            head = bytes(buf[:head_end]).decode()
        except UnicodeDecodeError:
            raise FrameError("Frame headers are not UTF-8.") from None
        lines = [line.removesuffix("\r") for line in head.split("\n")]
        command = lines[0]
        if not command.isalpha() or not command.isupper():
            raise FrameError(f"Invalid command {command[:40]!r}.")
        if len(lines) - 1 > self.max_headers:
            raise FrameError(f"More than {self.max_headers} headers.")
        raw = command in _RAW
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise FrameError(f"Header line without a colon: {line[:40]!r}.")
            if not raw:
                name, value = unescape(name, self.version), unescape(value, self.version)
            headers.setdefault(name, value)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise FrameError(f"Invalid content-length {length[:20]!r}.")
            size = int(length)
            if size > self.max_body_bytes:
                raise FrameError(f"The body is {size} bytes; the limit is {self.max_body_bytes}.")
            if len(buf) < body_start + size + 1:
                return None
            if buf[body_start + size] != 0:
                raise FrameError("The frame does not end with NUL after content-length bytes.")
            body_end = body_start + size
        else:
            body_end = buf.find(NUL, body_start)
            if body_end == -1:
                if len(buf) - body_start > self.max_body_bytes:
                    raise FrameError(f"The body is over the limit of {self.max_body_bytes} bytes.")
                return None
            if body_end - body_start > self.max_body_bytes:
                raise FrameError(f"The body is over the limit of {self.max_body_bytes} bytes.")
        body = bytes(buf[body_start:body_end])
        del buf[: body_end + 1]
        return Frame(command, headers, body)
