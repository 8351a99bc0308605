"""``python -m chatproject.serve``: daphne, with a stop that tells every client to reconnect.

Daphne's own stop cancels every connection's application at once, so clients see their socket
cut (1006) while a send may be on its way. This server first closes each WebSocket with 4503
("server stopping: reconnect and sync") and refuses new sockets and sends meanwhile; a client
following docs/protocol.md reconnects to a server that is up and re-sends what it still holds.
Accepts daphne's command line unchanged.

It also bounds what a socket that stops reading can cost: its frames wait here, counted, and past
``CHAT_SOCKET_MAX_BUFFER_BYTES`` it is closed with 4408 ("too slow: reconnect and sync").
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque

from daphne import http_protocol
from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import defer, tcp
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from chatproject import read_pause
from streams.realtime.protocol import CLOSE_TOO_SLOW, WRITE_TEXT_EXTENSION

log = logging.getLogger(__name__)

# A WebSocket message larger than this closes the socket with 1009 before it is buffered whole;
# up to it, frames over the consumer's 64 KB get an `invalid` error frame. Daphne's default is 1 MiB.
MAX_MESSAGE_BYTES = 128 * 1024
CLOSE_HANDSHAKE_TIMEOUT_S = 10
# How long a socket's backlog may stay over CHAT_SOCKET_MAX_BUFFER_BYTES while more frames arrive
# before it is closed with 4408: a burst to a client that reads is gone within milliseconds. Over
# SLOW_HARD_FACTOR times the cap it is closed at once, however briefly.
SLOW_GRACE_S = 1.0
SLOW_HARD_FACTOR = 8


def transport_buffered(transport) -> int:
    """Bytes written to ``transport`` that the kernel has not taken yet (Twisted's write buffer).

    A TCP or Unix socket transport is a Twisted ``FileDescriptor``: what waits is the unsent end
    of ``dataBuffer`` plus the list it appends to until the next write. Behind TLS the bytes wait
    in the wrapped transport, so the chain is followed down to it.
    """
    while transport is not None:
        data = getattr(transport, "dataBuffer", None)
        if data is not None:
            return len(data) - transport.offset + transport._tempDataLen
        transport = getattr(transport, "transport", None)
    return 0


# Larger frames (a sync page, a history answer) take autobahn's path, which also enforces the
# size limit on what is sent; the fan-out's frames are a few hundred bytes.
DIRECT_FRAME_MAX_CHARS = 16 * 1024
# Frames kept for the texts the hub is handing out, by the text's identity: it gives each socket
# of a group all of an event's frames before the next socket. A live event holds one to a few;
# a catch-up batch larger than this is framed per socket, as daphne would.
FRAMES_KEPT_BYTES = 256 * 1024
_frames: dict[int, tuple[str, bytes]] = {}
_frames_bytes = 0


def text_frame(text: str) -> bytes:
    """``text`` as one final, unmasked text frame (RFC 6455, 5.2), as autobahn writes it.

    A text is framed once per process, not once per socket: the hub hands the very same text
    object to every socket of the group, and its frame is kept (the text with it, so its identity
    cannot be reused) until the frames kept pass ``FRAMES_KEPT_BYTES``, when all are dropped.
    """
    global _frames_bytes
    kept = _frames.get(id(text))
    if kept is not None and kept[0] is text:
        return kept[1]
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    frame = header + payload
    if _frames_bytes > FRAMES_KEPT_BYTES:
        _frames.clear()
        _frames_bytes = 0
    _frames[id(text)] = (text, frame)
    _frames_bytes += len(frame) + len(text)
    return frame


def _plain_socket(transport) -> bool:
    """Whether ``transport`` is a TCP (or Unix) socket with nothing in between.

    Behind daphne's own TLS the transport is Twisted's TLS wrapper, which hands every attribute
    it lacks (``socket``, ``TLS``...) through to the TCP transport under it, so asking for those
    would find a plain socket where the bytes must be encrypted first.
    """
    return isinstance(transport, tcp.Server) and not transport.TLS


def send_now(transport, data: bytes) -> None:
    """Write ``data`` to the connection, straight to its socket when nothing waits before it.

    Twisted's write always buffers and sends once the socket is writable: two epoll changes and a
    turn of the reactor per frame and socket, most of what a delivery cost daphne once its frame
    was built. Like asyncio's transports, this sends at once and leaves Twisted only what the
    kernel did not take (or an error, which Twisted's own write then meets and reports). Plain TCP
    only: behind TLS the bytes go through Twisted's TLS layer.
    """
    if (
        _plain_socket(transport)
        and transport.connected
        and not transport._writeDisconnected
        and not transport_buffered(transport)
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:  # EAGAIN: the kernel's buffer is full; a reset or broken pipe: see above
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def _size(content: str | bytes) -> int:
    """Its length on the wire; ``isascii`` is a flag lookup, so JSON in ASCII is not encoded twice."""
    return len(content) if isinstance(content, bytes) or content.isascii() else len(content.encode())


def _max_buffer_bytes() -> int:
    from django.conf import settings

    return settings.CHAT_SOCKET_MAX_BUFFER_BYTES


@implementer(IPushProducer)
class BoundedWebSocketProtocol(WebSocketProtocol):
    """A WebSocket whose outgoing frames wait here, counted, while its reader is behind.

    Daphne writes every frame straight into Twisted's buffer, which grows without end for a client
    that stops reading (about 0.5 MB/s per socket under the bench's load, until the ping timeout
    cut it some 50 s later). Here the protocol is the transport's producer: once Twisted's buffer
    holds more than its ``bufferSize`` (64 KiB) it pauses us, and frames wait in ``held`` (the
    very texts the hub shares between sockets, not copies) until it has written everything out
    and resumes us. Other sockets never wait for this one: nothing here blocks.

    What waits for the socket is ``held`` plus Twisted's buffer. A burst may pass the cap for a
    moment (persist publishes a stored batch of up to 2,000 messages as one event, a `sync`
    answers a page at once) and is written out within milliseconds to a client that reads; a
    socket whose backlog stays over ``CHAT_SOCKET_MAX_BUFFER_BYTES`` for ``SLOW_GRACE_S`` while
    more arrives, or passes ``SLOW_HARD_FACTOR`` times it, is closed with 4408 ("too slow:
    reconnect and sync"). The held frames are dropped, so the close frame follows at most
    Twisted's 64 KiB and a client that reads again sees it at once, then catches up with `sync`;
    one that never reads is dropped when the close handshake times out (10 s). A stalled socket
    so costs at most the cap plus what arrives for it in a second, never more than 8 times the cap.

    The consumer's own outbox (chat_messages.consumers) hands its frames over without waiting
    (daphne's send never blocks), so for a slow reader everything it costs is counted here.
    """

    def connectionMade(self) -> None:  # noqa: N802 - Twisted's name
        super().connectionMade()
        self.held: deque[tuple[str | bytes, bool]] = deque()
        self.held_bytes = 0
        self.paused = False
        self.over_since: float | None = None  # when the backlog last went over the cap
        # Daphne hands the upgraded connection over from its HTTP channel, which stays registered
        # as the transport's producer: when the buffer filled, that one stopped *reading* the
        # socket (pongs and the client's close included). This protocol takes its place.
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()
        self.transport.registerProducer(self, True)

    def backlog(self) -> int:
        """Bytes waiting for this socket's reader in this process."""
        return self.held_bytes + transport_buffered(self.transport)

    def serverSend(self, content, binary=False) -> None:  # noqa: N802 - daphne's name
        if not (self.paused or self.held):
            super().serverSend(content, binary)
            return
        if self.state == self.STATE_CONNECTING:
            self.serverAccept()
        if self.state != self.STATE_OPEN:
            return
        self.held.append((content, binary))  # encoded when written, like daphne's own send
        self.held_bytes += _size(content)
        backlog, cap = self.backlog(), _max_buffer_bytes()
        if backlog <= cap:
            self.over_since = None
        elif backlog > SLOW_HARD_FACTOR * cap:
            self._close_too_slow()
        elif self.over_since is None:
            self.over_since = time.monotonic()
        elif time.monotonic() - self.over_since > SLOW_GRACE_S:
            self._close_too_slow()

    def write_text(self, content: str) -> None:
        """Write a text frame now: the fan-out's path (``WRITE_TEXT_EXTENSION``).

        What needs more than a write goes through ``serverSend``: a socket whose frames wait here,
        a compressed one, a large frame. A socket that is closing or gone drops it, as daphne's
        send does.
        """
        if self.state != self.STATE_OPEN:
            return
        if (
            self.paused
            or self.held
            or self.send_queue
            or self._perMessageCompress is not None
            or len(content) > DIRECT_FRAME_MAX_CHARS
        ):
            self.serverSend(content, False)
            return
        send_now(self.transport, text_frame(content))

    def _close_too_slow(self) -> None:
        waiting = self.backlog()
        self.held.clear()
        self.held_bytes = 0
        log.info(
            "closing a WebSocket (%s) that reads too slowly: %d bytes waiting for it (4408)",
            ":".join(map(str, self.client_addr or ())) or "?",
            waiting,
        )
        self.serverClose(code=CLOSE_TOO_SLOW)

    # IPushProducer: Twisted pauses us when its buffer is full and resumes us when it is empty.
    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.paused = False
        # A write that fills Twisted's buffer again pauses us from inside sendMessage.
        while self.held and not self.paused:
            content, binary = self.held.popleft()
            self.held_bytes -= _size(content)
            WebSocketProtocol.serverSend(self, content, binary)
        if self.backlog() <= _max_buffer_bytes():
            self.over_since = None

    def stopProducing(self) -> None:  # noqa: N802 - Twisted's name
        self.held.clear()
        self.held_bytes = 0


class ClosingWebSocketFactory(WebSocketFactory):
    """Autobahn drops the TCP connection on a protocol violation (``failByDrop``), so a client
    sending a message over the limit or invalid UTF-8 saw 1006 and could not tell why; with it off,
    the socket is closed with 1009 (too big) or 1007 (invalid payload).

    After its close frame the server still reads (and discards) the rest of the refused message
    until the client answers the close. Autobahn waits 1 s for that answer, then drops the TCP
    connection; with the client's bytes still unread that drop is a reset, which also discards the
    close frame on the client's side (1006 again). A client still uploading a 1.5 MB message on a
    slow link, or on a busy server, needs longer: 10 s, the client libraries' own close timeout."""

    protocol = BoundedWebSocketProtocol

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setProtocolOptions(failByDrop=False, closeHandshakeTimeout=CLOSE_HANDSHAKE_TIMEOUT_S)


# Daphne builds its factory from this module attribute in Server.run(); there is no option for it.
daphne_server.WebSocketFactory = ClosingWebSocketFactory


_web_request_init = http_protocol.WebRequest.__init__


def _web_request_without_form_parsing(self, *args, **kwargs) -> None:
    """Twisted parses every multipart POST body into ``request.args``, whole, in memory (a 25 MB
    upload cost several times that) and answers an empty 400 for one it cannot parse, before the
    application sees it. Daphne never reads ``args``: it hands the raw body to Django, which
    streams uploads to disk within their limit (attachments/uploads.py)."""
    _web_request_init(self, *args, **kwargs)
    self._parsePOSTFormSubmission = False


http_protocol.WebRequest.__init__ = _web_request_without_form_parsing

# A socket whose frames wait unread stops being read (its sends in flight are bounded too).
read_pause.install()


class DrainingServer(Server):
    def __init__(self, *args, **kwargs) -> None:
        for option in ("websocket_max_message_size", "websocket_max_frame_size"):
            kwargs[option] = min(kwargs.get(option) or MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES)
        super().__init__(*args, **kwargs)

    def create_application(self, protocol, scope):
        """Give a WebSocket's application its frame writer (``WRITE_TEXT_EXTENSION``)."""
        if isinstance(protocol, BoundedWebSocketProtocol):
            scope.setdefault("extensions", {})[WRITE_TEXT_EXTENSION] = {"write": protocol.write_text}
        return super().create_application(protocol, scope)

    def kill_all_applications(self):
        from streams.realtime.hub import get_hub

        def kill(_result):
            return Server.kill_all_applications(self)

        going = defer.Deferred.fromFuture(asyncio.ensure_future(get_hub().going_away()))
        going.addErrback(lambda failure: failure.printTraceback())
        going.addBoth(kill)
        return going


class DrainingCommandLine(CommandLineInterface):
    server_class = DrainingServer


if __name__ == "__main__":
    DrainingCommandLine.entrypoint()
