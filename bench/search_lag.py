"""How soon a send, an edit and a deletion show in search, against a running server.

    python -m devstack run --data .devstack/lag --only web,persist,index &   # with RATE_LIMITS=off PORT=33448
    python -m bench.search_lag --api http://127.0.0.1:33448/api/v1 --rounds 40

One user, one room; each round sends a message with a fresh word and searches for it every 10 ms
until it is found, then edits it to another fresh word, then deletes it, timing each from the
REST call to the search answer that shows it. Sequential: it measures the path's latency on an
otherwise idle server ("normal load"), not throughput (bench/search.py measures that).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
import uuid


class Client:
    def __init__(self, api: str) -> None:
        self.api = api.rstrip("/")
        self.token: str | None = None

    def call(self, method: str, path: str, body=None):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api + path, method=method, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default="http://127.0.0.1:33448/api/v1")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    client = Client(args.api)
    name, password = f"lag{uuid.uuid4().hex[:8]}", "tulip-orbit-73"
    client.call("POST", "/accounts/", {"username": name, "password": password})
    client.token = client.call("POST", "/auth/token/", {"username": name, "password": password})["token"]
    room = client.call("POST", "/rooms/", {"kind": "group", "name": "search lag"})["id"]

    def until(word: str, count: int) -> None:
        while len(client.call("GET", f"/search/?q={word}&room={room}")["hits"]) != count:
            time.sleep(0.01)

    lags: dict[str, list[float]] = {"send": [], "edit": [], "delete": []}
    for _ in range(args.rounds):
        word = uuid.uuid4().hex[:10]
        started = time.monotonic()
        client.call("POST", f"/rooms/{room}/messages/", {"client_msg_id": str(uuid.uuid4()), "body": f"회의 {word}"})
        until(word, 1)
        lags["send"].append(time.monotonic() - started)
        seq = client.call("GET", f"/search/?q={word}&room={room}")["hits"][0]["seq"]
        edited = uuid.uuid4().hex[:10]
        started = time.monotonic()
        client.call("PATCH", f"/rooms/{room}/messages/{seq}/", {"body": f"edited {edited}"})
        until(edited, 1)
        lags["edit"].append(time.monotonic() - started)
        started = time.monotonic()
        client.call("DELETE", f"/rooms/{room}/messages/{seq}/")
        until(edited, 0)
        lags["delete"].append(time.monotonic() - started)
    for kind, values in lags.items():
        values.sort()
        print(
            f"{kind:>6}: median {statistics.median(values) * 1000:.0f} ms, p90 {values[int(len(values) * 0.9)] * 1000:.0f} ms,"
            f" max {values[-1] * 1000:.0f} ms ({len(values)} rounds)"
        )


if __name__ == "__main__":
    main()
