"""Persistence. Every function takes `*, session` and runs inside the caller's transaction.

`apply_transition` is the only code that writes `Announcement.state`: it looks the event up in
`states.TRANSITIONS`, writes with a compare-and-set on the state and version the caller read,
appends the audit row, and creates or re-queues the outbox rows the new state needs, all in
that one transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from workflow import audit
from workflow.clock import to_db
from workflow.destinations.base import Receipt
from workflow.models import Announcement, Approval, Delivery, DestinationStatus
from workflow.states import Event, State, next_state


class DeliveryState(StrEnum):
    QUEUED = "queued"  # waiting for next_attempt_at (None = now)
    SENDING = "sending"  # claimed by a worker until lease_until
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: permanent error or retries exhausted
    UNCERTAIN = "uncertain"  # may have been sent; a person decides (no idempotency, no lookup)
    SKIPPED = "skipped"  # a person marked it as sent, or the destination is disabled
    RETRACTING = "retracting"  # approved for deletion; the worker deletes it at next_attempt_at
    RETRACTED = "retracted"
    RETRACT_FAILED = "retract_failed"  # the platform would not delete it: a person has to


OPEN_DELIVERY_STATES = (DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.UNCERTAIN)


class StaleState(Exception):
    """The compare-and-set matched no row: someone else changed the announcement first."""


def names(value: str) -> list[str]:
    return list(json.loads(value))


def get_announcement(*, session: Session, announcement_id: int) -> Announcement | None:
    return session.get(Announcement, announcement_id)


def add_announcement(
    *, session: Session, announcement: Announcement, actor: str, now: datetime, data: Mapping[str, Any]
) -> Announcement:
    session.add(announcement)
    session.flush()
    assert announcement.id is not None
    audit.append(
        session=session,
        at=now,
        actor=actor,
        action="submit",
        announcement_id=announcement.id,
        data={"to_state": announcement.state, **data},
    )
    return announcement


def apply_transition(
    *,
    session: Session,
    announcement: Announcement,
    event: Event,
    actor: str,
    now: datetime,
    changes: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Announcement:
    """Move `announcement` along `event`, or raise StaleState if it changed since it was read."""
    assert announcement.id is not None
    source = State(announcement.state)
    target = next_state(source, event)
    values: dict[str, Any] = {
        "state": target.value,
        "version": announcement.version + 1,
        "updated_at": to_db(now),
        **(changes or {}),
    }
    result = session.execute(
        update(Announcement)
        .where(
            col(Announcement.id) == announcement.id,
            col(Announcement.state) == source.value,
            col(Announcement.version) == announcement.version,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleState(announcement.id)
    session.refresh(announcement)
    audit.append(
        session=session,
        at=now,
        actor=actor,
        action=event.value,
        announcement_id=announcement.id,
        data={"from_state": source.value, "to_state": target.value, **(data or {})},
    )
    if event is Event.RELEASE:
        _create_deliveries(session=session, announcement=announcement, now=now)
    elif event is Event.RETRY_FAILED:
        _requeue_failed(session=session, announcement_id=announcement.id, actor=actor, now=now)
    elif event is Event.APPROVE_RETRACT:
        _queue_retractions(session=session, announcement_id=announcement.id, now=now)
    return announcement


def record(
    *, session: Session, actor: str, action: str, now: datetime, announcement_id: int | None, data: Mapping[str, Any]
) -> None:
    """An audit event that changes no state: a refusal, a delivery attempt."""
    audit.append(session=session, at=now, actor=actor, action=action, announcement_id=announcement_id, data=data)


# Approvals -----------------------------------------------------------------------------


def approvers_of(*, session: Session, announcement_id: int, revision: int) -> list[str]:
    rows = session.exec(
        select(Approval.approver_id)
        .where(Approval.announcement_id == announcement_id, Approval.revision == revision)
        .order_by(col(Approval.id))
    )
    return list(rows)


def add_approval(*, session: Session, announcement: Announcement, approver_id: str, now: datetime) -> None:
    assert announcement.id is not None
    session.add(
        Approval(
            announcement_id=announcement.id,
            revision=announcement.revision,
            approver_id=approver_id,
            content_hash=announcement.content_hash,
            at=to_db(now),
        )
    )
    session.flush()


# Worker queries -------------------------------------------------------------------------


def due_releases(*, session: Session, now: datetime, limit: int = 50) -> list[Announcement]:
    return list(
        session.exec(
            select(Announcement)
            .where(Announcement.state == State.COOLING_OFF.value, col(Announcement.release_at) <= to_db(now))
            .order_by(col(Announcement.release_at))
            .limit(limit)
        )
    )


def expired_pending(*, session: Session, older_than: datetime, limit: int = 50) -> list[Announcement]:
    return list(
        session.exec(
            select(Announcement)
            .where(Announcement.state == State.PENDING.value, col(Announcement.created_at) <= to_db(older_than))
            .limit(limit)
        )
    )


def stale_cards(*, session: Session, limit: int = 50) -> list[Announcement]:
    """Announcements whose card does not show their current version (or was never posted)."""
    return list(
        session.exec(
            select(Announcement)
            .where(col(Announcement.card_version) < col(Announcement.version))
            .order_by(col(Announcement.id))
            .limit(limit)
        )
    )


def mark_card_rendered(*, session: Session, announcement_id: int, version: int, message_ts: str | None) -> None:
    """Remember what the card shows. Never moves backwards if a newer render got there first."""
    values: dict[str, Any] = {"card_version": version}
    if message_ts:
        values["message_ts"] = message_ts
    session.execute(
        update(Announcement)
        .where(col(Announcement.id) == announcement_id, col(Announcement.card_version) < version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def recent_published(*, session: Session, since: datetime) -> list[Announcement]:
    return list(
        session.exec(
            select(Announcement).where(
                col(Announcement.state).in_([State.PUBLISHED.value, State.PUBLISHING.value]),
                col(Announcement.updated_at) >= to_db(since),
            )
        )
    )


def list_announcements(
    *, session: Session, states: Sequence[State] | None = None, limit: int = 20
) -> list[Announcement]:
    query = select(Announcement).order_by(col(Announcement.id).desc()).limit(limit)
    if states:
        query = query.where(col(Announcement.state).in_([s.value for s in states]))
    return list(session.exec(query))


# The outbox ----------------------------------------------------------------------------


def _create_deliveries(*, session: Session, announcement: Announcement, now: datetime) -> None:
    assert announcement.id is not None
    for name in names(announcement.destinations):
        session.add(
            Delivery(
                announcement_id=announcement.id,
                destination=name,
                key=uuid.uuid4().hex,
                state=DeliveryState.QUEUED.value,
                next_attempt_at=to_db(now),
                updated_at=to_db(now),
            )
        )
    session.flush()


def _requeue_failed(*, session: Session, announcement_id: int, actor: str, now: datetime) -> None:
    session.execute(
        update(Delivery)
        .where(col(Delivery.announcement_id) == announcement_id, col(Delivery.state) == DeliveryState.FAILED.value)
        .values(state=DeliveryState.QUEUED.value, attempts=0, next_attempt_at=to_db(now), updated_at=to_db(now))
        .execution_options(synchronize_session=False)
    )


def _queue_retractions(*, session: Session, announcement_id: int, now: datetime) -> None:
    session.execute(
        update(Delivery)
        .where(col(Delivery.announcement_id) == announcement_id, col(Delivery.state) == DeliveryState.DELIVERED.value)
        .values(state=DeliveryState.RETRACTING.value, attempts=0, next_attempt_at=to_db(now), updated_at=to_db(now))
        .execution_options(synchronize_session=False)
    )


def due_retractions(*, session: Session, now: datetime, limit: int) -> list[Delivery]:
    return list(
        session.exec(
            select(Delivery)
            .where(Delivery.state == DeliveryState.RETRACTING.value, col(Delivery.next_attempt_at) <= to_db(now))
            .order_by(col(Delivery.id))
            .limit(limit)
        )
    )


def deliveries_of(*, session: Session, announcement_id: int) -> list[Delivery]:
    return list(
        session.exec(select(Delivery).where(Delivery.announcement_id == announcement_id).order_by(col(Delivery.id)))
    )


def claim_due(
    *, session: Session, now: datetime, lease_seconds: float, limit: int, skip_locked: bool
) -> list[tuple[Delivery, bool]]:
    """Claim deliveries to send: due queued ones, and claimed ones whose lease ran out.

    Returns (delivery, interrupted) pairs; `interrupted` means a worker died mid-send, so the
    post may already exist. On PostgreSQL, SKIP LOCKED lets several workers claim disjoint rows.
    """
    moment = to_db(now)
    query = (
        select(Delivery)
        .where(
            or_(
                (col(Delivery.state) == DeliveryState.QUEUED.value) & (col(Delivery.next_attempt_at) <= moment),
                (col(Delivery.state) == DeliveryState.SENDING.value) & (col(Delivery.lease_until) <= moment),
            )
        )
        .order_by(col(Delivery.id))
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for delivery in session.exec(query):
        interrupted = delivery.state == DeliveryState.SENDING.value
        delivery.state = DeliveryState.SENDING.value
        delivery.attempts += 1
        delivery.lease_until = moment + timedelta(seconds=lease_seconds)
        delivery.updated_at = moment
        session.add(delivery)
        claimed.append((delivery, interrupted))
    session.flush()
    return claimed


def finish_delivery(
    *, session: Session, delivery_id: int, attempt: int, now: datetime, values: Mapping[str, Any]
) -> bool:
    """Write a send's outcome if this worker still holds the claim (`attempt` is the token)."""
    result = session.execute(
        update(Delivery)
        .where(
            col(Delivery.id) == delivery_id,
            col(Delivery.state) == DeliveryState.SENDING.value,
            col(Delivery.attempts) == attempt,
        )
        .values(updated_at=to_db(now), lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def set_delivery(
    *, session: Session, delivery_id: int, expect: DeliveryState, now: datetime, values: Mapping[str, Any]
) -> bool:
    """Compare-and-set on a delivery's state (a person resolving an uncertain send)."""
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id, col(Delivery.state) == expect.value)
        .values(updated_at=to_db(now), **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def receipt_of(*, session: Session, announcement_id: int, destination: str) -> Receipt | None:
    """Where an earlier announcement landed on one destination, if it landed there."""
    delivery = session.exec(
        select(Delivery).where(
            Delivery.announcement_id == announcement_id,
            Delivery.destination == destination,
            Delivery.state == DeliveryState.DELIVERED.value,
        )
    ).first()
    if delivery is None or not delivery.remote_id:
        return None
    return receipt(delivery)


def receipt(delivery: Delivery) -> Receipt:
    """A delivered post as the platform named it, for a reply to it or its deletion."""
    return Receipt(remote_id=delivery.remote_id or "", url=delivery.url, extra=json.loads(delivery.receipt or "{}"))


def delivery_counts(*, session: Session, announcement_id: int) -> dict[str, int]:
    rows = session.exec(
        select(Delivery.state, func.count()).where(Delivery.announcement_id == announcement_id).group_by(Delivery.state)
    )
    return {state: count for state, count in rows}


# Disabled destinations ---------------------------------------------------------------------


def disabled_destinations(*, session: Session) -> dict[str, DestinationStatus]:
    return {row.name: row for row in session.exec(select(DestinationStatus))}


def disable_destination(*, session: Session, name: str, fingerprint: str, reason: str, now: datetime) -> None:
    row = session.get(DestinationStatus, name)
    if row is None:
        row = DestinationStatus(name=name, fingerprint=fingerprint, reason=reason, disabled_at=to_db(now))
    else:
        row.fingerprint, row.reason, row.disabled_at = fingerprint, reason, to_db(now)
    session.add(row)


def enable_destination(*, session: Session, name: str) -> None:
    row = session.get(DestinationStatus, name)
    if row is not None:
        session.delete(row)
