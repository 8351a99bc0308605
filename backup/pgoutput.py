"""Decode PostgreSQL's logical replication protocol as the ``pgoutput`` plugin writes it.

Protocol version 1 is what capture requests (``proto_version '1'``): Begin, Commit, Origin,
Relation, Type, Insert, Update, Delete, Truncate and Message (the last only with the
``messages 'true'`` option). The version 2 streaming messages (Stream Start/Stop/Commit/Abort)
are decoded too, and ``decode(..., in_stream=True)`` reads the transaction id that version 2
puts in front of the other messages inside a stream; version 3's two-phase messages are not
(an unknown kind raises :class:`DecodeError`). Reference: the PostgreSQL manual, "Logical
Replication Message Formats".

Written here rather than taken from PyPI: ``pypgoutput`` (0.0.3, last release 2022) needs
psycopg2 *and* pydantic, bundles its own replication reader and is unmaintained; the other
candidates are a single 0.0.x release or a Rust extension. The format is small and stable, so
a ~200-line struct reader with its own tests is less to trust than any of them.

:func:`relation_of` reads the Relation pgoutput would send from the catalog (for rows read by
a snapshot, outside the stream). Values stay as the plugin sent them: a column of a :data:`TupleData` is ``None`` (SQL NULL),
:data:`UNCHANGED` (a TOASTed value the update did not touch, so not sent), ``bytes`` (the
value in the text format, UTF-8) or :class:`Binary` (only when ``binary 'true'`` was asked).
Turning the text into JSON values by the column's type is :mod:`backup.debezium`'s job.
Timestamps become aware UTC datetimes (the wire has microseconds since 2000-01-01 UTC); LSNs
stay ints (:func:`lsn_to_int` / :func:`lsn_to_str` convert the ``X/Y`` text form).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Relation.replica_identity values (pg_class.relreplident).
IDENTITY_DEFAULT, IDENTITY_NOTHING, IDENTITY_FULL, IDENTITY_INDEX = "d", "n", "f", "i"

# Truncate.options bits.
TRUNCATE_CASCADE, TRUNCATE_RESTART_IDENTITY = 1, 2


class DecodeError(ValueError):
    """The bytes are not a pgoutput message this module knows (or are cut short)."""


class _Unchanged(enum.Enum):
    """The type of :data:`UNCHANGED` (an enum: one instance, compared with ``is``, pickles)."""

    UNCHANGED = "UNCHANGED"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged.UNCHANGED
"""A TOASTed column an update left as it was: pgoutput does not send its value ('u')."""


@dataclass(frozen=True)
class Binary:
    """A value in the type's binary send format ('b'): only with the ``binary`` option."""

    data: bytes


Datum = bytes | Binary | _Unchanged | None
TupleData = tuple[Datum, ...]


class _CommitTime:
    commit_ts: datetime

    @property
    def commit_ms(self) -> int:
        """The commit time in whole milliseconds since 1970 (Debezium's ``source.ts_ms``)."""
        return unix_us(self.commit_ts) // 1000


@dataclass(frozen=True)
class Begin(_CommitTime):
    final_lsn: int  # the LSN of the transaction's commit record
    commit_ts: datetime
    xid: int


@dataclass(frozen=True)
class Commit(_CommitTime):
    flags: int  # unused, 0
    commit_lsn: int
    end_lsn: int  # the LSN just past the commit record: what to confirm as flushed
    commit_ts: datetime


@dataclass(frozen=True)
class Origin:
    origin_lsn: int  # the commit LSN on the origin server
    name: str


@dataclass(frozen=True)
class Column:
    flags: int  # 1: part of the replica identity key
    name: str
    type_oid: int
    typmod: int  # -1 when the column has none

    @property
    def key(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True)
class Relation:
    oid: int
    namespace: str  # "" means pg_catalog
    name: str
    replica_identity: str  # IDENTITY_* (d, n, f, i)
    columns: tuple[Column, ...]
    xid: int | None = None


@dataclass(frozen=True)
class Type:
    """A non-built-in type's name, sent before the first Relation that uses it."""

    oid: int
    namespace: str
    name: str
    xid: int | None = None


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: TupleData
    xid: int | None = None


