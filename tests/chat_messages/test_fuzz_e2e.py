"""Hostile input against the running server: generated WebSocket frames, REST calls and page requests.

Hypothesis generates the input (derandomised, so a CI run is reproducible; bounded in examples,
so the whole module stays within about half a minute); every answer is checked as it comes:

- HTTP: no status >= 500; under /api/ every refusal has the JSON error shape with a documented code;
- WebSocket: after each generated frame the socket still answers a `sync` probe (an `error` frame
  with a documented code is fine), or it was closed with a documented close code;
- no traceback appears in the server's logs (web and persist consumer) while the test runs;
- a frame or body whose id is not a JSON integer is never taken as that id;
- every message the server answered `message.accepted` to is stored (nothing accepted is lost);
- afterwards the server still works: a member's `message.send` reaches another member.

Problems are collected rather than raised at the first one, so one run lists every input the server
mishandles (the assertion message names each: input, entry, what happened, the traceback's line).
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import re
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect as ws_connect

from chat_messages.models import Message

# The mark makes the session set the test database up (the module's data is committed by the
# module-scoped `world`, outside each test's transaction, so the server's processes see it).
pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

# docs/protocol.md and docs/api.md: the codes a client is told to expect for its own input.
# Not `internal`: it says the server failed (a bug, logged), which is what this module looks for.
ERROR_CODES = {
    "unauthenticated",
    "not_member",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "too_large",
    "invalid",
    "unavailable",
}
# Normal close, message too big (chatproject/serve.py's limit), and the server's own codes.
CLOSE_CODES = {1000, 1009, 4401, 4429, 4503, 4012}
# RFC 6455 requires 1007 for a text frame that is not UTF-8: allowed only after sending one.
CLOSE_INVALID_UTF8 = 1007
PASSWORD = "correct-horse-battery"
MAX_PROBLEMS = 60  # enough to read; the first ones name the bugs
INPUTS_PER_PROBLEM = 3

# Derandomised and without shrinking: the same inputs on every run, in a bounded time.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


# -- the server's logs -----------------------------------------------------------------------------
class LogTail:
    """What the server's processes append to their log files (``servers.log_dir``) from now on."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.offsets = {p: p.stat().st_size for p in log_dir.glob("*.log")}

    def read(self, pattern: str = "*.log") -> dict[str, str]:
        """Text appended to each log matching ``pattern`` since it was last read, by file name."""
        out = {}
        for path in sorted(self.log_dir.glob(pattern)):
            start = self.offsets.get(path, 0)
            with path.open("rb") as f:
                f.seek(start)
                data = f.read()
            self.offsets[path] = start + len(data)
            if data:
                out[path.name] = data.decode("utf-8", "replace")
        return out

    def tracebacks(self, pattern: str = "*.log") -> list[str]:
        """``file: exception line`` for each traceback appended since the last call to files matching ``pattern``."""
        found = []
        for name, text in self.read(pattern).items():
            found += [f"{name}: {line}" for line in traceback_lines(text)]
        return found


CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def traceback_lines(text: str) -> list[str]:
    """The exception line ending each ``Traceback (most recent call last):`` block of ``text``."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" not in line:
            continue
        j = i + 1
        while j < len(lines) and (lines[j].startswith((" ", "\t", "^", "~")) or not lines[j].strip()):
            j += 1
        following = next((line for line in lines[j + 1 : j + 4] if line.strip()), "")
        if following.startswith(CHAINED):
            continue  # the exception another one was raised from: the last one names the failure
        out.append(lines[j].strip()[:300] if j < len(lines) else "Traceback (cut off)")
    return out


@dataclass
class Problems:
    """Every failure found, grouped by what happened and where (the first inputs of each kept)."""

    seen: dict[str, list] = field(default_factory=dict)

    def add(self, what: str, where: str, given) -> None:
        key = f"{where} | {what}"
        inputs = self.seen.setdefault(key, []) if len(self.seen) < MAX_PROBLEMS else self.seen.get(key, [])
        if len(inputs) < INPUTS_PER_PROBLEM:
            inputs.append(given)

    def report(self, path: Path) -> str:
        """The findings, inputs shortened; written to ``path`` with the inputs whole, to replay them."""
        with path.open("w", encoding="utf-8", errors="backslashreplace") as f:
            for key, inputs in self.seen.items():
                f.write(f"- {key}\n" + "".join(f"    input: {full(given)}\n" for given in inputs))
        lines = [
            f"- {key}" + "".join(f"\n    input: {given!r}" for given in inputs) for key, inputs in self.seen.items()
        ]
        return f"the fuzzer found (whole inputs in {path}):\n" + "\n".join(lines)


def full(given) -> str:
    return given.full() if hasattr(given, "full") else str(given)


def shorten(value, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


# -- the world the fuzzing runs in -----------------------------------------------------------------
@dataclass
class World:
    alice: object
    bob: object
    carol: object
    room: int
    other_room: int  # a room alice is not in
    seq: int
    entry: int
    cursor: str
    alice_token: str
    bob_token: str


def _token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def world(server, django_db_blocker):
    """Alice and Bob in a room with two stored messages, both in Alice's drawer; Carol elsewhere.

    Made once for the module, and the tables flushed after it as a transactional test's are: a
    test's own set-up and flush would cost more time than its fuzzing.
    """
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from rooms.services import room_create_group

    with django_db_blocker.unblock():
        users = [get_user_model().objects.create_user(username=f"fuzz{n}", password=PASSWORD) for n in "abc"]
        alice, bob, carol = users
        room = room_create_group(owner=alice, name="fuzz", member_ids=[bob.pk])
        other = room_create_group(owner=carol, name="elsewhere", member_ids=[])
        alice_token, bob_token = _token(alice), _token(bob)
    try:
        api = Http(server.port, token=alice_token)
        for text in ("first", "second"):
            body = {"client_msg_id": str(uuid.uuid4()), "body": text}
            answer = api.request("POST", f"/api/v1/rooms/{room.pk}/messages/", body)
            assert answer.status == 202, answer
        with django_db_blocker.unblock():
            _wait(lambda: Message.objects.filter(room=room).count() == 2, 90, "the two messages to be stored")
        for seq in (1, 2):
            assert api.request("POST", "/api/v1/drawer/", {"room": room.pk, "seq": seq}).status == 201
        page = api.request("GET", "/api/v1/drawer/?limit=1").json()
        yield World(
            alice=alice,
            bob=bob,
            carol=carol,
            room=room.pk,
            other_room=other.pk,
            seq=2,
            entry=page["results"][0]["id"],
            cursor=page["next_cursor"],
            alice_token=alice_token,
            bob_token=bob_token,
        )
    finally:
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


def not_stored(django_db_blocker, client_msg_ids) -> set[str]:
    """The ids among ``client_msg_ids`` that no stored message has."""
    with django_db_blocker.unblock():
        found = Message.objects.filter(client_msg_id__in=list(client_msg_ids)).values_list("client_msg_id", flat=True)
        return set(client_msg_ids) - {str(k) for k in found}


def settled(django_db_blocker, client_msg_ids, timeout: float = 20) -> None:
    """Wait until every accepted message is stored, or the time is up (the caller reports the rest).

    The persist consumer logs a record it refused before it stores what came after it in the
    room, so once all are stored (or the wait ends) its log holds everything about them.
    """
    with suppress(AssertionError):
        _wait(lambda: not not_stored(django_db_blocker, client_msg_ids), timeout, "the accepted messages")


def open_sockets(user_id: int) -> int:
    """How many sockets the servers hold for the user (the per-user registry in Redis)."""
    from streams.realtime.hub import redis_client
    from streams.realtime.limits import SocketRegistry

    return redis_client().zcard(SocketRegistry._key(user_id))


# -- HTTP ------------------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str]

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"{self.status} {shorten(self.body.decode('utf-8', 'replace'), 200)}"


class Http:
    """A raw HTTP client: the request target and body go out exactly as given (no re-encoding)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self.cookies: dict[str, str] = {}

    def request(self, method: str, target: str, body=None, *, headers: dict | None = None) -> Answer:
        sent = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Token {self.token}"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in sent.items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            cookies = response.headers.get_all("Set-Cookie") or []
            answer = Answer(response.status, dict(response.headers.items()), data, cookies)
        finally:
            conn.close()
        for header in answer.cookies:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return answer


# Refusals by the HTTP server (Twisted, under daphne) of requests it cannot parse as HTTP; they
# never reach the application, so they are not held to the API's error shape:
# - a bare 400 (no body) and a close: a NUL in a header value (RFC 9110 5.5 lets a server refuse
#   it), a multipart/form-data POST whose body is not multipart (a well-formed one reaches the
#   API: 415 `invalid`). The fuzzer still sends malformed multipart bodies; a NUL header only on
#   the WebSocket handshake;
# - a request line of 16 KB or more: the connection is closed unanswered (behind nginx, a 414).
HTTP_LINE_MAX = 16_384


def too_long_for_http(call) -> bool:
    """Whether ``call``'s request line is past what Twisted reads."""
    return len(call.method) + len(call.target) + len(" HTTP/1.1") >= HTTP_LINE_MAX


def check_http(answer: Answer, target: str, problems: Problems, where: str, given: str) -> None:
    """No 5xx; under /api/, a refusal in the error shape with a documented code."""
    if answer.status >= 500:
        problems.add(f"HTTP {answer.status}: {shorten(answer.body.decode('utf-8', 'replace'), 160)}", where, given)
        return
    if answer.status == 400 and not answer.body and "Content-Type" not in answer.headers:
        return  # refused by the HTTP server (above): the application never saw it
    if target.startswith("/api/") and answer.status >= 400:
        try:
            error = answer.json()["error"]
            ok = error["code"] in ERROR_CODES and "detail" in error
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            problems.add(f"HTTP {answer.status} without the API's error shape: {answer!r}", where, given)


def check_log(tail: LogTail, problems: Problems, where: str, given: str, pattern: str = "web*.log") -> None:
    """Add each traceback logged since the last check to ``problems``, as caused by ``given``.

    By default only the web server's logs: it logs a failure before it answers, so a traceback
    there is this input's. The consumers log later; the tests check every log at the end.
    """
    for line in tail.tracebacks(pattern):
        problems.add(f"traceback logged: {line}", where, given)


