"""Settings come from the environment, which overrides the embedded stack's addresses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

PRINT = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'chatproject.settings');"
    "from django.conf import settings as s; import json;"
    "print(json.dumps([s.DATABASES['default']['PORT'], s.REDIS_URL, s.KAFKA_BOOTSTRAP_SERVERS, s.PORT,"
    " s.DEBUG, s.ALLOWED_HOSTS, s.CHAT_MAX_BODY_BYTES, s.RATE_LIMITS_ENABLED, s.SECRET_KEY == 'x' * 50]))"
)


def _settings(**env: str) -> list:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    out = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_environment_variables_override_the_defaults():
    values = _settings(
        DATABASE_URL="postgres://u@db.internal:6543/chat",
        REDIS_URL="redis://cache.internal:6380/2",
        KAFKA_BOOTSTRAP_SERVERS="k1:9092,k2:9092",
        PORT="9001",
        DEBUG="true",
        ALLOWED_HOSTS="chat.example.com,.example.org",
        CHAT_MAX_BODY_BYTES="1024",
        RATE_LIMITS="off",
        SECRET_KEY="x" * 50,
    )
    assert values == [
        6543, "redis://cache.internal:6380/2", "k1:9092,k2:9092", 9001, True,
        ["chat.example.com", ".example.org"], 1024, False, True,
    ]  # fmt: skip


def test_without_variables_the_running_stack_addresses_are_used(tmp_path):
    state = tmp_path / "services.json"
    urls = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:15999/chat",
        "REDIS_URL": "redis://127.0.0.1:16999/0",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19999",
    }
    state.write_text(json.dumps({"urls": urls}))
    values = _settings(DEVSTACK_STATE=str(state))
    assert values[:3] == [15999, urls["REDIS_URL"], urls["KAFKA_BOOTSTRAP_SERVERS"]]
    assert values[7] is True  # rate limits are on by default
    # A variable still wins over the recorded stack.
    assert _settings(DEVSTACK_STATE=str(state), REDIS_URL="redis://elsewhere:6379/0")[1] == "redis://elsewhere:6379/0"
