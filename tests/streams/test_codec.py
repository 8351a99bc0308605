"""The message path's JSON: the same text as the standard library wrote, stricter on input."""

import enum
import json
import uuid
from collections import OrderedDict, defaultdict
from datetime import UTC, datetime

import pytest

from streams import codec


class _Level(enum.IntEnum):
    HIGH = 2


def test_frames_keep_the_text_the_standard_library_wrote():
    value = {
        "type": "message.new",
        "body": 'line\nbreak\ttab "quoted" \\ é 😀 \u2028',
        "client_msg_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "at": datetime(2026, 11, 25, 22, 0, tzinfo=UTC),
        "counts": {7: 1},
        "ordered": OrderedDict(b=2),
        "default": defaultdict(int, a=1),
        "level": _Level.HIGH,
        "deleted": False,
        "edited_at": None,
    }
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    assert codec.dumps(value).decode() == expected
    assert "\n" not in expected  # the Redis wire format splits frames on raw newlines


@pytest.mark.parametrize("text", ['{"body": "\\ud800"}', '{"n": NaN}', "{'single': 1}", ""])
def test_anything_but_strict_json_is_refused_as_a_value_error(text):
    with pytest.raises(ValueError):
        codec.loads(text)