def call_site(call) -> str:
    """Where the findings about ``call`` are filed: its method and path, without the query."""
    return f"{call.method} {call.target.split('?')[0]}"


def checked_answer(send, call, problems: Problems, tail: LogTail) -> Answer | None:
    """``send()``'s answer to ``call``, checked (:func:`check_http`, :func:`check_log`); None if none came.

    No answer is a finding too, unless the request line is one the HTTP server drops unanswered.
    """
    where = call_site(call)
    try:
        answer = send()
    except (http.client.HTTPException, OSError) as exc:
        if not too_long_for_http(call):
            problems.add(f"no HTTP answer: {exc!r}", where, call)
        return None
    check_http(answer, call.target, problems, where, call)
    check_log(tail, problems, where, call)
    return answer


# -- generated JSON --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Raw:
    """JSON text written as is (numbers Python would not write, nesting Python cannot encode)."""

    text: str


def dump(value) -> str:
    """JSON text for ``value``; strings with ``\\u`` escapes (lone surrogates as ``\\ud800``)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{dump(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)  # ensure_ascii: NUL, controls and surrogates as \u escapes


def nested(n: int, inner: str = "") -> Raw:
    return Raw("[" * n + inner + "]" * n)


NASTY_CHARS = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f", "\ud800", "\udfff", "\u2028", "\ufeff", "١", "²"]
BIG_NUMBERS = [
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    "9" * 25,
    "1" * 5000,
    "1e999",
    "-1e999",
    "1E400",
    "1.0",
    "-0",
    "0.5",
    "NaN",
    "Infinity",
    "-Infinity",
]
ID_TEXTS = ["١", "²", "١٢", "１", "𝟙", "01", " 1", "1 ", "+1", "0x1", "1e3", "-1", "0", "", "\x00", "1\x00"]
LENGTHS = [4096, 4097, 16_384, 65_000, 65_535, 65_536, 65_537, 70_000]

nasty_text = st.text(st.one_of(st.characters(codec=None), st.sampled_from(NASTY_CHARS)), max_size=24)
long_text = st.builds(
    lambda c, n: c * n, st.sampled_from(["a", "é", "😀", "\x00", "\ud800", " "]), st.sampled_from(LENGTHS)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(BIG_NUMBERS).map(Raw),
    nasty_text,
    st.sampled_from(ID_TEXTS),
    st.uuids().map(str),
)
deep = st.one_of(st.sampled_from([999, 1000, 1024, 1025, 1100]), st.integers(0, 1100)).map(nested)
deep_objects = st.sampled_from([500, 1000, 1100]).map(lambda n: Raw('{"a":' * n + "1" + "}" * n))
json_values = st.recursive(
    st.one_of(scalars, scalars, scalars, deep, deep_objects, long_text),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(nasty_text, children, max_size=4),
    max_leaves=8,
)


def digits_as(text: str, zero: int) -> str:
    """``text``'s ASCII digits written with another script's digits (``zero`` is its 0)."""
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


def is_json_int(value) -> bool:
    """Whether ``value`` is written as a JSON integer (``-0`` and ``2**64`` are; ``1.0`` is not)."""
    if isinstance(value, Raw):
        return re.fullmatch(r"-?(0|[1-9][0-9]*)", value.text) is not None
    return isinstance(value, int) and not isinstance(value, bool)


# -- WebSocket -------------------------------------------------------------------------------------
KNOWN_TYPES = [
    "message.send", "message.edit", "message.delete", "reaction.add", "reaction.remove",
    "room.enter", "room.read", "room.mark_unread", "sync", "typing",
]  # fmt: skip
# Answers that mean a frame was taken as valid (an id it carried was used as an id).
SUCCESS_REPLIES = {"message.accepted", "message.edit.accepted", "message.delete.accepted", "room.entered"}


@dataclass
class Frame:
    """One generated client frame: how it goes on the wire, and what it was made of."""

    kind: str  # "text", "binary", "bad-utf8" (bytes in a text frame)
    payload: str | bytes
    fields: dict | None = None  # the generated object, when it is one

    def __repr__(self) -> str:
        return f"{self.kind} frame {shorten(self.payload, 240)}"

    def full(self) -> str:
        return f"{self.kind} frame {self.payload!r}"


def valid_frame(kind: str, room: int, seq: int) -> dict:
    return {
        "message.send": {"room": room, "client_msg_id": str(uuid.uuid4()), "body": "fuzz hello", "reply_to": seq},
        "message.edit": {"room": room, "seq": seq, "body": "fuzz edit"},
        "message.delete": {"room": room, "seq": seq},
        "reaction.add": {"room": room, "seq": seq, "emoji": "👍"},
        "reaction.remove": {"room": room, "seq": seq, "emoji": "👍"},
        "room.enter": {"room": room},
        "room.read": {"room": room, "seq": seq},
        "room.mark_unread": {"room": room, "seq": seq},
        "sync": {"rooms": {str(room): 0}},
        "typing": {"room": room},
    }[kind]


@st.composite
def frames(draw, room: int, seq: int) -> Frame:
    """A frame of a known type with fields replaced, dropped or added; or junk of every sort."""
    shape = draw(st.sampled_from(["known"] * 6 + ["unknown", "no-type", "value", "raw", "binary", "bad-utf8"]))
    room_ids = st.one_of(
        st.just(room),
        st.sampled_from(
            [
                digits_as(str(room), 0x660),  # Arabic-Indic
                digits_as(str(room), 0xFF10),  # full width
                str(room),
                float(room),
                Raw(f"{room}.0"),
                Raw(f"{room}e0"),
                [room],
                {"id": room},
                True,
                0,
                -room,
                2**63,
            ]
        ),
        json_values,
    )
    if shape in ("known", "unknown", "no-type"):
        kind = draw(st.sampled_from(KNOWN_TYPES))
        fields = valid_frame(kind, room, seq)
        fields["client_msg_id"] = str(draw(st.uuids())) if kind == "message.send" else None
        fields = {k: v for k, v in fields.items() if v is not None}
        for name in list(fields):
            action = draw(st.sampled_from(["keep", "keep", "junk", "drop"]))
            if action == "drop":
                del fields[name]
            elif action == "junk":
                fields[name] = draw(room_ids if name == "room" else json_values)
        if kind == "sync" and "rooms" in fields and draw(st.booleans()):
            fields["rooms"] = draw(
                st.dictionaries(st.one_of(nasty_text, st.sampled_from(ID_TEXTS)), json_values, max_size=3)
            )
        if kind == "message.send" and draw(st.booleans()):
            fields["body"] = draw(st.one_of(nasty_text, long_text, st.sampled_from(["a\x00b", " ", "\t", "\ud800"])))
        fields.update(draw(st.dictionaries(nasty_text, json_values, max_size=2)))
        if shape == "known":
            fields = {"type": kind, **fields}
        elif shape == "unknown":
            fields = {"type": draw(st.one_of(nasty_text, json_values)), **fields}
        fields["req"] = draw(st.one_of(st.just(f"fz-{uuid.uuid4().hex[:8]}"), json_values))
        return Frame("text", dump(fields), fields)
    if shape == "value":
        return Frame("text", dump(draw(json_values)))
    if shape == "raw":
        return Frame("text", draw(st.one_of(nasty_text, st.sampled_from(["", "{", '{"type":', "null", '"x"', "[]"]))))
    if shape == "binary":
        blob = draw(st.one_of(st.binary(max_size=64), st.just(b'{"type":"typing","room":%d}' % room)))
        return Frame("binary", blob)
    return Frame(
        "bad-utf8", draw(st.sampled_from([b"\xff", b'{"type":"typing","room":\xc0\x80}', b"\xed\xa0\x80", b"\x80abc"]))
    )


class FuzzSocket:
    """Alice's socket: sends a frame, proves the socket still answers, reconnects after a close."""

    def __init__(self, server, token: str, user_id: int, problems: Problems, tail: LogTail) -> None:
        self.url = server.ws
        self.token = token
        self.user_id = user_id
        self.problems = problems
        self.tail = tail
        self.ws = None
        self.stack = ExitStack()
        self.accepted: dict[str, Frame] = {}  # client_msg_id -> the frame, for every message.accepted
        self.probe = itertools.count(1)

    def open(self):
        if self.ws is None:
            self.ws = self.stack.enter_context(
                ws_connect(
                    self.url,
                    additional_headers={"Authorization": f"Token {self.token}"},
                    proxy=None,
                    compression=None,
                    max_size=None,
                    open_timeout=20,
                )
            )
        return self.ws

    def throw(self, frame: Frame) -> None:
        ws = self.open()
        req = f"probe-{next(self.probe)}"
        where = "WS /ws/chat/"
        replies = []
        try:
            if frame.kind == "text":
                ws.send(frame.payload.encode("utf-8", "surrogatepass"), text=True)
            else:
                ws.send(
                    frame.payload if isinstance(frame.payload, bytes) else frame.payload.encode(),
                    text=frame.kind == "bad-utf8",
                )
            ws.send(json.dumps({"type": "sync", "rooms": {}, "req": req}))
            deadline = time.monotonic() + 20
            while True:
                reply = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                replies.append(reply)
                if reply.get("type") == "sync.done" and reply.get("req") == req:
                    break
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            allowed = CLOSE_CODES | ({CLOSE_INVALID_UTF8} if frame.kind == "bad-utf8" else set())
            if code not in allowed:
                self.problems.add(f"socket closed with code {code} ({exc})", where, frame)
            self.close()
            # What the server logs about a close it made comes after the close frame: wait until it
            # has let go of the socket (its slot in the user's socket registry), so a traceback is
            # read with this frame and not the next one.
            _wait(lambda: not open_sockets(self.user_id), 20, "the server to let go of the closed socket")
        except TimeoutError:
            self.problems.add("no answer to a `sync` probe within 20 s after the frame", where, frame)
            self.close()
        for reply in replies:
            self.judge(frame, reply, where)
        check_log(self.tail, self.problems, where, frame)

    def judge(self, frame: Frame, reply: dict, where: str) -> None:
        kind = reply.get("type")
        if kind == "error" and reply.get("code") not in ERROR_CODES:
            self.problems.add(
                f"error frame with code {reply.get('code')!r}: {shorten(reply.get('detail'))}", where, frame
            )
        if kind == "message.accepted":
            self.accepted[reply["client_msg_id"]] = frame
        fields = frame.fields
        answered = kind in SUCCESS_REPLIES and fields is not None and reply.get("req") == fields.get("req")
        if answered and "room" in fields and not is_json_int(fields["room"]):
            self.problems.add(f"{kind} for a `room` that is not a JSON integer", where, frame)

    def close(self) -> None:
        self.stack.close()
        self.ws = None