@dataclass(frozen=True)
class Update:
    relation_oid: int
    new: TupleData
    old: TupleData | None = None  # the key ('K', key changed) or full old row ('O', identity full)
    old_kind: str | None = None  # "K" | "O" | None
    xid: int | None = None


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old: TupleData  # 'K': key columns set, the others None; 'O': the whole old row
    old_kind: str  # "K" | "O"
    xid: int | None = None


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]
    options: int  # TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY
    xid: int | None = None


@dataclass(frozen=True)
class Message:
    """``pg_logical_emit_message()``: a prefix and opaque content, in or outside a transaction."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes
    xid: int | None = None


@dataclass(frozen=True)
class StreamStart:
    xid: int
    first_segment: bool


@dataclass(frozen=True)
class StreamStop:
    pass


@dataclass(frozen=True)
class StreamCommit:
    xid: int
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts: datetime


@dataclass(frozen=True)
class StreamAbort:
    xid: int
    subxid: int
    abort_lsn: int | None = None  # protocol 4 (parallel streaming) only
    abort_ts: datetime | None = None


PgOutputMessage = (
    Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate | Message
    | StreamStart | StreamStop | StreamCommit | StreamAbort
)  # fmt: skip


def lsn_to_int(text: str) -> int:
    """``'0/1EFBE80'`` (pg_lsn's text form) -> 32488064."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_to_str(lsn: int) -> str:
    """32488064 -> ``'0/1EFBE80'``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def pg_timestamp(micros: int) -> datetime:
    """Microseconds since 2000-01-01 UTC (PostgreSQL's epoch) -> aware UTC datetime."""
    return PG_EPOCH + timedelta(microseconds=micros)


def unix_us(moment: datetime) -> int:
    """An aware datetime -> whole microseconds since 1970 (exact: no float on the way)."""
    return (moment - UNIX_EPOCH) // timedelta(microseconds=1)


def relation_of(cursor, table: str) -> Relation:
    """The Relation message pgoutput would send for ``table``, read from the catalog.

    For rows read outside the stream (the initial snapshot), before any Relation arrived: the
    same columns in the same order (dropped and generated ones left out, as pgoutput leaves
    them), flagged as key the way pgoutput flags them (the primary key under REPLICA IDENTITY
    DEFAULT, the identity index's columns under INDEX, every column under FULL). ``cursor``: any
    DB-API cursor on the database.
    """
    cursor.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relreplident FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s::regclass",
        [table],
    )
    oid, namespace, name, identity = cursor.fetchone()
    cursor.execute(
        "SELECT a.attname, a.atttypid, a.atttypmod, c.relreplident = 'f' OR EXISTS ("
        "   SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY(i.indkey)"
        "   AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident)))"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
        " ORDER BY a.attnum",
        [oid],
    )
    columns = tuple(
        Column(flags=1 if key else 0, name=attname, type_oid=type_oid, typmod=typmod)
        for attname, type_oid, typmod, key in cursor.fetchall()
    )
    return Relation(oid, "" if namespace == "pg_catalog" else namespace, name, identity, columns)


class _Reader:
    """Big-endian fields from the front of a message; every read checks there are enough bytes."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _unpack(self, fmt: struct.Struct) -> int:
        end = self.pos + fmt.size
        if end > len(self.data):
            raise DecodeError(f"message cut short at byte {self.pos} of {len(self.data)}")
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos = end
        return value

    def int8(self) -> int:
        return self._unpack(_I8)

    def int16(self) -> int:
        return self._unpack(_I16)

    def int32(self) -> int:
        return self._unpack(_I32)

    def uint32(self) -> int:
        return self._unpack(_U32)

    def int64(self) -> int:
        return self._unpack(_I64)

    def uint64(self) -> int:
        return self._unpack(_U64)

    def byte(self) -> str:
        return chr(self._unpack(_U8))

    def timestamp(self) -> datetime:
        return pg_timestamp(self.int64())

    def bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"a {n}-byte value does not fit at byte {self.pos} of {len(self.data)}")
        value = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return value

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError(f"unterminated string at byte {self.pos}")
        value = bytes(self.data[self.pos : end]).decode()
        self.pos = end + 1
        return value

    def tuple_data(self) -> TupleData:
        values: list[Datum] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                values.append(self.bytes(self.int32()))
            elif kind == "b":
                values.append(Binary(self.bytes(self.int32())))
            else:
                raise DecodeError(f"unknown tuple column kind {kind!r}")
        return tuple(values)


_U8, _I8, _I16, _I32, _U32, _I64, _U64 = (struct.Struct(f) for f in (">B", ">b", ">h", ">i", ">I", ">q", ">Q"))


def decode(data: bytes | memoryview, *, in_stream: bool = False) -> PgOutputMessage:
    """Decode one pgoutput message (one ``data`` of ``pg_logical_slot_get_binary_changes`` or XLogData).

    ``in_stream``: between a Stream Start and its Stream Stop (protocol 2+), where the messages
    about rows carry their transaction's xid first. Raises :class:`DecodeError` on an unknown
    kind, a cut-short message or bytes left over (a misread must not pass silently).
    """
    r = _Reader(bytes(data))
    kind = r.byte()
    if kind in "RYIUDTM" and in_stream:
        xid: int | None = r.uint32()
    else:
        xid = None
    message: PgOutputMessage
    if kind == "B":
        message = Begin(final_lsn=r.uint64(), commit_ts=r.timestamp(), xid=r.uint32())
    elif kind == "C":
        message = Commit(flags=r.int8(), commit_lsn=r.uint64(), end_lsn=r.uint64(), commit_ts=r.timestamp())
    elif kind == "O":
        message = Origin(origin_lsn=r.uint64(), name=r.string())
    elif kind == "R":
        oid, namespace, name, identity = r.uint32(), r.string(), r.string(), r.byte()
        columns = tuple(
            Column(flags=r.int8(), name=r.string(), type_oid=r.uint32(), typmod=r.int32()) for _ in range(r.int16())
        )
        message = Relation(oid, namespace, name, identity, columns, xid=xid)
    elif kind == "Y":
        message = Type(oid=r.uint32(), namespace=r.string(), name=r.string(), xid=xid)
    elif kind == "I":
        oid = r.uint32()
        _expect(r, "N")
        message = Insert(relation_oid=oid, new=r.tuple_data(), xid=xid)
    elif kind == "U":
        oid = r.uint32()
        old_kind = r.byte()
        old = None
        if old_kind in ("K", "O"):
            old = r.tuple_data()
            _expect(r, "N")
        elif old_kind == "N":
            old_kind = None
        else:
            raise DecodeError(f"update: expected K, O or N, got {old_kind!r}")
        message = Update(relation_oid=oid, new=r.tuple_data(), old=old, old_kind=old_kind, xid=xid)
    elif kind == "D":
        oid = r.uint32()
        old_kind = r.byte()
        if old_kind not in ("K", "O"):
            raise DecodeError(f"delete: expected K or O, got {old_kind!r}")
        message = Delete(relation_oid=oid, old=r.tuple_data(), old_kind=old_kind, xid=xid)
    elif kind == "T":
        count, options = r.int32(), r.int8()
        message = Truncate(relation_oids=tuple(r.uint32() for _ in range(count)), options=options, xid=xid)
    elif kind == "M":
        flags, lsn, prefix = r.int8(), r.uint64(), r.string()
        message = Message(bool(flags & 1), lsn, prefix, r.bytes(r.int32()), xid=xid)
    elif kind == "S":
        message = StreamStart(xid=r.uint32(), first_segment=r.int8() == 1)
    elif kind == "E":
        message = StreamStop()
    elif kind == "c":
        message = StreamCommit(r.uint32(), r.int8(), r.uint64(), r.uint64(), r.timestamp())
    elif kind == "A":
        xid, subxid = r.uint32(), r.uint32()
        if r.pos < len(r.data):  # protocol 4 adds the abort's LSN and time
            message = StreamAbort(xid, subxid, abort_lsn=r.uint64(), abort_ts=r.timestamp())
        else:
            message = StreamAbort(xid, subxid)
    else:
        raise DecodeError(f"unknown pgoutput message kind {kind!r}")
    if r.pos != len(r.data):
        raise DecodeError(f"{len(r.data) - r.pos} bytes left after a {type(message).__name__} message")
    return message


def _expect(r: _Reader, want: str) -> None:
    got = r.byte()
    if got != want:
        raise DecodeError(f"expected {want!r}, got {got!r} at byte {r.pos - 1}")
