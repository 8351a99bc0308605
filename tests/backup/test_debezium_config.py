"""docker/debezium/chat-backup.json stays in step with what the backup consumer reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

from backup.tables import CAPTURED_TABLES
from streams.pipeline import kafka

CONFIG = Path(__file__).resolve().parents[2] / "docker" / "debezium" / "chat-backup.json"


def test_the_connector_captures_our_tables_onto_the_backup_topic_in_the_consumers_format():
    config = json.loads(CONFIG.read_text())

    assert config["table.include.list"].split(",") == [f"public.{t}" for t in CAPTURED_TABLES]
    # Debezium names a table's topic <topic.prefix>.<schema>.<table>; the route sends all to chat.cdc.
    route = re.compile(config["transforms.route.regex"])
    for table in CAPTURED_TABLES:
        topic = f"{config['topic.prefix']}.public.{table}"
        assert route.fullmatch(topic) and route.sub(config["transforms.route.replacement"], topic) == kafka.CDC
    assert not route.fullmatch(f"__debezium-heartbeat.{config['topic.prefix']}")  # heartbeats stay apart

    # Key {"id": 1} and the bare envelope, as our capture writes them (same bytes, same partition).
    assert config["key.converter.schemas.enable"] == config["value.converter.schemas.enable"] == "false"
    assert (config["plugin.name"], config["publication.autocreate.mode"]) == ("pgoutput", "disabled")
    assert config["slot.name"] == config["publication.name"] == "chat_backup"
    assert config["decimal.handling.mode"] == "string" and config["tombstones.on.delete"] == "false"
    assert config["database.password"].startswith("${env:")  # the secret stays in the worker's environment
