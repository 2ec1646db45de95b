"""The tamper-evident audit log: append, verify, export.

Each row's hash is sha256(prev_hash + canonical_json(row)), where the canonical form has
sorted keys, no spaces and the row's `data` JSON text embedded as stored. Appends lock the
single `AuditHead` row, so concurrent transactions queue up instead of forking the chain, and
the append lives in the caller's transaction: a transition and its audit row commit together.

Verification reads the table through a plain DBAPI cursor (a server-side cursor on PostgreSQL)
in batches of `BATCH` rows inside a read-only transaction that never takes SQLite's write lock:
memory stays flat whatever the table's size. Exports let the database write the lines: migration
0004 keeps the fields an export lifts out of `data` as generated columns, and each ordinary row's
CSV or JSON line comes out of SQLite's printf()/json_object() or PostgreSQL's COPY, so Python
only joins bytes. Rows the database marks as not plain go through the reference formatter at the
end of this module, which defines what an export holds; the tests hold the two together. Each
export is bound to the chain head read when it starts (`Export`), so its trailer (the head hash)
describes exactly what it holds, and a puller resumes with `since=<that seq>`.

Actor display names: the use case runner looks the name up before its transaction and puts it on
the session (`name_actor`); `append` copies it into the row's data, so the name is the one the
person had at the time, covered by the hash, and no Slack call happens inside a transaction.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import multiprocessing.util
import queue
import re
import select as io_wait
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from workflow.clock import iso, to_db
from workflow.models import AuditEvent, AuditHead

GENESIS = "0" * 64
BATCH = 2_000  # rows per fetch: ~1 MB of typical rows, bounded even when every row is a 10,000-character draft
# Lines per export chunk: joined while they are still in the CPU's cache (2,000 were 7% slower).
EXPORT_BATCH = 256

# Columns of the export, in order: the list, then the stored `data` JSON text (what the
# hash covers, so an export can be checked offline) last because it is the longest.
EXPORT_FIELDS = (
    "seq",
    "at",
    "actor",
    "actor_name",
    "action",
    "announcement_id",
    "from_state",
    "to_state",
    "destination",
    "remote_id",
    "url",
    "text_hash",
    "text",
    "findings",
    "error",
    "prev_hash",
    "hash",
    "data",
)
# Keys of `data` lifted into columns (null when the event has none): every export field that
# is not a column of the table itself.
_TABLE_FIELDS = frozenset({"seq", "at", "actor", "action", "announcement_id", "prev_hash", "hash", "data"})
_LIFTED = tuple(f for f in EXPORT_FIELDS if f not in _TABLE_FIELDS)
_ACTOR_NAMES = "count_to_ten.audit.actor_names"  # Session.info key: {user id: display name}


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(
    *, prev_hash: str, seq: int, at: str, actor: str, action: str, announcement_id: int | None, data: str
) -> str:
    # Keys in sorted order, `data` embedded verbatim: equal to canonical_json of the parsed row.
    # encode_basestring(s) is exactly json.dumps(s, ensure_ascii=False), without its overhead.
    # `verify` inlines this same body in its loop; tests/test_audit.py holds the two together.
    body = (
        f'{{"action":{encode_basestring(action)},"actor":{encode_basestring(actor)},'
        f'"announcement_id":{"null" if announcement_id is None else announcement_id},'
        f'"at":"{at}","data":{data},"seq":{seq}}}'
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def name_actor(session: Session, actor: str, name: str | None) -> None:
    """Remember `actor`'s display name now, for the events this transaction appends."""
    if name:
        session.info.setdefault(_ACTOR_NAMES, {})[actor] = name


