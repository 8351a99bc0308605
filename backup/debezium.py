"""Debezium-shaped change events from decoded pgoutput rows (see :mod:`backup.pgoutput`).

The shape is Debezium's PostgreSQL connector's with JSON schemas off, so the backup consumer
reads the same events from our capture and from real Debezium on Kafka Connect: key
``{"id": 1}``, value ``{"before", "after", "source", "op", "ts_ms", "transaction"}``.

Column values are turned from PostgreSQL's text format into what Debezium's default
converters give (``decimal.handling.mode=string``, ``time.precision.mode=adaptive``), by the
column's type OID; the table of covered types is :data:`SCALARS` and :data:`ARRAYS` below:

- int2, int4, int8, oid -> int; bool -> true/false; float4, float8 -> float (NaN and
  infinities stay strings, JSON has no such number)
- text, varchar, bpchar, name, uuid, numeric -> string; json, jsonb -> the JSON text as a string
- timestamptz -> ISO 8601 in UTC ending in "Z" (io.debezium.time.ZonedTimestamp), the fraction
  as wide as the column's precision (6 without one), as Debezium 2.2+ pads it
- timestamp -> microseconds since the epoch (MicroTimestamp; milliseconds for timestamp(0..3))
- date -> days since the epoch; bytea -> base64 (binary.handling.mode=bytes)
- arrays of the types above -> JSON lists of the converted elements, NULL elements -> null
  (nested lists for more than one dimension)

Any other type (and infinity, BC dates, years past 9999) passes as its text. A TOASTed value an
update left unchanged is :data:`UNAVAILABLE`, Debezium's placeholder: the consumer keeps the
column as it is.

The text format of dates and times depends on the decoding session's DateStyle and TimeZone:
capture must decode with ``DateStyle=ISO`` (PostgreSQL's default); any TimeZone is converted.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from .pgoutput import (
    UNCHANGED,
    Begin,
    Binary,
    Commit,
    Delete,
    Insert,
    PgOutputMessage,
    Relation,
    TupleData,
    Update,
    unix_us,
)

VERSION = "2.7.0.Final"
CONNECTOR = "postgresql"
SERVER_NAME = "chat"  # Debezium's topic.prefix: the topic chat.public.<table> is routed to chat.cdc
UNAVAILABLE = "__debezium_unavailable_value"

_EPOCH_DAY = date(1970, 1, 1).toordinal()


def _bool(text: str, typmod: int) -> bool:
    # "t" from pgoutput (the type's output function); "true" from a snapshot's ``column::text``
    # (the bool-to-text cast spells it out).
    return text in ("t", "true")


def _int(text: str, typmod: int) -> int:
    return int(text)


def _float(text: str, typmod: int) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def _string(text: str, typmod: int) -> str:
    return text


def _bytea(text: str, typmod: int) -> str:
    if not text.startswith("\\x"):  # bytea_output = escape: leave it as PostgreSQL wrote it
        return text
    return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")


def _timestamptz(text: str, typmod: int) -> str:
    width = typmod if 0 <= typmod <= 6 else 6
    if text.endswith("+00") and len(text) >= 22 and text[10] == " ":
        # Already UTC (capture's sessions run in UTC): cut and pad, no parsing. It was half of the
        # time spent making events (a py-spy of capture under S3).
        main, _, fraction = text[:-3].partition(".")
        fraction = "." + (fraction + "000000")[:width] if width else ""
        return f"{main[:10]}T{main[11:]}{fraction}Z"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:  # infinity, BC, a year past 9999
        return text
    if moment.tzinfo is None:  # not a timestamptz's text after all
        return text
    moment = moment.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}"[: width + 1] if width else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def _timestamp(text: str, typmod: int) -> int | str:
    try:
        micros = unix_us(datetime.fromisoformat(text).replace(tzinfo=UTC))
    except ValueError:
        return text
    return micros // 1000 if 0 <= typmod <= 3 else micros


def _date(text: str, typmod: int) -> int | str:
    try:
        return date.fromisoformat(text).toordinal() - _EPOCH_DAY
    except ValueError:
        return text


Converter = Callable[[str, int], Any]

# Type OIDs (pg_type.oid, fixed for built-in types) -> converter. Anything missing: _string.
SCALARS: dict[int, Converter] = {
    16: _bool,  # bool
    17: _bytea,  # bytea
    19: _string,  # name
    20: _int,  # int8
    21: _int,  # int2
    23: _int,  # int4
    25: _string,  # text
    26: _int,  # oid
    114: _string,  # json
    700: _float,  # float4
    701: _float,  # float8
    1042: _string,  # bpchar
    1043: _string,  # varchar
    1082: _date,  # date
    1114: _timestamp,  # timestamp
    1184: _timestamptz,  # timestamptz
    1700: _string,  # numeric
    2950: _string,  # uuid
    3802: _string,  # jsonb
}

# Array type OID -> its element's type OID.
ARRAYS: dict[int, int] = {
    1000: 16,  # bool[]
    1001: 17,  # bytea[]
    1005: 21,  # int2[]
    1007: 23,  # int4[]
    1009: 25,  # text[]
    1014: 1042,  # bpchar[]
    1015: 1043,  # varchar[]
    1016: 20,  # int8[]
    1021: 700,  # float4[]
    1022: 701,  # float8[]
    1115: 1114,  # timestamp[]
    1182: 1082,  # date[]
    1185: 1184,  # timestamptz[]
    1231: 1700,  # numeric[]
    199: 114,  # json[]
    2951: 2950,  # uuid[]
    3807: 3802,  # jsonb[]
}


def parse_array(text: str) -> list:
    """PostgreSQL's array text (``{1,NULL,"a,b"}``) -> nested lists of ``str`` and ``None``.

    Elements are quoted when they hold a delimiter, brace, quote, backslash or space, or are
    empty or "NULL"; inside quotes a backslash escapes the next character. An unquoted NULL is
    SQL NULL. A ``[1:2]=`` bounds prefix (non-default lower bounds) is skipped.
    """
    if text.startswith("["):
        text = text[text.index("=") + 1 :]
    value, end = _parse_level(text, 0)
    if end != len(text):
        raise ValueError(f"trailing characters in array text at {end}: {text!r}")
    return value


def _parse_level(text: str, pos: int) -> tuple[list, int]:
    if text[pos] != "{":
        raise ValueError(f"expected '{{' at {pos}: {text!r}")
    pos += 1
    items: list = []
    if text[pos] == "}":
        return items, pos + 1
    while True:
        if text[pos] == "{":
            item, pos = _parse_level(text, pos)
            items.append(item)
        elif text[pos] == '"':
            chars, pos = [], pos + 1
            while text[pos] != '"':
                if text[pos] == "\\":
                    pos += 1
                chars.append(text[pos])
                pos += 1
            items.append("".join(chars))
            pos += 1
        else:
            start = pos
            while text[pos] not in ",}":
                pos += 1
            raw = text[start:pos].strip()
            items.append(None if raw.upper() == "NULL" else raw)
        if text[pos] == "}":
            return items, pos + 1
        if text[pos] != ",":
            raise ValueError(f"expected ',' or '}}' at {pos}: {text!r}")
        pos += 1


def _convert_elements(items: list, convert: Converter) -> list:
    return [
        None if item is None else _convert_elements(item, convert) if isinstance(item, list) else convert(item, -1)
        for item in items
    ]


def to_json(type_oid: int, text: str, *, typmod: int = -1) -> Any:
    """A column value in PostgreSQL's text format -> the JSON value Debezium would give it."""
    element = ARRAYS.get(type_oid)
    if element is not None:
        return _convert_elements(parse_array(text), SCALARS.get(element, _string))
    return SCALARS.get(type_oid, _string)(text, typmod)


