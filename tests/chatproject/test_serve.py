"""chatproject.serve's own framing of the fan-out's text frames."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from chatproject.serve import text_frame


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