def append(
    *,
    session: Session,
    at: datetime,
    actor: str,
    action: str,
    announcement_id: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction."""
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).first()
    if head is None:
        # First event ever. Two first writers race on the primary key; the loser's transaction
        # fails and is retried by its caller like any other conflict.
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    stored_at = to_db(at)
    payload = dict(data or {})
    names = session.info.get(_ACTOR_NAMES)
    if names and actor in names and "actor_name" not in payload:
        payload["actor_name"] = names[actor]
    data_text = canonical_json(payload)
    seq = head.seq + 1
    digest = row_hash(
        prev_hash=head.hash,
        seq=seq,
        at=iso(stored_at),
        actor=actor,
        action=action,
        announcement_id=announcement_id,
        data=data_text,
    )
    event = AuditEvent(
        seq=seq,
        at=stored_at,
        actor=actor,
        action=action,
        announcement_id=announcement_id,
        data=data_text,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(event)
    head.seq = seq
    head.hash = digest
    session.add(head)
    session.flush()
    return event


@dataclass(frozen=True)
class Verification:
    ok: bool
    rows: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"audit log intact: {self.rows} events, head {self.head_hash}"
        return f"audit log broken at seq {self.broken_seq}: {self.problem}"


# Reading: one read-only transaction, raw DBAPI rows ------------------------------------------

_TABLE = AuditEvent.__tablename__
_HEAD_TABLE = AuditHead.__tablename__


@dataclass(frozen=True)
class ExportFilter:
    since: datetime | None = None  # events at or after this time
    until: datetime | None = None  # events before this time
    since_seq: int | None = None  # events after this sequence number: resume after the last row pulled
    upto_seq: int | None = None  # events up to and including this one (an `Export` sets it to the head)
    announcement_id: int | None = None


@contextmanager
def _reading(engine: Engine) -> Iterator[Any]:
    """A DBAPI connection in a read transaction; rolled back and returned to the pool after.

    Below SQLAlchemy's rows (whose per-row cost would be most of an export's). On SQLite a plain
    (deferred) BEGIN: a WAL snapshot that never takes the write lock, so writers carry on.
    """
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        if engine.dialect.name == "sqlite":
            conn.execute("BEGIN")
        yield conn
    finally:
        try:
            raw.rollback()
        finally:
            raw.close()


_MARK = {"sqlite": "?", "postgresql": "%s"}  # each driver's parameter placeholder
# The stored columns; `at` as text "YYYY-MM-DD HH:MM:SS.ffffff" (UTC) on both databases.
_STORED = {
    "sqlite": "seq, at, actor, action, announcement_id, data, prev_hash, hash",  # `at`: SQLAlchemy's DATETIME text
    "postgresql": "seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), actor, action, "
    "announcement_id, data, prev_hash, hash",
}


def _where(dialect: str, flt: ExportFilter) -> tuple[str, list[Any]]:
    """' WHERE ...' for the rows of `flt` ('' for all of them), and its parameters."""
    if dialect not in _MARK:
        raise NotImplementedError(f"the audit log reads SQLite and PostgreSQL, not {dialect}")
    mark = _MARK[dialect]

    def moment(value: datetime) -> Any:
        return to_db(value).strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else to_db(value)

    where: list[str] = []
    params: list[Any] = []
    for condition, value in (
        (f"seq > {mark}", flt.since_seq),
        (f"seq <= {mark}", flt.upto_seq),
        (f"at >= {mark}", moment(flt.since) if flt.since else None),
        (f"at < {mark}", moment(flt.until) if flt.until else None),
        (f"announcement_id = {mark}", flt.announcement_id),
    ):
        if value is not None:
            where.append(condition)
            params.append(value)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


def _select(dialect: str, flt: ExportFilter) -> tuple[str, list[Any]]:
    """The stored rows of `flt` in sequence order."""
    where, params = _where(dialect, flt)
    return f"SELECT {_STORED[dialect]} FROM {_TABLE}{where} ORDER BY seq", params  # noqa: S608 - fixed names; values are parameters


def _batches(conn: Any, dialect: str, flt: ExportFilter) -> Iterator[list[tuple[Any, ...]]]:
    sql, params = _select(dialect, flt)
    # A named cursor is server-side on PostgreSQL (rows arrive BATCH at a time); SQLite steps lazily anyway.
    cursor = conn.cursor(name="count_to_ten_audit") if dialect == "postgresql" else conn.cursor()
    try:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(BATCH):
            yield batch
    finally:
        cursor.close()


@contextmanager
def _rows(engine: Engine, flt: ExportFilter) -> Iterator[Iterator[list[tuple[Any, ...]]]]:
    """The batches of rows of `flt` in one read transaction; the cursor (and the prefetch
    thread) are closed before the transaction ends, however the reader stops."""
    dialect = engine.dialect.name
    with _reading(engine) as conn:
        batches = _prefetched(_batches(conn, dialect, flt), dialect)
        try:
            yield batches
        finally:
            batches.close()  # type: ignore[attr-defined]


def _head(conn: Any) -> tuple[int, str, int]:
    """The chain head (seq, hash) and the highest stored seq, read in one statement (one snapshot)."""
    cursor = conn.cursor()
    try:
        cursor.execute(
            f"SELECT (SELECT seq FROM {_HEAD_TABLE} WHERE id = 1), (SELECT hash FROM {_HEAD_TABLE} WHERE id = 1),"  # noqa: S608 - fixed names
            f" (SELECT max(seq) FROM {_TABLE})"
        )
        seq, digest, highest = cursor.fetchone()
    finally:
        cursor.close()
    return seq or 0, digest or GENESIS, highest or 0


def head(engine: Engine) -> tuple[int, str]:
    """The chain head: the last event's seq and hash ((0, GENESIS) for an empty log)."""
    with _reading(engine) as conn:
        seq, digest, _ = _head(conn)
    return seq, digest


