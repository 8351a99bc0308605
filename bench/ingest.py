"""S3's producer: ``message.send`` envelopes straight to Kafka with the project's own producer.

Run pinned to the load generator's core: ``python -m bench.ingest SPEC.json OUT.json``, where
SPEC is {"rooms": [[room id, [sender ids]], ...], "count": N, "payload": bytes}. It writes
{"seconds": time to produce and flush all N, "client_msg_ids": {room: [ids]}}.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path


def produce(*, rooms: list, count: int, payload: int) -> tuple[float, dict]:
    """Send ``count`` envelopes round robin over the rooms and their senders; wait for every ack."""
    from chat_messages.services import send_envelope
    from streams.pipeline import kafka

    from .population import body_of

    records = []
    ids: dict = {}
    start = time.perf_counter()
    for i in range(count):
        room_id, senders = rooms[i % len(rooms)]
        msg_id = uuid.uuid4()
        envelope = send_envelope(
            room_id=room_id,
            sender_id=senders[(i // len(rooms)) % len(senders)],
            client_msg_id=msg_id,
            body=body_of(payload, f"ingest {i}"),
        )
        records.append((room_id, kafka.encode(envelope)))
        ids.setdefault(str(room_id), []).append(str(msg_id))
    kafka.produce_many(kafka.MESSAGES, records)
    return time.perf_counter() - start, ids


def main(spec_path: Path, out_path: Path) -> None:
    import django

    django.setup()
    spec = json.loads(spec_path.read_text())
    seconds, ids = produce(rooms=spec["rooms"], count=spec["count"], payload=spec["payload"])
    out_path.write_text(json.dumps({"seconds": seconds, "client_msg_ids": ids}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.ingest SPEC.json OUT.json")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