def delivered(server, world: World, problems: Problems, where: str) -> None:
    """After the fuzzing: Alice's normal message.send reaches Bob as message.new."""
    msg_id = str(uuid.uuid4())
    headers = lambda token: {"Authorization": f"Token {token}"}  # noqa: E731
    try:
        with (
            ws_connect(server.ws, additional_headers=headers(world.bob_token), proxy=None, open_timeout=20) as bob,
            ws_connect(server.ws, additional_headers=headers(world.alice_token), proxy=None, open_timeout=20) as alice,
        ):
            alice.send(
                json.dumps(
                    {"type": "message.send", "room": world.room, "client_msg_id": msg_id, "body": "still there?"}
                )
            )
            deadline = time.monotonic() + 30
            while True:
                frame = json.loads(bob.recv(timeout=max(0.1, deadline - time.monotonic())))
                if frame.get("type") == "message.new" and frame["message"]["client_msg_id"] == msg_id:
                    return
    except (TimeoutError, ConnectionClosed, InvalidHandshake, OSError) as exc:
        problems.add(f"a member's message after the fuzzing did not reach another member: {exc!r}", where, msg_id)


# -- the tests -------------------------------------------------------------------------------------
def test_generated_websocket_frames_never_break_the_socket_or_the_server(server, world, django_db_blocker, request):
    problems = Problems()
    tail = LogTail(server.log_dir)
    sock = FuzzSocket(server, world.alice_token, world.alice.pk, problems, tail)
    room, seq = world.room, world.seq

    def text(fields: dict) -> Frame:
        return Frame("text", dump(fields), fields)

    @settings(FUZZ, max_examples=110)
    @given(frame=frames(room, seq))
    @example(
        frame=text(
            {"type": "message.send", "room": room, "client_msg_id": str(uuid.uuid4()), "body": "a\x00b", "req": "nul"}
        )
    )
    @example(
        frame=text(
            {
                "type": "message.send",
                "room": digits_as(str(room), 0x660),
                "client_msg_id": str(uuid.uuid4()),
                "body": "x",
                "req": "arabic",
            }
        )
    )
    @example(frame=text({"type": "room.enter", "room": digits_as(str(room), 0x660), "req": "arabic-enter"}))
    @example(frame=text({"type": "sync", "rooms": {digits_as(str(room), 0x660): 0}, "req": "arabic-sync"}))
    @example(frame=text({"type": "sync", "rooms": {"²": 0}, "req": "superscript-sync"}))
    @example(frame=text({"type": "room.read", "room": room, "seq": Raw(str(2**63)), "req": "big-seq"}))
    @example(frame=text({"type": "room.read", "room": Raw(str(2**64)), "seq": 1, "req": "big-room"}))
    @example(
        frame=text(
            {
                "type": "message.send",
                "room": room,
                "client_msg_id": str(uuid.uuid4()),
                "body": "\ud800",
                "req": "surrogate",
            }
        )
    )
    @example(
        frame=text({"type": "message.send", "room": room, "client_msg_id": str(uuid.uuid4()), "body": "é" * 70_000})
    )
    @example(frame=Frame("text", nested(1100).text))
    @example(frame=text({"type": "typing", "room": nested(1100)}))
    @example(frame=Frame("text", '{"type":"sync","rooms":{"1":' + "1" * 5000 + "}}"))
    @example(frame=Frame("binary", b'{"type":"typing"}'))
    @example(frame=Frame("bad-utf8", b'{"type":"typing","room":"\xff"}'))
    @example(frame=Frame("text", "x" * 1_100_000))
    @example(frame=text({"type": "no.such.type", "req": nested(300)}))
    def throw(frame: Frame) -> None:
        sock.throw(frame)

    throw()
    # The WebSocket handshake: missing or malformed credentials are closed with 4401.
    for auth in [None, "Token", "Token ", "Token " + "a" * 5000, "Token ١٢٣", "Token \x00", "Bearer x", "Token a b"]:
        headers = {} if auth is None else {"Authorization": auth}
        try:
            with ws_connect(server.ws, additional_headers=headers, proxy=None, open_timeout=20) as ws:
                ws.recv(timeout=10)
                problems.add("an unauthenticated socket was not closed", "WS handshake", auth)
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 4401:
                problems.add(f"closed with {exc.rcvd and exc.rcvd.code}, not 4401", "WS handshake", auth)
        except (InvalidHandshake, ValueError) as exc:  # refused before upgrading, or not sendable
            if "500" in str(exc):
                problems.add(f"handshake answered {exc}", "WS handshake", auth)
        check_log(tail, problems, "WS handshake", auth)
    sock.close()

    delivered(server, world, problems, "after the WebSocket fuzzing")
    settled(django_db_blocker, sock.accepted)
    check_log(tail, problems, "after the WebSocket fuzzing", "one of the accepted frames", "*.log")
    for msg_id in not_stored(django_db_blocker, sock.accepted):
        problems.add("answered message.accepted but never stored", "WS message.send", sock.accepted[msg_id])
    assert not problems.seen, problems.report(server.log_dir / f"fuzz-{request.node.name}.txt")