def _iso(at: str) -> str:
    """'2026-11-24 14:00:00.000000' -> '2026-11-24T14:00:00.000000Z' (what `iso` gives at append time)."""
    return f"{at[:10]}T{at[11:]}Z"


# Verification ----------------------------------------------------------------------------------


def verify(engine: Engine, *, workers: int = 1, block_rows: int = 100_000) -> Verification:
    """Recompute the chain from the first row and name the first row that does not fit.

    Reads the head first and checks the rows up to it, so events appended meanwhile never look
    like damage; rows stored beyond the head were added without extending the chain.
    `workers` > 1 checks blocks of `block_rows` in forked processes (see `_pool`) and joins them
    where they meet; the answer is the same as with one process.
    """
    with _reading(engine) as conn:
        head_seq, head_hash, highest = _head(conn)
    blocks = [(lo, min(lo + block_rows - 1, head_seq)) for lo in range(1, head_seq + 1, block_rows)]
    if workers > 1 and len(blocks) > 1 and _parallel_ok(engine):
        url = engine.url.render_as_string(hide_password=False)
        results = _in_order(_pool(workers), _verify_block, [(url, lo, hi) for lo, hi in blocks], workers * 4)
    else:
        results = (_check_block(engine, lo, hi) for lo, hi in blocks)
    rows = 0
    last = GENESIS
    for (lo, _), (count, first_prev, last_hash, broken_seq, problem) in zip(blocks, results, strict=True):
        if first_prev is not None and first_prev != last:
            return Verification(False, rows, last, lo, "prev_hash does not match the previous row's hash")
        if broken_seq is not None:  # no problem named: rows from broken_seq on are gone, the end of the chain
            named = problem or f"the chain head says {head_seq} events; rows after {broken_seq - 1} were removed"
            return Verification(False, rows + count, last_hash or last, broken_seq, named)
        rows += count
        last = last_hash or last
    if rows != head_seq or last != head_hash:
        problem = f"the chain head says {head_seq} events; rows after {rows} were removed"
        return Verification(False, rows, last, rows + 1, problem)
    if highest > head_seq:
        return Verification(
            False,
            rows,
            last,
            head_seq + 1,
            f"rows up to seq {highest} are stored after the chain head (seq {head_seq}) without extending the chain",
        )
    return Verification(True, rows, last)


_Checked = tuple[int, str | None, str | None, int | None, str | None]


def _verify_block(url: str, lo: int, hi: int) -> _Checked:
    return _check_block(_worker_engine(url), lo, hi)


def _check_block(engine: Engine, lo: int, hi: int) -> _Checked:
    """Check rows lo..hi on their own: (rows that fit, the first row's prev_hash, the last good
    hash, the first broken seq or None, what is wrong with it; None = rows are missing from there
    to the end of the stored chain)."""
    expected_seq = lo
    expected_prev: str | None = None
    first_prev: str | None = None
    sha256, enc = hashlib.sha256, encode_basestring
    with _rows(engine, ExportFilter(since_seq=lo - 1, upto_seq=hi)) as batches:
        for batch in batches:
            for seq, at, actor, action, announcement_id, data, prev_hash, digest in batch:
                if seq != expected_seq:
                    problem = f"row {expected_seq} is missing (next is {seq})"
                    return expected_seq - lo, first_prev, expected_prev, expected_seq, problem
                if expected_prev is None:
                    first_prev = prev_hash
                elif prev_hash != expected_prev:
                    problem = "prev_hash does not match the previous row's hash"
                    return expected_seq - lo, first_prev, expected_prev, seq, problem
                try:  # row_hash, inlined: this loop is the whole cost of verifying millions of rows
                    body = (
                        f'{prev_hash}{{"action":{enc(action)},"actor":{enc(actor)},'
                        f'"announcement_id":{"null" if announcement_id is None else announcement_id},'
                        f'"at":"{at[:10]}T{at[11:]}Z","data":{data},"seq":{seq}}}'
                    )
                    intact = sha256(body.encode()).hexdigest() == digest
                except (TypeError, ValueError, UnicodeError):  # a value of the wrong type: edited by hand
                    intact = False
                if not intact:
                    problem = "contents changed: the stored hash does not match"
                    return expected_seq - lo, first_prev, expected_prev, seq, problem
                expected_prev = digest
                expected_seq += 1
    if expected_seq <= hi:  # the block ends early: say what comes next, if anything
        with _reading(engine) as conn:
            cursor = conn.cursor()
            try:
                mark = "?" if engine.dialect.name == "sqlite" else "%s"
                cursor.execute(f"SELECT min(seq) FROM {_TABLE} WHERE seq > {mark}", [hi])  # noqa: S608 - fixed name
                following = cursor.fetchone()[0]
            finally:
                cursor.close()
        problem = None if following is None else f"row {expected_seq} is missing (next is {following})"
        return expected_seq - lo, first_prev, expected_prev, expected_seq, problem
    return expected_seq - lo, first_prev, expected_prev, None, None


