"""chatproject.serve's own framing and writing of the fan-out's text frames."""

from __future__ import annotations

import pytest
from twisted.protocols.policies import ProtocolWrapper
from websockets.frames import Frame, Opcode

from chatproject.serve import send_now, text_frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_is_what_a_websocket_library_writes(length):
    text = "x" * length
    assert text_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])


def test_the_length_is_of_the_utf8_bytes_not_the_characters():
    text = "안녕하세요 " * 30  # 180 characters, 480 bytes: the 16-bit length form
    frame = text_frame(text)
    assert frame[:4] == bytes((0x81, 126)) + (480).to_bytes(2, "big")
    assert frame[4:].decode() == text


def test_the_same_text_given_again_is_framed_once_and_another_one_afresh():
    first = "".join(["{", '"type":"message.new"', "}"])  # built at run time: not an interned constant
    assert text_frame(first) is text_frame(first)
    second = first.replace("new", "old")
    assert text_frame(second) == Frame(Opcode.TEXT, second.encode()).serialize(mask=False, extensions=[])
    assert text_frame(first) == Frame(Opcode.TEXT, first.encode()).serialize(mask=False, extensions=[])


def test_a_batch_of_frames_is_framed_once_for_all_the_sockets_it_goes_to():
    batch = [f"message {i}".join(["{", "}"]) for i in range(200)]  # a stored batch, one event
    first = [text_frame(text) for text in batch]  # the first socket's turn
    assert all(text_frame(text) is frame for text, frame in zip(batch, first, strict=True))  # the next's


class TcpUnderTls:
    """The TCP transport under Twisted's TLS wrapper: what it is asked for, it answers."""

    TLS = False
    connected = True
    _writeDisconnected = False  # noqa: N815 - Twisted's names
    dataBuffer, offset, _tempDataLen = b"", 0, 0  # noqa: N815

    def __init__(self) -> None:
        self.socket = self
        self.on_the_wire: list[bytes] = []
        self.written: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.on_the_wire.append(data)
        return len(data)

    def write(self, data: bytes) -> None:
        self.written.append(data)


def test_behind_tls_a_frame_goes_through_the_tls_layer_never_straight_to_the_socket():
    tcp = TcpUnderTls()
    tls = ProtocolWrapper(None, None)  # TLSMemoryBIOProtocol's base: unknown attributes go to the TCP transport
    tls.transport = tcp
    tls.connected = 1  # a live connection (makeConnection)
    assert tls.socket is tcp and tls.TLS is False  # what made it look like a plain socket

    send_now(tls, text_frame("secret"))

    assert tcp.on_the_wire == []
    assert tcp.written == [text_frame("secret")]  # ProtocolWrapper.write: TLS would encrypt it here
