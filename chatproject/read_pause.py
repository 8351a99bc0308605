"""Stop reading a WebSocket whose application has not taken its frames yet (backpressure).

Daphne hands each incoming frame to the connection's application through an unbounded queue and
keeps reading, so a client sending faster than its socket is served (a flood of ``message.send``
past ``CHAT_SOCKET_MAX_IN_FLIGHT``, docs/protocol.md) would be buffered without limit in the
server's memory. With this installed, a connection whose queue holds ``QUEUED_FRAMES_MAX`` frames
stops being read (Twisted's ``pauseProducing``: the kernel's buffers fill, then the client's TCP
window closes) until the application has taken half of them.
"""

from __future__ import annotations

from daphne.ws_protocol import WebSocketProtocol

QUEUED_FRAMES_MAX = 32
RESUME_CHECK_S = 0.005

_on_message = WebSocketProtocol.onMessage


def _on_message_with_pause(self, payload, isBinary) -> None:  # noqa: N803 - Twisted's signature
    _on_message(self, payload, isBinary)
    queue = getattr(self, "application_queue", None)
    if queue is None or getattr(self, "reading_paused", False) or queue.qsize() < QUEUED_FRAMES_MAX:
        return
    from twisted.internet import reactor

    self.reading_paused = True
    self.transport.pauseProducing()
    reactor.callLater(RESUME_CHECK_S, _resume_when_taken, self)


def _resume_when_taken(protocol) -> None:
    from twisted.internet import reactor

    if protocol.transport is None or not protocol.transport.connected:
        return
    if protocol.application_queue.qsize() > QUEUED_FRAMES_MAX // 2:
        # Polled only while paused: the queue has no hook for "an item was taken".
        reactor.callLater(RESUME_CHECK_S, _resume_when_taken, protocol)
        return
    protocol.reading_paused = False
    protocol.transport.resumeProducing()


def install() -> None:
    """Patch daphne's WebSocket protocol (once per process, before the server starts)."""
    WebSocketProtocol.onMessage = _on_message_with_pause