# Export ----------------------------------------------------------------------------------------
#
# The database writes each ordinary row's line itself, from the columns migration 0004 lifts out
# of `data` when a row is stored: SQLite with one printf() or json_object() call per row,
# PostgreSQL through COPY. Python only joins the lines, and neutralises the CSV lines of rows
# marked `formula`. A row that is not `plain` (a damaged `data`, a NUL, odd characters in a
# fixed-format cell) comes back as a marker holding its seq, and the reference formatter below
# writes it instead.

PARALLEL_MIN_ROWS = 100_000  # below this, starting worker processes costs more than it saves


class Export:
    """One export: the chain head when it was opened, then the matching rows up to that head.

    The head goes in the trailer (the Slack comment, an HTTP header, the CLI's stderr); a puller
    asks next time with `since=<head_seq>` and gets exactly the rows after this export. `rows`,
    `first_seq` and `last_seq` count what `chunks()` produced. `workers` > 1 formats blocks of
    rows in forked processes (`_pool`): for the command line, not for a threaded server.
    """

    def __init__(
        self,
        engine: Engine,
        fmt: str,
        flt: ExportFilter = ExportFilter(),
        *,
        workers: int = 1,
        block_rows: int = 5_000,
    ) -> None:
        if fmt not in EXPORTERS:
            raise ValueError(f"format must be {' or '.join(EXPORTERS)}, got {fmt!r}")
        self.engine = engine
        self.format = fmt
        self.workers = workers
        self.block_rows = block_rows
        self.head_seq, self.head_hash = head(engine)
        upto = self.head_seq if flt.upto_seq is None else min(flt.upto_seq, self.head_seq)
        self.filter = replace(flt, upto_seq=upto)
        self.rows = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None

    def chunks(self) -> Iterator[bytes]:
        """The export as UTF-8, a batch of rows per chunk (CSV starts with its header line)."""
        if self.format == "csv":
            yield CSV_HEADER.encode()
        lo = (self.filter.since_seq or 0) + 1
        hi = self.filter.upto_seq or 0
        if (
            self.workers > 1
            and self.filter.announcement_id is None
            and hi - lo + 1 >= PARALLEL_MIN_ROWS
            and _parallel_ok(self.engine)
        ):
            url = self.engine.url.render_as_string(hide_password=False)
            blocks = [
                (
                    url,
                    self.format,
                    replace(self.filter, since_seq=start - 1, upto_seq=min(start + self.block_rows - 1, hi)),
                )
                for start in range(lo, hi + 1, self.block_rows)
            ]
            # At most workers + 1 blocks wait in memory, however slow the reader is.
            for data, rows, first, last in _in_order(_pool(self.workers), _export_block, blocks, self.workers + 1):
                self._count(rows, first, last)
                if data:
                    yield data
            return
        for data, rows, first, last in _formatted(self.engine, self.format, self.filter):
            self._count(rows, first, last)
            yield data

    def _count(self, rows: int, first: int | None, last: int | None) -> None:
        if rows:
            self.rows += rows
            self.first_seq = first if self.first_seq is None else self.first_seq
            self.last_seq = last


def _export_block(url: str, fmt: str, flt: ExportFilter) -> tuple[bytes, int, int | None, int | None]:
    parts: list[bytes] = []
    rows, first, last = 0, None, None
    for data, count, lo, hi in _formatted(_worker_engine(url), fmt, flt):
        parts.append(data)
        rows += count
        first = lo if first is None else first
        last = hi
    return b"".join(parts), rows, first, last


_Chunk = tuple[bytes, int, int, int]  # formatted rows, how many, first seq, last seq


