"""Read settings from the environment, falling back to the running embedded stack."""

from __future__ import annotations

import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Where `make run` records the addresses of the services it started.
STACK_STATE = Path(os.environ.get("DEVSTACK_STATE") or BASE_DIR / ".devstack" / "run" / "services.json")


def _stack_urls() -> dict[str, str]:
    # `make run` writes the addresses of the services it started here, so that
    # `manage.py <command>` run by hand in another terminal reaches the same services.
    try:
        return json.loads(STACK_STATE.read_text()).get("urls", {})
    except (OSError, ValueError):
        return {}


def service_url(name: str, default: str) -> str:
    """The URL of a service: its variable, else the running `make run` stack, else a default."""
    if name in os.environ:  # set, even to "" (which switches an optional service off)
        return os.environ[name] or default
    return _stack_urls().get(name) or default


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def local_secret_key() -> str:
    """A secret generated once for this checkout and kept in the ignored .devstack folder."""
    from django.core.management.utils import get_random_secret_key

    path = BASE_DIR / ".devstack" / "secret_key"
    try:
        return path.read_text().strip()
    except OSError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = get_random_secret_key()
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(key)
        try:
            os.link(tmp, path)  # atomic create-if-absent: concurrent first runs agree on one key
        except FileExistsError:
            key = path.read_text().strip()
        finally:
            tmp.unlink()
        return key