# -- REST and pages --------------------------------------------------------------------------------
QUERY_TEXTS = [
    "9999-12-31",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00+23:59",
    "2026-01-01T00:00:00-23:59",
    "2026-13-45",
    "-23:59",
    "²",
    "١",
    "١٢",
    "１",
    "NaN",
    "1e309",
    "-1",
    "0",
    "9" * 19,
    "9" * 25,
    str(2**63),
    str(-(2**63) - 1),
    "\x00",
    "a\x00b",
    "",
    " ",
    "newest",
    "first_unread",
    "true",
    "\ud800",
]
# Written into the query string as they are: percent-encoding that does not decode, or decodes to junk.
RAW_QUERY = ["%", "%zz", "%ff%fe", "%00", "%C0%80", "%E2%82", "%ED%A0%80", "=", "&&", ";", "a=%", "+%2B+"]
CONTENT_TYPES = [
    "application/json",
    "application/json",
    "application/json",
    "application/json; charset=utf-16",
    "application/json; charset=bogus",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=zz",
    None,
]
RAW_BODIES = [
    b"[" * 1000,
    b"[" * 1000 + b"]" * 1000,
    b'{"a":' * 1000,
    b"[" * 100_000,
    b"1" * 5000,
    b"NaN",
    b"",
    b"\x00",
    b"\xff\xfe",
    b'{"body": "\xff"}',
    b'{"seq": 1',
]