def _formatted(engine: Engine, fmt: str, flt: ExportFilter) -> Iterator[_Chunk]:
    """The rows of `flt` formatted, a batch per chunk, in one read transaction."""
    dialect = engine.dialect.name
    with _reading(engine) as conn, ExitStack() as stack:
        if dialect == "sqlite":
            yield from _sqlite_chunks(conn, fmt, flt)
        elif dialect == "postgresql":
            # COPY holds its connection until the last row: rows that need the reference
            # formatter are read on a second one, opened when first needed (rows never change
            # once written, so the two agree).
            side: list[Any] = []

            def reader() -> Any:
                if not side:
                    side.append(stack.enter_context(_reading(engine)))
                return side[0]

            yield from _postgres_chunks(conn, reader, fmt, flt)
        else:
            raise NotImplementedError(f"the audit log reads SQLite and PostgreSQL, not {dialect}")


# The templates, one per database and format. Three kinds of cells: fixed-format ones (ids,
# states, hashes: in a plain row they hold no quote, backslash or control character, so they go
# in unescaped), free text (escaped, except in a `verbatim` row, where none needs it), and `data`,
# JSON already, which goes in exactly as stored. Null free text is '' in CSV and null in JSON.

# SQLite: printf() for CSV, where %w doubles double quotes, and for the JSON of verbatim rows;
# json_object(), which escapes, for the JSON of the other plain rows.
_SQLITE_CSV = """printf('"%d","%sT%sZ","%s","%w","%s","%w","%s","%s","%w","%w","%w","%s","%w","%w","%w","%s","%s","%w"'
    || char(13, 10), seq, substr(at, 1, 10), substr(at, 12), actor, coalesce(actor_name, ''), action,
    coalesce(announcement_id, ''), from_state, to_state, coalesce(destination, ''), coalesce(remote_id, ''),
    coalesce(url, ''), text_hash, coalesce(text, ''), coalesce(findings, ''), coalesce(error, ''), prev_hash,
    hash, data)"""
_SQLITE_JSON_VERBATIM = """printf('{"seq":%d,"at":"%sT%sZ","actor":"%s","actor_name":%s,"action":"%s",'
    || '"announcement_id":%s,"from_state":%s,"to_state":%s,"destination":%s,"remote_id":%s,"url":%s,'
    || '"text_hash":%s,"text":%s,"findings":%s,"error":%s,"prev_hash":"%s","hash":"%s","data":%s}' || char(10),
    seq, substr(at, 1, 10), substr(at, 12), actor, coalesce('"' || actor_name || '"', 'null'), action,
    coalesce(announcement_id, 'null'), coalesce('"' || from_state || '"', 'null'),
    coalesce('"' || to_state || '"', 'null'), coalesce('"' || destination || '"', 'null'),
    coalesce('"' || remote_id || '"', 'null'), coalesce('"' || url || '"', 'null'),
    coalesce('"' || text_hash || '"', 'null'), coalesce('"' || text || '"', 'null'), coalesce(findings, 'null'),
    coalesce('"' || error || '"', 'null'), prev_hash, hash, data)"""
_SQLITE_JSON_ESCAPED = """json_object('seq', seq, 'at', substr(at, 1, 10) || 'T' || substr(at, 12) || 'Z',
    'actor', actor, 'actor_name', actor_name, 'action', action, 'announcement_id', announcement_id,
    'from_state', from_state, 'to_state', to_state, 'destination', destination, 'remote_id', remote_id,
    'url', url, 'text_hash', text_hash, 'text', text, 'findings', json(findings), 'error', error,
    'prev_hash', prev_hash, 'hash', hash, 'data', json(data)) || char(10)"""
_SQLITE_CASES = {
    "csv": f"WHEN plain AND NOT formula THEN {_SQLITE_CSV} WHEN plain THEN char(1) || {_SQLITE_CSV}",
    "jsonl": f"WHEN verbatim THEN {_SQLITE_JSON_VERBATIM} WHEN plain THEN {_SQLITE_JSON_ESCAPED}",
}


def _sqlite_chunks(conn: Any, fmt: str, flt: ExportFilter) -> Iterator[_Chunk]:
    where, params = _where("sqlite", flt)
    # Bytes straight from SQLite (no decoding and encoding again). A line that starts with \x01
    # is a CSV line to neutralise; \x00 and a seq, a row for the reference formatter.
    line = f"CAST(CASE {_SQLITE_CASES[fmt]} ELSE char(0) || seq END AS BLOB)"
    sql = f"SELECT {line} FROM {_TABLE}{where} ORDER BY seq"  # noqa: S608 - fixed text; values are parameters
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(EXPORT_BATCH):
            lines = [row[0] for row in batch]
            marked = []
            for i in [i for i, text in enumerate(lines) if text[0] < 2]:
                if lines[i][0]:
                    lines[i] = _neutralised(lines[i][1:])
                else:
                    marked.append(i)
            yield _assemble(lambda: conn, "sqlite", fmt, lines, marked)
    finally:
        cursor.close()


