"""Publishing on Redis: what a subscribing ASGI process receives, in which order."""

from __future__ import annotations

import json

import redis

from streams.realtime.hub import CHANNEL_PREFIX, frame, parse_event, publish


def _listen(settings, *groups):
    pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    pubsub.subscribe(*(CHANNEL_PREFIX + g for g in groups))
    confirmed = 0
    while confirmed < len(groups):  # publish only once every subscription is in place
        message = pubsub.get_message(timeout=1.0)
        assert message is not None, "Redis did not confirm the subscriptions"
        confirmed += message["type"] == "subscribe"
    return pubsub


def _received(pubsub) -> list[tuple[str, list[dict], dict | None]]:
    got = []
    while (message := pubsub.get_message(timeout=0.3)) is not None:
        texts, control = parse_event(message["data"])
        got.append((message["channel"].decode()[len(CHANNEL_PREFIX) :], [json.loads(t) for t in texts], control))
    return got


def test_a_rooms_consecutive_frames_share_one_publish_in_order_and_controls_stand_alone(settings):
    pubsub = _listen(settings, "room.901", "room.902", "user.9")
    body = "two\nlines and \u2028 a separator"
    publish([
        ("room.901", frame("message.new", seq=1, body=body), None),
        ("room.901", frame("message.new", seq=2), None),
        ("room.902", frame("message.new", seq=1), None),
        ("user.9", None, {"op": "join", "room": 901}),
        ("room.901", frame("message.new", seq=3), None),
    ])  # fmt: skip
    assert _received(pubsub) == [
        ("room.901", [{"type": "message.new", "seq": 1, "body": body}, {"type": "message.new", "seq": 2}], None),
        ("room.902", [{"type": "message.new", "seq": 1}], None),
        ("user.9", [], {"op": "join", "room": 901}),
        ("room.901", [{"type": "message.new", "seq": 3}], None),
    ]
    pubsub.close()
