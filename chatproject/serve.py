"""``python -m chatproject.serve``: daphne, with a stop that tells every client to reconnect.

Daphne's own stop cancels every connection's application at once, so clients see their socket
cut (1006) while a send may be on its way. This server first closes each WebSocket with 4503
("server stopping: reconnect and sync") and refuses new sockets and sends meanwhile; a client
following docs/protocol.md reconnects to a server that is up and re-sends what it still holds.
Accepts daphne's command line unchanged.
"""

from __future__ import annotations

import asyncio

from daphne import http_protocol
from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory
from twisted.internet import defer

from chatproject import read_pause

# A WebSocket message larger than this closes the socket with 1009 before it is buffered whole;
# up to it, frames over the consumer's 64 KB get an `invalid` error frame. Daphne's default is 1 MiB.
MAX_MESSAGE_BYTES = 128 * 1024
CLOSE_HANDSHAKE_TIMEOUT_S = 10


class ClosingWebSocketFactory(WebSocketFactory):
    """Autobahn drops the TCP connection on a protocol violation (``failByDrop``), so a client
    sending a message over the limit or invalid UTF-8 saw 1006 and could not tell why; with it off,
    the socket is closed with 1009 (too big) or 1007 (invalid payload).

    After its close frame the server still reads (and discards) the rest of the refused message
    until the client answers the close. Autobahn waits 1 s for that answer, then drops the TCP
    connection; with the client's bytes still unread that drop is a reset, which also discards the
    close frame on the client's side (1006 again). A client still uploading a 1.5 MB message on a
    slow link, or on a busy server, needs longer: 10 s, the client libraries' own close timeout."""

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