# PostgreSQL: COPY writes CSV in C (FORCE_QUOTE quotes every cell), one row per CopyData message
# (the protocol sends "one or more CopyData messages, always one per row"): each row arrives on
# its own and gets its CRLF here. The first cell is empty for a plain row, f for one to
# neutralise, else the row's seq.
# JSON lines are concatenated (format() would parse its template again for every row); to_json()
# escapes the free text of rows that are not verbatim. `at_iso` is `at` as the hash covers it.
_PG_CSV = """CASE WHEN NOT plain THEN seq::text WHEN formula THEN 'f' ELSE '' END,
    seq, at_iso, actor, coalesce(actor_name, ''), action,
    coalesce(announcement_id::text, ''), coalesce(from_state, ''), coalesce(to_state, ''),
    coalesce(destination, ''), coalesce(remote_id, ''), coalesce(url, ''), coalesce(text_hash, ''),
    coalesce(text, ''), coalesce(findings, ''), coalesce(error, ''), prev_hash, hash, data"""
# A str.format template: {{ and }} are braces, {text} is where a free-text cell goes.
_PG_JSON = """'{{"seq":' || seq || ',"at":"' || at_iso || '","actor":"' || actor || '","actor_name":' || {actor_name}
    || ',"action":"' || action || '","announcement_id":' || coalesce(announcement_id::text, 'null')
    || ',"from_state":' || coalesce('"' || from_state || '"', 'null')
    || ',"to_state":' || coalesce('"' || to_state || '"', 'null') || ',"destination":' || {destination}
    || ',"remote_id":' || {remote_id} || ',"url":' || {url}
    || ',"text_hash":' || coalesce('"' || text_hash || '"', 'null') || ',"text":' || {text}
    || ',"findings":' || coalesce(findings, 'null') || ',"error":' || {error}
    || ',"prev_hash":"' || prev_hash || '","hash":"' || hash || '","data":' || data || '}}'"""
_FREE_TEXT = ("actor_name", "destination", "remote_id", "url", "text", "error")
_PG_JSONL = (
    "CASE WHEN verbatim THEN "
    + _PG_JSON.format_map({c: f"coalesce('\"' || {c} || '\"', 'null')" for c in _FREE_TEXT})
    + " WHEN plain THEN "
    + _PG_JSON.format_map({c: f"coalesce(to_json({c})::text, 'null')" for c in _FREE_TEXT})
    + " ELSE '#' || seq END"
)


def _postgres_chunks(conn: Any, reader: Callable[[], Any], fmt: str, flt: ExportFilter) -> Iterator[_Chunk]:
    where, params = _where("postgresql", flt)
    csv = fmt == "csv"
    # Text format for JSON: its lines hold no raw control characters, so only \ comes back
    # escaped (\\). ORDER BY the table's seq: the CSV's output columns include another one.
    cells, options = (_PG_CSV, " (FORMAT csv, FORCE_QUOTE *)") if csv else (_PG_JSONL, "")
    sql = f"COPY (SELECT {cells} FROM {_TABLE}{where} ORDER BY {_TABLE}.seq) TO STDOUT{options}"  # noqa: S608
    lines: list[Any] = []
    marked: list[int] = []
    with conn.cursor().copy(sql, params) as copy:
        for row in _copy_rows(copy):  # a memoryview: slices are views, copied once by the join
            if csv:  # '"","1",...,"{...}"\n' for a plain row, '"f","2",...' to neutralise, '"7","7",...'
                if row[1] == 34:
                    lines.append(row[3:-1])
                elif row[1] == 102:  # f
                    lines.append(_neutralised(bytes(row[4:-1])))
                else:
                    marked.append(len(lines))
                    lines.append(b"\x00" + bytes(row[1:]).split(b'"', 1)[0])
            elif row[0] != 35:  # a JSON line; COPY doubled its backslashes
                line = bytes(row)
                lines.append(line.replace(b"\\\\", b"\\") if b"\\" in line else line)
            else:  # '#7': row 7 is not plain
                marked.append(len(lines))
                lines.append(b"\x00" + bytes(row[1:-1]))
            if len(lines) == EXPORT_BATCH:
                yield _assemble(reader, "postgresql", fmt, lines, marked)
                lines, marked = [], []
    if lines:
        yield _assemble(reader, "postgresql", fmt, lines, marked)


