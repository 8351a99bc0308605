"""The STOMP frame codec: escaping per version, content-length, NUL, split and merged frames, limits."""

from __future__ import annotations

import pytest

from stomp.frames import (
    Frame,
    FrameError,
    Parser,
    encode,
    escape,
    heart_beat_parse,
    unescape,
    version_negotiate,
)


def test_a_send_frame_parses_with_its_headers_and_body():
    parser = Parser()
    parser.version = "1.2"
    frames = parser.feed(b'SEND\ndestination:/pub/chat/message\n\n{"roomId":1}\x00')
    assert frames == [Frame("SEND", {"destination": "/pub/chat/message"}, b'{"roomId":1}')]


def test_crlf_line_ends_are_accepted():
    parser = Parser()
    frames = parser.feed(b"SUBSCRIBE\r\nid:0\r\ndestination:/sub/chat/room/1\r\n\r\n\x00")
    assert frames == [Frame("SUBSCRIBE", {"id": "0", "destination": "/sub/chat/room/1"}, b"")]


def test_a_frame_split_anywhere_comes_out_once_whole():
    wire = encode(Frame("SEND", {"destination": "/pub/chat/message", "receipt": "r:1"}, b"hello\nworld"), "1.2")
    for cut in range(1, len(wire)):
        parser = Parser()
        parser.version = "1.2"
        assert parser.feed(wire[:cut]) == []
        frames = parser.feed(wire[cut:])
        assert frames == [Frame("SEND", {"destination": "/pub/chat/message", "receipt": "r:1",
                                         "content-length": "11"}, b"hello\nworld")]  # fmt: skip


def test_merged_frames_and_heart_beats_between_them():
    parser = Parser()
    wire = b"\n\r\nSEND\ndestination:/a\n\none\x00\nSEND\ndestination:/b\n\ntwo\x00\n"
    frames = parser.feed(wire)
    assert [(f.headers["destination"], f.body) for f in frames] == [("/a", b"one"), ("/b", b"two")]
    assert parser.heart_beats == 4
    assert parser.buffer == b""


def test_content_length_allows_nul_in_the_body_and_is_checked():
    parser = Parser()
    assert parser.feed(b"SEND\ncontent-length:3\n\na\x00b\x00")[0].body == b"a\x00b"
    with pytest.raises(FrameError, match="NUL"):
        Parser().feed(b"SEND\ncontent-length:2\n\nabc\x00")
    with pytest.raises(FrameError, match="content-length"):
        Parser().feed(b"SEND\ncontent-length:-1\n\n\x00")


def test_headers_are_unescaped_per_version_and_the_first_repeat_wins():
    wire = b"SEND\nx:a\\cb\\nc\\\\d\nx:second\ny:1\\r2\n\n\x00"
    v10, v11, v12 = Parser(), Parser(), Parser()
    v11.version, v12.version = "1.1", "1.2"
    assert v10.feed(wire)[0].headers["x"] == "a\\cb\\nc\\\\d"
    assert v12.feed(wire)[0].headers == {"x": "a:b\nc\\d", "y": "1\r2"}
    with pytest.raises(FrameError, match="Undefined escape"):
        v11.feed(wire)  # \r is 1.2 only


def test_connect_headers_are_never_unescaped():
    parser = Parser()
    parser.version = "1.2"
    assert parser.feed(b"CONNECT\npasscode:a\\cb\n\n\x00")[0].headers["passcode"] == "a\\cb"


def test_escape_round_trips_and_1_0_flattens_newlines():
    value = "a:b\nc\\d\re"
    assert unescape(escape(value, "1.2"), "1.2") == value
    assert unescape(escape("a:b\nc\\d", "1.1"), "1.1") == "a:b\nc\\d"
    assert escape("x:y\nz", "1.1") == "x\\cy\\nz"
    assert escape("x:y\nz", "1.0") == "x:y z"
    with pytest.raises(FrameError):
        unescape("bad\\t", "1.2")
    with pytest.raises(FrameError):
        unescape("trailing\\", "1.2")


def test_encode_adds_content_length_and_escapes_but_not_on_connected():
    wire = encode(Frame("MESSAGE", {"destination": "/sub/x:y"}, "é".encode()), "1.2")
    assert wire == b"MESSAGE\ndestination:/sub/x\\cy\ncontent-length:2\n\n\xc3\xa9\x00"
    assert encode(Frame("CONNECTED", {"version": "1.2", "server": "a:b"}), "1.2") == (
        b"CONNECTED\nversion:1.2\nserver:a:b\n\n\x00"
    )


def test_limits_refuse_before_buffering_everything():
    with pytest.raises(FrameError, match="headers over"):
        Parser(max_header_bytes=100).feed(b"SEND\n" + b"x" * 200)
    with pytest.raises(FrameError, match="More than 2 headers"):
        Parser(max_headers=2).feed(b"SEND\na:1\nb:2\nc:3\n\n\x00")
    with pytest.raises(FrameError, match="limit"):
        Parser(max_body_bytes=10).feed(b"SEND\n\n" + b"x" * 11)
    with pytest.raises(FrameError, match="limit"):
        Parser(max_body_bytes=10).feed(b"SEND\ncontent-length:11\n\n")


def test_malformed_frames_are_errors():
    with pytest.raises(FrameError, match="command"):
        Parser().feed(b"send\n\n\x00")
    with pytest.raises(FrameError, match="colon"):
        Parser().feed(b"SEND\nnocolon\n\n\x00")
    with pytest.raises(FrameError, match="CR"):
        Parser().feed(b"\rX")


def test_heart_beat_and_version_negotiation():
    assert heart_beat_parse(None) == (0, 0)
    assert heart_beat_parse("10000,10000") == (10000, 10000)
    with pytest.raises(FrameError):
        heart_beat_parse("10000")
    assert version_negotiate(None) == "1.0"
    assert version_negotiate("1.1,1.0") == "1.1"
    assert version_negotiate("1.0,1.1,1.2") == "1.2"
    assert version_negotiate("2.0") is None
