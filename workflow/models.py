"""Database tables. Timestamps are aware UTC (SQLModel's UTCDateTime: `timestamptz` on
PostgreSQL, UTC text on SQLite).

Lists (destinations, editors, findings) are JSON text: they are read whole and never queried
inside, and JSON text keeps the audit hash independent of the database's JSON type.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from workflow.states import State


class Announcement(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default=State.PENDING.value, max_length=20, index=True)
    version: int = 1  # bumped by every compare-and-set; the optimistic lock
    revision: int = 1  # bumped by every edit; approvals are bound to a revision
    author_id: str = Field(max_length=32)
    text: str
    title: str | None = Field(default=None, max_length=255)
    status: str | None = Field(default=None, max_length=32)  # statuspage incident status
    follows_id: int | None = Field(default=None, foreign_key="announcement.id")  # a follow-up continues this one
    destinations: str  # JSON list of destination names, in config order
    content_hash: str = Field(max_length=64)  # sha256 of what the approvers see
    editors: str = "[]"  # JSON list of user ids who wrote this text (never approvers of it)
    findings: str = "[]"  # JSON list of pre-flight findings at the last submit/edit
    channel: str = Field(max_length=32)  # where the card lives
    message_ts: str | None = Field(default=None, max_length=32)  # the card; None until posted
    card_version: int = 0  # the `version` the card last showed; < version means re-render
    release_at: datetime | None = Field(default=None, index=True)
    decided_by: str | None = Field(default=None, max_length=32)  # rejecter, canceller
    reason: str | None = None  # reject reason
    retract_requested_by: str | None = Field(default=None, max_length=32)
    retract_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class Approval(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("announcement_id", "revision", "approver_id"),)

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    revision: int
    approver_id: str = Field(max_length=32)
    content_hash: str = Field(max_length=64)
    at: datetime


class Delivery(SQLModel, table=True):
    """The outbox: one row per destination of a released announcement."""

    __table_args__ = (
        UniqueConstraint("announcement_id", "destination"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = Field(foreign_key="announcement.id", index=True)
    destination: str = Field(max_length=40)
    key: str = Field(max_length=64, unique=True)  # idempotency key, constant across retries
    state: str = Field(default="queued", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None  # a claimed delivery whose lease ran out was interrupted
    last_error: str | None = None
    remote_id: str | None = None
    url: str | None = None
    receipt: str = "{}"  # JSON: the platform's extra ids a follow-up needs (thread root, cid, incident)
    updated_at: datetime


class DestinationStatus(SQLModel, table=True):
    """A destination switched off by its platform (a webhook answered 410 Gone).

    It stays off until its configuration changes: `fingerprint` is a hash of the options it
    was disabled with, so fixing the URL in announce.toml turns it back on.
    """

    name: str = Field(primary_key=True, max_length=40)
    fingerprint: str = Field(max_length=64)
    reason: str
    disabled_at: datetime


class AuditEvent(SQLModel, table=True):
    """Append-only, hash-chained: hash = sha256(prev_hash + canonical_json(row)).

    The table also has generated columns, computed by the database from `data` (migration 0004:
    the export's lifted fields and the flags `plain`, `verbatim` and `formula`; on PostgreSQL
    `at_iso`). They are not fields here: nothing may write them, and only the export in audit.py
    reads them, with SQL.
    """

    seq: int = Field(primary_key=True)  # gapless, assigned under the head lock
    at: datetime = Field(index=True)
    actor: str = Field(max_length=64)  # a Slack user id, or "worker"/"system"
    action: str = Field(max_length=40)
    announcement_id: int | None = Field(default=None, index=True)
    data: str = "{}"  # canonical JSON text
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the chain's last seq and hash. Locked for every append, so the chain never forks."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)