def _copy_rows(copy: Any) -> Iterator[memoryview]:
    """The rows of a running COPY TO STDOUT, asked of libpq one by one.

    psycopg's Copy.read() spends about 2 µs of Python on each row (a generator and a wait per
    message), as much as the rest of the export together. This loop calls libpq for each row
    and waits on the socket, without the GIL, only when nothing has arrived yet; at the end it
    collects the COPY's result, as Copy.read() would, and raises the server's error if any.
    """
    import psycopg  # noqa: PLC0415 - only a PostgreSQL deployment loads the driver

    pgconn = copy.connection.pgconn
    poller = io_wait.poll()
    poller.register(pgconn.socket, io_wait.POLLIN)

    def wait() -> None:
        poller.poll()
        pgconn.consume_input()

    while True:
        nbytes, data = pgconn.get_copy_data(1)  # 1: never block
        if nbytes > 0:
            yield data
        elif nbytes == 0:  # nothing buffered yet
            wait()
        elif nbytes == -1:  # the end of the data: then the COPY's own result
            while pgconn.is_busy():
                wait()
            result = pgconn.get_result()
            while pgconn.get_result() is not None:  # libpq wants results read until None
                pass
            if result is None or result.status != psycopg.pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=copy.connection.info.encoding)
            return
        else:
            raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))


def _assemble(reader: Callable[[], Any], dialect: str, fmt: str, lines: list[Any], marked: list[int]) -> _Chunk:
    """Join a batch of lines, the `marked` ones (NUL and a seq) written by the reference formatter.
    PostgreSQL's CSV lines come without their line end (COPY ends them with LF): CRLF goes between."""
    first, last = _seq_of(lines[0]), _seq_of(lines[-1])
    crlf = dialect == "postgresql" and fmt == "csv"
    if marked:
        seqs = [_seq_of(lines[i]) for i in marked]
        formatted = {row[0]: _line(fmt, row) for row in _rows_by_seq(reader(), dialect, seqs)}
        for i, seq in zip(marked, seqs, strict=True):
            lines[i] = formatted[seq][:-2] if crlf else formatted[seq]
    text = b"\r\n".join(lines) + b"\r\n" if crlf else b"".join(lines)
    return text, len(lines), first, last


# In a CSV line whose every cell is quoted (and whose quotes inside cells are doubled), a quote
# followed by anything but a quote opens a cell: at the line's start or after '","'.
_FORMULA_CELL = re.compile(rb'(^"|",")([=+\-@\t\r])')


def _neutralised(line: bytes) -> bytes:
    """A CSV line of the database's, its cells that start like a formula neutralised (`neutralise`)."""
    return _FORMULA_CELL.sub(rb"\1'\2", line)


def _seq_of(line: Any) -> int:
    """The seq a line starts with: '"12",...' (CSV), '{"seq":12,...' (JSONL) or a marker '\\x0012'."""
    head = bytes(line[:24])
    if head[0] == 0:
        return int(head[1:])
    if head[0] == 123:  # {
        return int(head[7 : head.index(b",")])
    return int(head[1 : head.index(b'"', 1)])


def _rows_by_seq(conn: Any, dialect: str, seqs: list[int]) -> list[tuple[Any, ...]]:
    marks = ", ".join([_MARK[dialect]] * len(seqs))
    sql = f"SELECT {_STORED[dialect]} FROM {_TABLE} WHERE seq IN ({marks})"  # noqa: S608 - fixed names
    cursor = conn.cursor()
    try:
        cursor.execute(sql, seqs)
        return cursor.fetchall()
    finally:
        cursor.close()


def _line(fmt: str, row: tuple[Any, ...]) -> bytes:
    text = _csv_line(row) if fmt == "csv" else _jsonl_line(row)
    return text.encode("utf-8", "replace")  # "replace": a lone surrogate from a hand-edited row


def export_csv(engine: Engine, flt: ExportFilter = ExportFilter()) -> Iterator[str]:
    """RFC 4180 CSV (CRLF line ends, every cell quoted), header first, one string per row: the
    reference formatter, row by row. `Export` writes the same bytes from the database."""
    yield CSV_HEADER
    with _rows(engine, flt) as batches:
        for batch in batches:
            for row in batch:
                yield _csv_line(row)


def export_jsonl(engine: Engine, flt: ExportFilter = ExportFilter()) -> Iterator[str]:
    """One JSON object per line, the fields of EXPORT_FIELDS in order: the reference formatter."""
    with _rows(engine, flt) as batches:
        for batch in batches:
            for row in batch:
                yield _jsonl_line(row)


