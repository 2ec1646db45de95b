"""The tamper-evident audit log: append, verify, export.

Each row's hash is sha256(prev_hash + canonical_json(row)), where the canonical form has
sorted keys, no spaces and the row's `data` JSON text embedded as stored. Appends lock the
single `AuditHead` row, so concurrent transactions queue up instead of forking the chain, and
the append lives in the caller's transaction: a transition and its audit row commit together.

Exports and verification stream rows through a server-side cursor in batches: memory stays
flat whatever the table's size.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from workflow.clock import iso, to_db
from workflow.models import AuditEvent, AuditHead

GENESIS = "0" * 64
BATCH = 5_000

# Columns of the export, in order. `data` keys are lifted into columns where they exist.
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
    "data",
    "prev_hash",
    "hash",
)
_LIFTED = ("actor_name", "from_state", "to_state", "destination", "remote_id", "url", "text_hash", "text", "error")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(
    *, prev_hash: str, seq: int, at: str, actor: str, action: str, announcement_id: int | None, data: str
) -> str:
    # Keys in sorted order, `data` embedded verbatim: equal to canonical_json of the parsed row.
    body = (
        f'{{"action":{json.dumps(action, ensure_ascii=False)},"actor":{json.dumps(actor, ensure_ascii=False)},'
        f'"announcement_id":{"null" if announcement_id is None else announcement_id},'
        f'"at":"{at}","data":{data},"seq":{seq}}}'
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


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
    data_text = canonical_json(dict(data or {}))
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


_T = AuditEvent.__table__.c  # type: ignore[attr-defined]
_COLUMNS = (_T.seq, _T.at, _T.actor, _T.action, _T.announcement_id, _T.data, _T.prev_hash, _T.hash)


def _stream(engine: Engine, query: Select[Any]) -> Iterator[tuple[Any, ...]]:
    """Rows of a read-only query, fetched in batches through a server-side cursor."""
    with engine.connect().execution_options(stream_results=True, yield_per=BATCH) as conn:
        yield from conn.execute(query)


def verify(engine: Engine) -> Verification:
    """Recompute the chain from the first row and name the first row that does not fit."""
    expected_prev = GENESIS
    expected_seq = 1
    rows = 0
    for seq, at, actor, action, announcement_id, data, prev_hash, digest in _stream(
        engine, sa_select(*_COLUMNS).order_by(_T.seq)
    ):
        if seq != expected_seq:
            return Verification(
                False, rows, expected_prev, expected_seq, f"row {expected_seq} is missing (next is {seq})"
            )
        if prev_hash != expected_prev:
            return Verification(False, rows, expected_prev, seq, "prev_hash does not match the previous row's hash")
        computed = row_hash(
            prev_hash=prev_hash,
            seq=seq,
            at=iso(at),
            actor=actor,
            action=action,
            announcement_id=announcement_id,
            data=data,
        )
        if computed != digest:
            return Verification(False, rows, expected_prev, seq, "contents changed: the stored hash does not match")
        expected_prev = digest
        expected_seq += 1
        rows += 1
    with Session(engine) as session:
        head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != rows or head_hash != expected_prev:
        return Verification(
            False,
            rows,
            expected_prev,
            rows + 1,
            f"the chain head says {head_seq} events; rows after {rows} were removed",
        )
    return Verification(True, rows, expected_prev)


@dataclass(frozen=True)
class ExportFilter:
    since: datetime | None = None
    until: datetime | None = None
    since_seq: int | None = None  # resume after this sequence number
    announcement_id: int | None = None


def _rows(engine: Engine, flt: ExportFilter) -> Iterator[dict[str, Any]]:
    query = sa_select(*_COLUMNS).order_by(_T.seq)
    if flt.since is not None:
        query = query.where(_T.at >= to_db(flt.since))
    if flt.until is not None:
        query = query.where(_T.at < to_db(flt.until))
    if flt.since_seq is not None:
        query = query.where(_T.seq > flt.since_seq)
    if flt.announcement_id is not None:
        query = query.where(_T.announcement_id == flt.announcement_id)
    for seq, at, actor, action, announcement_id, data, prev_hash, digest in _stream(engine, query):
        payload = json.loads(data)
        row = {
            "seq": seq,
            "at": iso(at),
            "actor": actor,
            "action": action,
            "announcement_id": announcement_id,
            **{key: payload.get(key) for key in _LIFTED},
            "findings": payload.get("findings"),
            "data": payload,
            "prev_hash": prev_hash,
            "hash": digest,
        }
        yield row


def head(engine: Engine) -> tuple[int, str]:
    with Session(engine) as session:
        row = session.get(AuditHead, 1)
    return (row.seq, row.hash) if row else (0, GENESIS)


class _Line:
    """A file-like sink for csv.writer that hands each written line back."""

    def __init__(self) -> None:
        self.value = ""

    def write(self, value: str) -> None:
        self.value = value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Stop spreadsheets from running a cell as a formula (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = canonical_json(value)
    return neutralise(str(value))


def export_csv(engine: Engine, flt: ExportFilter = ExportFilter()) -> Iterator[str]:
    """RFC 4180 CSV (CRLF line ends), header first, one string per row."""
    line = _Line()
    writer = csv.writer(line, lineterminator="\r\n")
    writer.writerow(EXPORT_FIELDS)
    yield line.value
    for row in _rows(engine, flt):
        writer.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])
        yield line.value


def export_jsonl(engine: Engine, flt: ExportFilter = ExportFilter()) -> Iterator[str]:
    for row in _rows(engine, flt):
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


EXPORTERS = {"csv": export_csv, "jsonl": export_jsonl}
