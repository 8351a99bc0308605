"""Upload load: attachments sent to ``POST /api/v1/rooms/{room}/attachments/`` as mobile clients do.

Run by the orchestrator on the client core (``python -m bench.uploads SPEC OUT``). Each client
uploads ``per_client`` files to its room, ``concurrency`` uploads in flight at once over plain
HTTP/1.1 connections (one per worker thread, kept alive), and the result gives the ids each
client got back (S6 then sends messages that carry them), the upload rate, the bytes per second,
the latency of each upload and the server's CPU meanwhile.
"""

from __future__ import annotations

import http.client
import io
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from .loadgen import core_shares, core_snapshot, percentile


def photo(width: int = 1280, height: int = 960, *, seed: int = 0) -> bytes:
    """A JPEG that compresses like a phone photo: smooth shapes under a little sensor noise."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (seed * 97 + i * 211) % width, (seed * 53 + i * 157) % height
        draw.ellipse((x - 120, y - 90, x + 120, y + 90), fill=((i * 40) % 256, (seed * 30 + i * 70) % 256, 160))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    image = Image.blend(image.filter(ImageFilter.GaussianBlur(3)), noise, 0.15)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def document(size: int) -> bytes:
    """A PDF-looking file of ``size`` bytes (its header is what content detection reads)."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    return head + b"0" * max(0, size - len(head) - 6) + b"\n%%EOF"


def multipart(name: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Uploader:
    """Worker threads, each with its own keep-alive connection."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return conn

    def upload(self, *, room: int, token: str, name: str, content_type: str, data: bytes) -> tuple[int, dict, float]:
        """One upload: (status, answer, seconds); one retry on a dropped keep-alive connection."""
        body, form_type = multipart(name, content_type, data)
        headers = {"Authorization": f"Token {token}", "Content-Type": form_type, "Content-Length": str(len(body))}
        for attempt in range(2):
            conn = self._connection()
            started = time.perf_counter()
            try:
                conn.request("POST", f"/api/v1/rooms/{room}/attachments/", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
                continue
            seconds = time.perf_counter() - started
            try:
                answer = json.loads(payload) if payload else {}
            except ValueError:
                answer = {"raw": payload[:200].decode(errors="replace")}
            return response.status, answer, seconds
        raise AssertionError("unreachable")


def run(spec: dict) -> dict:
    kind = spec.get("kind", "image")
    files = [photo(seed=i) for i in range(8)] if kind == "image" else [document(spec.get("file_bytes", 1 << 20))]
    name, content_type = ("photo.jpg", "image/jpeg") if kind == "image" else ("report.pdf", "application/pdf")
    clients = spec["clients"]
    jobs = [(index, n) for n in range(spec["per_client"]) for index in range(len(clients))]
    uploader = Uploader(spec["url"])
    ids: list[list[int]] = [[] for _ in clients]
    latencies: list[float] = []
    failures: dict[str, int] = {}
    sent_bytes = 0
    lock = threading.Lock()

    def one(job: tuple[int, int]) -> None:
        nonlocal sent_bytes
        index, n = job
        data = files[(index + n) % len(files)]
        client = clients[index]
        try:
            status, answer, seconds = uploader.upload(
                room=client["room"], token=client["token"], name=name, content_type=content_type, data=data
            )
        except (OSError, http.client.HTTPException) as exc:
            status, answer, seconds = type(exc).__name__, {}, 0.0
        with lock:
            if status == 201:
                ids[index].append(answer["id"])
                latencies.append(seconds * 1000)
                sent_bytes += len(data)
            else:
                key = f"{status} {answer.get('code', '')}".strip()
                failures[key] = failures.get(key, 0) + 1

    watch = spec.get("watch_pids") or {}
    cpu0 = core_snapshot(watch, spec.get("server_cpu")) if watch else None
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=spec.get("concurrency", 8)) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - started
    result = {
        "kind": kind,
        "file_bytes": round(sum(len(f) for f in files) / len(files)),
        "uploads": len(latencies),
        "failures": failures,
        "seconds": round(wall, 3),
        "uploads_per_s": round(len(latencies) / wall, 1),
        "mb_per_s": round(sent_bytes / wall / 1e6, 2),
        "p50_ms": _round(percentile(sorted(latencies), 50)),
        "p99_ms": _round(percentile(sorted(latencies), 99)),
        "ids": ids,
    }
    if cpu0 is not None:
        by_process, _ = core_shares(cpu0, core_snapshot(watch, spec.get("server_cpu")), wall)
        result["server_cpu"] = round(sum(by_process.values()), 3)
        result["cpu_by_process"] = by_process
        if latencies:
            result["server_cpu_ms_per_upload"] = round(result["server_cpu"] * wall * 1000 / len(latencies), 2)
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.uploads SPEC.json OUT.json")
    outcome = run(json.loads(Path(sys.argv[1]).read_text()))
    Path(sys.argv[2]).write_text(json.dumps(outcome))