# Worker processes and prefetching --------------------------------------------------------------


def _parallel_ok(engine: Engine) -> bool:
    """Worker processes open the database again: not possible for an in-memory SQLite database."""
    return engine.dialect.name != "sqlite" or engine.url.database not in (None, "", ":memory:")


def _pool(workers: int) -> ProcessPoolExecutor:
    """Forked workers: they start at once, importing nothing, and open their own connections
    (`_worker_engine`), never the parent's. Forking is for a single-threaded parent such as
    `python app.py audit ...`; a threaded server keeps workers=1."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


_engines: dict[str, Engine] = {}


def _worker_engine(url: str) -> Engine:
    if url not in _engines:
        from workflow.db import make_engine  # noqa: PLC0415 - db imports nothing of ours; keep audit's imports lean

        _engines[url] = make_engine(url, pool_size=1)
        # Workers end with os._exit: close this process's own connections first (never the
        # parent's, which the fork copied and which stay untouched).
        multiprocessing.util.Finalize(_engines[url], _engines[url].dispose, exitpriority=10)
    return _engines[url]


def _in_order(pool: ProcessPoolExecutor, fn: Any, jobs: list[tuple[Any, ...]], window: int) -> Iterator[Any]:
    """fn(*job) for each job on the pool, results in job order, at most `window` jobs ahead."""
    pending: deque[Future[Any]] = deque()
    todo = iter(jobs)
    try:
        for job in todo:
            pending.append(pool.submit(fn, *job))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().result()
            job = next(todo, None)
            if job is not None:
                pending.append(pool.submit(fn, *job))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _prefetched(batches: Iterator[list[tuple[Any, ...]]], dialect: str) -> Iterator[list[tuple[Any, ...]]]:
    """On PostgreSQL, fetch the next batch on a thread while this one is formatted: the server
    works while we do, instead of answering each FETCH only when asked. (SQLite computes rows in
    our process, holding the GIL between rows: a thread would only add switching.)"""
    if dialect != "postgresql":
        yield from batches
        return
    ready: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    end = object()

    def fetch() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the reader, raised there
            ready.put(exc)
        finally:
            ready.put(end)

    thread = threading.Thread(target=fetch, name="audit-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let the fetcher see `stop` and finish with the cursor before it closes
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                continue
        thread.join()
        batches.close()  # type: ignore[attr-defined]  # the cursor, now that no thread uses it


# The reference formatter: what an export holds, row by row. Rows that are not `plain` are
# written by it, and the tests hold the database's lines to it.

CSV_HEADER = ",".join(EXPORT_FIELDS) + "\r\n"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Stop spreadsheets from running a cell as a formula (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """The export's fields of one stored row. Lifted fields are text (a value of another type as
    its JSON text) or None; findings is the JSON value itself; data is the parsed object."""
    seq, at, actor, action, announcement_id, data, prev_hash, digest = row
    try:
        payload = json.loads(data)
    except (TypeError, ValueError):
        payload = data  # not JSON (a damaged row): kept as the text it is
    lifted = payload if isinstance(payload, dict) else {}
    at_text = _iso(at) if isinstance(at, str) and len(at) == 26 and at[10] == " " else str(at)
    texts = {}
    for key in _LIFTED:
        value = lifted.get(key)
        texts[key] = value if value is None or isinstance(value, str) or key == "findings" else canonical_json(value)
    return {
        "seq": seq,
        "at": at_text,
        "actor": actor,
        "actor_name": texts["actor_name"],
        "action": action,
        "announcement_id": announcement_id,
        **{key: texts[key] for key in _LIFTED[1:]},
        "prev_hash": prev_hash,
        "hash": digest,
        "data": payload,
    }


def _csv_texts(row: tuple[Any, ...]) -> list[str]:
    """The cells of a row as text, before neutralising and quoting."""
    fields = _fields(row)
    fields["data"] = row[5]  # the stored text, as hashed
    return [
        "" if value is None else value if isinstance(value, str) and name != "findings" else canonical_json(value)
        for name, value in fields.items()
    ]


def _csv_line(row: tuple[Any, ...]) -> str:
    return ",".join('"' + neutralise(text).replace('"', '""') + '"' for text in _csv_texts(row)) + "\r\n"


def _jsonl_line(row: tuple[Any, ...]) -> str:
    return json.dumps(_fields(row), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


EXPORTERS = {"csv": export_csv, "jsonl": export_jsonl}
