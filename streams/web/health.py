"""Liveness and readiness: /healthz says the process is up, /readyz checks each service.

Both are public (load balancers call them without credentials), so /readyz answers only each
service's name and state; the address and the reason of a failed check go to the server log.
"""

from __future__ import annotations

import logging
import socket

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from streams.realtime.hub import redis_address

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0


def check_postgres() -> dict:
    db = settings.DATABASES["default"]
    address = f"{db.get('HOST')}:{db.get('PORT')}"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"state": "ready", "address": address}
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
        connection.close()
        return {"state": "down", "address": address, "error": _first_line(exc)}


def check_redis() -> dict:
    address = redis_address()
    try:
        import redis

        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S
        )
        client.ping()
        client.close()
        return {"state": "ready", "address": address}
    except Exception as exc:  # noqa: BLE001
        return {"state": "down", "address": address, "error": _first_line(exc)}


def check_kafka() -> dict:
    address = settings.KAFKA_BOOTSTRAP_SERVERS
    # A Kafka ApiVersions request: proves a Kafka-protocol broker answers, not just a TCP port.
    request = b"\x00\x12\x00\x00\x00\x00\x00\x01\x00\x06readyz"
    errors = []
    for item in address.split(","):
        host, _, port = item.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CHECK_TIMEOUT_S) as sock:
                sock.settimeout(CHECK_TIMEOUT_S)
                sock.sendall(len(request).to_bytes(4, "big") + request)
                size = int.from_bytes(_recv_exact(sock, 4), "big")
                body = _recv_exact(sock, min(size, 64))
                if body[:4] != b"\x00\x00\x00\x01":
                    raise OSError("unexpected reply to ApiVersions")
            return {"state": "ready", "address": address}
        except (OSError, ValueError) as exc:
            errors.append(f"{item}: {_first_line(exc)}")
    return {"state": "down", "address": address, "error": "; ".join(errors)}


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    checks = {"postgres": check_postgres(), "redis": check_redis(), "kafka": check_kafka()}
    for name, check in checks.items():
        if check["state"] != "ready":
            log.warning("readyz: %s at %s is down: %s", name, check["address"], check.get("error", ""))
    ready = all(check["state"] == "ready" for check in checks.values())
    # Addresses and driver messages (which repeat them) stay in the log: the name and state only.
    services = {name: {"state": check["state"]} for name, check in checks.items()}
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "services": services}, status=200 if ready else 503
    )