query_values = st.one_of(
    st.sampled_from(QUERY_TEXTS),
    st.integers().map(str),
    nasty_text,
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()),
    st.sampled_from([900, 1000, 1001, 5000]).map(lambda n: "7" * n),
)
path_ids = st.sampled_from(["0", str(2**63 - 1), str(2**63), "9" * 25, "%D9%A1", "-1", "1.0"])


def encode(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def cursor_for(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


FAR_CURSOR = cursor_for('["9999-12-31T23:59:59-23:59",1]')  # a time PostgreSQL cannot take

cursors = st.one_of(
    st.sampled_from(
        [
            FAR_CURSOR,
            cursor_for('["9999-12-31T23:59:59+00:00",1]'),
            cursor_for('["0001-01-01T00:00:00+23:59",1]'),
            cursor_for(f'["2026-01-01T00:00:00+00:00",{2**63}]'),
            cursor_for('["2026-01-01T00:00:00+00:00",' + "1" * 5000 + "]"),
            cursor_for("[" * 1000),
            cursor_for("[" * 1000 + "]" * 1000),
            "!!!",
            "=",
        ]
    ),
    st.builds(lambda a, b: cursor_for(dump([a, b])), json_values, json_values),
)


@st.composite
def queries(draw, params: list[str], world: World) -> str:
    """A query string over ``params`` (and some others) with generated values, sometimes broken."""
    pairs = []
    for name in draw(st.lists(st.sampled_from([*params, "x"] if params else ["x"]), max_size=4)):
        value = (
            draw(cursors | st.just(world.cursor)) if name == "cursor" and draw(st.booleans()) else draw(query_values)
        )
        pairs.append(f"{encode(name)}={encode(value)}")
    if draw(st.integers(0, 5)) == 0:
        pairs.append(draw(st.sampled_from(RAW_QUERY)))
    return "?" + "&".join(pairs) if pairs else ""


def fill(template: str, world: World, draw) -> str:
    ids = {"room": world.room, "seq": world.seq, "entry": world.entry}
    for name, real in ids.items():
        if "{" + name + "}" in template:
            value = draw(st.one_of(st.just(str(real)), st.just(str(real)), st.just(str(world.other_room)), path_ids))
            template = template.replace("{" + name + "}", value)
    return template


REST_READS = [
    ("/api/v1/rooms/{room}/messages/", ["anchor", "before", "after", "limit"]),
    ("/api/v1/drawer/", ["since", "until", "cursor", "room", "tag", "q", "limit"]),
    ("/api/v1/search/", ["q", "room", "before", "limit"]),
    ("/api/v1/users/", ["q"]),
    ("/api/v1/rooms/{room}/participants/", []),
    ("/api/v1/rooms/{room}/", []),
    ("/api/v1/rooms/{room}/messages/{seq}/readers/", []),
    ("/api/v1/drawer/{entry}/", []),
]
# (method, path, a valid body, the fields that are integers in the schema)
REST_WRITES = [
    ("POST", "/api/v1/auth/token/", {"username": "nobody", "password": "wrong"}, ()),
    ("POST", "/api/v1/accounts/", {"username": "fuzzed", "password": "x"}, ()),
    ("POST", "/api/v1/rooms/{room}/messages/", {"client_msg_id": "", "body": "fuzz hello"}, ()),
    ("PATCH", "/api/v1/rooms/{room}/messages/{seq}/", {"body": "edited by the fuzzer"}, ()),
    ("POST", "/api/v1/rooms/{room}/read/", {"seq": 1}, ("seq",)),
    ("POST", "/api/v1/rooms/{room}/unread/", {"seq": 1}, ("seq",)),
    ("POST", "/api/v1/rooms/{room}/participants/", {"user": 1}, ("user",)),
    ("POST", "/api/v1/drawer/", {"room": 1, "seq": 1, "note": "n", "tags": ["t"]}, ("room", "seq", "message")),
    ("PATCH", "/api/v1/drawer/{entry}/", {"note": "n", "tags": ["t"]}, ()),
    ("POST", "/api/v1/rooms/", {"kind": "group", "name": "fuzz", "is_public": False}, ("user",)),
    ("PATCH", "/api/v1/rooms/{room}/", {"name": "fuzzed name"}, ()),
]


@dataclass
class Call:
    """One generated HTTP request."""

    method: str
    target: str
    who: str  # "alice", "anonymous", or a junk Authorization header
    body: bytes | None = None
    content_type: str | None = None
    fields: dict | None = None
    int_fields: tuple = ()

    def __repr__(self) -> str:
        body = "" if self.body is None else f" body={shorten(self.body, 200)} ({self.content_type})"
        return f"{self.method} {shorten(self.target, 200)} as {shorten(repr(self.who), 60)}{body}"

    def full(self) -> str:
        body = "" if self.body is None else f" body={self.body!r} ({self.content_type})"
        return f"{self.method} {self.target} as {self.who!r}{body}"


@st.composite
def rest_calls(draw, world: World) -> Call:
    who = draw(
        st.sampled_from(["alice"] * 8 + ["anonymous", "Token ١٢٣", "Token \x01\x1f", "Token " + "a" * 3000, "Bearer x"])
    )
    if draw(st.booleans()):
        path, params = draw(st.sampled_from(REST_READS))
        return Call("GET", fill(path, world, draw) + draw(queries(params, world)), who)
    method, path, body, int_fields = draw(st.sampled_from(REST_WRITES))
    target = fill(path, world, draw)
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    fields = dict(body)
    if "client_msg_id" in fields:
        fields["client_msg_id"] = str(draw(st.uuids()))
    if "room" in fields:
        fields["room"], fields["seq"] = world.room, world.seq
    shape = draw(st.sampled_from(["fields"] * 4 + ["value", "raw"]))
    if shape == "raw":
        return Call(method, target, who, draw(st.sampled_from(RAW_BODIES)), content_type)
    if shape == "value":
        return Call(method, target, who, dump(draw(json_values)).encode("utf-8", "surrogatepass"), content_type)
    for name in list(fields):
        action = draw(st.sampled_from(["keep", "keep", "junk", "drop"]))
        if action == "drop":
            del fields[name]
        elif action == "junk":
            fields[name] = draw(json_values)
    if "body" in fields and draw(st.booleans()):
        fields["body"] = draw(st.one_of(nasty_text, long_text, st.sampled_from(["a\x00b", " ", "\ud800"])))
    fields.update(draw(st.dictionaries(nasty_text, json_values, max_size=2)))
    payload = dump(fields).encode("utf-8", "surrogatepass")
    return Call(method, target, who, payload, content_type, fields, int_fields)


def send_call(client: Http, call: Call, world: World) -> Answer:
    headers = {}
    if call.who == "alice":
        headers["Authorization"] = f"Token {world.alice_token}"
    elif call.who != "anonymous":
        headers["Authorization"] = call.who.encode("utf-8")
    if call.content_type:
        headers["Content-Type"] = call.content_type
    return client.request(call.method, call.target, call.body, headers=headers)


def test_generated_rest_calls_never_answer_5xx(server, world, django_db_blocker, request):
    problems = Problems()
    tail = LogTail(server.log_dir)
    client = Http(server.port)
    accepted: dict[str, Call] = {}

    def json_call(method: str, target: str, body: bytes, who: str = "alice") -> Call:
        return Call(method, target, who, body, "application/json")

    room = world.room

    @settings(FUZZ, max_examples=110)
    @given(call=rest_calls(world))
    @example(call=json_call("POST", "/api/v1/auth/token/", b"[" * 1000, who="anonymous"))
    @example(call=json_call("POST", "/api/v1/accounts/", b"[" * 1000, who="anonymous"))
    @example(call=json_call("POST", f"/api/v1/rooms/{room}/messages/", b"[" * 1000))
    @example(call=Call("GET", "/api/v1/drawer/?until=9999-12-31", "alice"))
    @example(call=Call("GET", "/api/v1/drawer/?since=0000-01-01", "alice"))
    @example(call=Call("GET", f"/api/v1/drawer/?cursor={cursor_for('[' * 1000)}", "alice"))
    @example(call=Call("GET", f"/api/v1/drawer/?cursor={FAR_CURSOR}", "alice"))
    @example(call=Call("GET", f"/api/v1/rooms/{room}/messages/?before=%C2%B2", "alice"))
    @example(call=Call("GET", f"/api/v1/rooms/{room}/messages/?limit=%00", "alice"))
    @example(call=Call("GET", f"/api/v1/search/?q=a%00b&room={room}", "alice"))
    @example(call=Call("GET", f"/api/v1/rooms/{2**63}/messages/", "alice"))
    @example(call=Call("GET", "/api/v1/rooms/%D9%A1/", "alice"))
    @example(call=Call("GET", "/api/v1/rooms/", "Token \x7f"))
    @example(
        call=json_call(
            "POST",
            f"/api/v1/rooms/{room}/messages/",
            b'{"client_msg_id":"%s","body":"a\\u0000b"}' % str(uuid.uuid4()).encode(),
        )
    )
    @example(call=json_call("POST", f"/api/v1/rooms/{room}/read/", b'{"seq":"\\u0661"}'))
    @example(call=json_call("POST", f"/api/v1/rooms/{room}/read/", b'{"seq":%d}' % 2**63))
    @example(
        call=Call(
            "POST",
            "/api/v1/auth/token/",
            "anonymous",
            b'{"username":"a","password":"b"}',
            "application/json; charset=bogus",
        )
    )
    def throw(call: Call) -> None:
        answer = checked_answer(lambda: send_call(client, call, world), call, problems, tail)
        if answer is None:
            return
        if 200 <= answer.status < 300 and isinstance(call.fields, dict):
            for name in call.int_fields:
                if name in call.fields and not is_json_int(call.fields[name]):
                    problems.add(f"{answer.status} for a `{name}` that is not a JSON integer", call_site(call), call)
            if answer.status == 202 and call.method == "POST" and "client_msg_id" in call.fields:
                accepted[answer.json()["client_msg_id"]] = call

    throw()
    delivered(server, world, problems, "after the REST fuzzing")
    settled(django_db_blocker, accepted)
    check_log(tail, problems, "after the REST fuzzing", "one of the accepted sends", "*.log")
    for msg_id in not_stored(django_db_blocker, accepted):
        problems.add("answered 202 but never stored", "POST /api/v1/rooms/<id>/messages/", accepted[msg_id])
    assert not problems.seen, problems.report(server.log_dir / f"fuzz-{request.node.name}.txt")


def login(client: Http, username: str) -> None:
    """A browser's log-in: the form's CSRF cookie, then the form."""
    client.request("GET", "/login/")
    form = f"username={encode(username)}&password={encode(PASSWORD)}&csrfmiddlewaretoken={client.cookies['csrftoken']}"
    answer = client.request(
        "POST", "/login/", form.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status == 302 and "sessionid" in client.cookies, answer


@st.composite
def page_calls(draw, world: World) -> Call:
    kind = draw(st.sampled_from(["room", "room", "drawer", "drawer", "list", "login", "signup"]))
    if kind == "room":
        target = fill("/rooms/{room}/", world, draw) + draw(queries(["at"], world))
        return Call("GET", target, "alice")
    if kind == "drawer":
        return Call(
            "GET",
            "/drawer/" + draw(queries(["room", "tag", "since", "until", "q", "cursor", "partial"], world)),
            "alice",
        )
    if kind == "list":
        return Call("GET", "/" + draw(queries(["x"], world)), "alice")
    names = ["username", "password"] if kind == "login" else ["username", "password1", "password2"]
    pairs = [
        f"{encode(n)}={encode(draw(st.one_of(query_values, long_text)))}" for n in names if draw(st.integers(0, 4))
    ]
    if draw(st.integers(0, 5)) == 0:
        pairs.append(draw(st.sampled_from(RAW_QUERY)))
    return Call("POST", f"/{kind}/", "anonymous", "&".join(pairs).encode(), "application/x-www-form-urlencoded")


def test_generated_page_requests_never_answer_5xx(server, world, request):
    problems = Problems()
    tail = LogTail(server.log_dir)
    browser = Http(server.port)
    login(browser, world.alice.username)
    visitor = Http(server.port)
    visitor.request("GET", "/signup/")
    room = world.room

    @settings(FUZZ, max_examples=40)
    @given(call=page_calls(world))
    @example(call=Call("GET", f"/rooms/{room}/?at=%C2%B2", "alice"))
    @example(call=Call("GET", f"/rooms/{room}/?at=%D9%A1", "alice"))
    @example(call=Call("GET", f"/rooms/{2**63}/", "alice"))
    @example(call=Call("GET", "/drawer/?until=9999-12-31", "alice"))
    @example(call=Call("GET", f"/drawer/?cursor={FAR_CURSOR}", "alice"))
    @example(call=Call("GET", f"/drawer/?cursor={cursor_for('[' * 1000)}", "alice"))
    @example(
        call=Call("POST", "/login/", "anonymous", b"username=a%00b&password=x", "application/x-www-form-urlencoded")
    )
    @example(
        call=Call(
            "POST",
            "/signup/",
            "anonymous",
            b"username=%ED%A0%80&password1=x&password2=x",
            "application/x-www-form-urlencoded",
        )
    )
    def throw(call: Call) -> None:
        client = browser if call.who == "alice" else visitor
        headers = {}
        if call.method == "POST":
            visitor.cookies.pop("sessionid", None)  # stay anonymous: a sign-up logs the visitor in
            headers = {"Content-Type": call.content_type, "X-CSRFToken": visitor.cookies.get("csrftoken", "")}
        checked_answer(
            lambda: client.request(call.method, call.target, call.body, headers=headers), call, problems, tail
        )

    throw()
    delivered(server, world, problems, "after the page fuzzing")
    check_log(tail, problems, "after the page fuzzing", "-", "*.log")
    assert not problems.seen, problems.report(server.log_dir / f"fuzz-{request.node.name}.txt")