def row(relation: Relation, data: TupleData | Sequence[str | None]) -> dict[str, Any]:
    """One decoded tuple -> ``{column: JSON value}`` in the relation's column order.

    Values may also be ``str`` (the text format already decoded): rows a snapshot read with
    ``column::text``.
    """
    if len(data) != len(relation.columns):
        raise ValueError(f"{relation.name}: {len(data)} values for {len(relation.columns)} columns")
    values: dict[str, Any] = {}
    for column, datum in zip(relation.columns, data, strict=True):
        if datum is None:
            values[column.name] = None
        elif datum is UNCHANGED:
            values[column.name] = UNAVAILABLE
        elif isinstance(datum, Binary):
            raise ValueError(f"{relation.name}.{column.name}: binary values are not converted (decode with text)")
        else:
            text = datum if isinstance(datum, str) else datum.decode()
            values[column.name] = to_json(column.type_oid, text, typmod=column.typmod)
    return values


def event(
    *,
    relation: Relation,
    op: str,
    new: TupleData | Sequence[str | None] | None,
    old: TupleData | Sequence[str | None] | None,
    xid: int | None,
    lsn: int,
    commit_ms: int,
    db_name: str,
    captured_ms: int,
    last_commit_lsn: int | None = None,
    key_columns: Sequence[str] | None = None,
    server_name: str = SERVER_NAME,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One row change -> Debezium's ``(key, value)``, both to be serialized as JSON.

    ``op``: "c" insert, "u" update, "d" delete, "r" snapshot read. ``new`` is the row after
    (None for "d"), ``old`` the key or old row pgoutput sent (a delete's; an update's only when
    its key changed or the identity is FULL, else None: ``before`` is then null, as with
    Debezium). ``lsn`` is the change's own LSN (Debezium's ``source.lsn``: XLogData's
    ``data_start``, or the slot function's ``lsn``); ``commit_ms`` and ``xid`` its transaction's
    (``Begin.commit_ms``, ``Begin.xid``; for a snapshot read: the read time, and the xid or None). ``last_commit_lsn`` fills the first slot of ``source.sequence``
    (Debezium: the LSN of the last commit it had stored; null when not known).
    ``key_columns``: the key, by default the relation's replica identity columns (its primary
    key under REPLICA IDENTITY DEFAULT; pass the primary key's names under FULL).
    """
    if op not in ("c", "u", "d", "r"):
        raise ValueError(f"op must be c, u, d or r, not {op!r}")
    before = row(relation, old) if old is not None else None
    after = row(relation, new) if new is not None else None
    keyed = after if after is not None else before
    if keyed is None:
        raise ValueError("an event needs a new or an old tuple")
    names = list(key_columns) if key_columns is not None else [c.name for c in relation.columns if c.key]
    key = {name: keyed[name] for name in names}
    source = {
        "version": VERSION,
        "connector": CONNECTOR,
        "name": server_name,
        "ts_ms": commit_ms,
        "snapshot": "true" if op == "r" else "false",
        "db": db_name,
        "sequence": json.dumps([None if last_commit_lsn is None else str(last_commit_lsn), str(lsn)]),
        "ts_us": commit_ms * 1000,
        "ts_ns": commit_ms * 1_000_000,
        "schema": relation.namespace or "pg_catalog",
        "table": relation.name,
        "txId": xid,
        "lsn": lsn,
        "xmin": None,
    }
    value = {
        "before": before,
        "after": after,
        "source": source,
        "op": op,
        "ts_ms": captured_ms,
        "ts_us": captured_ms * 1000,
        "ts_ns": captured_ms * 1_000_000,
        "transaction": None,
    }
    return key, value


class EventStream:
    """Decoded pgoutput messages in order -> Debezium events, remembering relations and the open transaction.

    Feed every message with its LSN (``pg_logical_slot_get_binary_changes``' lsn, or XLogData's
    start); Relation, Begin and Commit update the state, row changes give an event, everything
    else (Origin, Type, Truncate, Message) gives none (Debezium skips truncates by default).
    """

    def __init__(self, *, db_name: str, server_name: str = SERVER_NAME) -> None:
        self.db_name = db_name
        self.server_name = server_name
        self.relations: dict[int, Relation] = {}
        self.begin: Begin | None = None
        self.last_commit_lsn: int | None = None

    def feed(self, lsn: int, message: PgOutputMessage, *, captured_ms: int) -> tuple[dict, dict] | None:
        if isinstance(message, Relation):
            self.relations[message.oid] = message  # a later Relation replaces it (the table changed)
        elif isinstance(message, Begin):
            self.begin = message
        elif isinstance(message, Commit):
            self.begin, self.last_commit_lsn = None, message.commit_lsn
        elif isinstance(message, Insert | Update | Delete):
            if self.begin is None:
                raise ValueError(f"a row change at {lsn} outside a transaction")
            relation = self.relations.get(message.relation_oid)
            if relation is None:
                raise ValueError(f"a row change at {lsn} of relation {message.relation_oid} before its Relation")
            if isinstance(message, Insert):
                op, new, old = "c", message.new, None
            elif isinstance(message, Update):
                op, new, old = "u", message.new, message.old
            else:
                op, new, old = "d", None, message.old
            return event(
                relation=relation,
                op=op,
                new=new,
                old=old,
                xid=self.begin.xid,
                lsn=lsn,
                commit_ms=self.begin.commit_ms,
                db_name=self.db_name,
                captured_ms=captured_ms,
                last_commit_lsn=self.last_commit_lsn,
                server_name=self.server_name,
            )
        return None
