"""The worker: expire stale drafts, release due cooling-offs, send due deliveries.

Timers are rows: `release_at` and `next_attempt_at` live in the database, so a restart loses
nothing. A delivery is claimed with a short lease that the worker renews while the send is in
flight; a worker that dies stops renewing, the lease runs out, and the next worker takes the
delivery over, knowing the post may already exist (`interrupted`). What happens then depends
on the destination's `Redelivery`: send again with the same key, look first, or ask a person.

Sends run on a thread pool and never hold up the tick, so one hung destination cannot delay
another announcement's release.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col

from workflow import store
from workflow.clock import Clock, from_db, to_db
from workflow.db import is_postgres, transaction
from workflow.destinations.base import (
    Destination,
    PermanentPublishError,
    Post,
    PublishError,
    Receipt,
    Redelivery,
    TransientPublishError,
    UncertainPublishError,
)
from workflow.models import Announcement, Delivery
from workflow.service import settle
from workflow.settings import ApprovalSettings, DestinationSettings, fingerprint
from workflow.states import Event
from workflow.store import DeliveryState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    max_attempts: int = 8
    max_retry_after: float = 3600.0  # a platform asking for more than an hour is treated as an hour


def backoff(attempt: int, *, policy: RetryPolicy, rand: float) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped.

    `attempt` counts from 1; `rand` is in [0, 1). Pure, so tests pin it.
    """
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2 ** (attempt - 1))
    return ceiling / 2 + rand * ceiling / 2


@dataclass(frozen=True)
class Job:
    delivery_id: int
    announcement_id: int
    destination: str
    key: str
    attempt: int  # the claim token
    interrupted: bool
    post: Post
    reply_to: Receipt | None = None  # the earlier post on this destination that a follow-up continues


class Worker:
    def __init__(
        self,
        *,
        engine: Engine,
        clock: Clock,
        approval: ApprovalSettings,
        destinations: Mapping[str, Destination],
        destination_settings: Sequence[DestinationSettings],
        on_change: Callable[[int], None] = lambda _id: None,
        stale_cards: Callable[[datetime], list[int]] = lambda _now: [],
        redact: Callable[[str], str] = lambda s: s,
        policy: RetryPolicy = RetryPolicy(),
        lease_seconds: float = 15.0,
        parallel: int = 8,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.approval = approval
        self.destinations = dict(destinations)
        self.fingerprints = {d.name: fingerprint(d) for d in destination_settings}
        self.on_change = on_change
        self.stale_cards = stale_cards
        self._next_card_sync: datetime | None = None
        self.redact = redact
        self.policy = policy
        self.lease_seconds = lease_seconds
        self.parallel = parallel
        self.rand = rand
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="deliver")
        # Card refreshes are Slack calls: off the tick, so a burst of releases is not held up
        # by rendering each card in turn.
        self._cards = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cards")
        self._card_futures: set[Future[None]] = set()
        self._cards_queued: set[int] = set()
        self._in_flight: dict[int, tuple[Job, Future[None]]] = {}
        self._retracting: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._skip_locked = is_postgres(engine)

    # The loop ----------------------------------------------------------------------------

    def run_once(self) -> None:
        """One tick: expire, release, renew leases, claim and start sends. Does not wait for sends."""
        self.expire()
        self.release()
        self.renew_leases()
        self.dispatch()
        self.retract()
        self.repair_cards()

    def run_forever(self, stop: threading.Event, *, interval: float = 0.1) -> None:
        log.info("worker started")
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive a database blip; the next tick retries
                log.exception("worker tick failed")
            stop.wait(interval)
        self.drain()
        self._pool.shutdown(wait=True)
        self._cards.shutdown(wait=True)
        log.info("worker stopped")

    def drain(self, timeout: float | None = None) -> None:
        """Wait for the sends and card refreshes under way (tests call this after run_once)."""
        with self._lock:
            futures = [future for _, future in self._in_flight.values()] + list(self._retracting.values())
        for future in futures:
            future.result(timeout=timeout)
        with self._lock:
            cards = list(self._card_futures)
        for card in cards:
            card.result(timeout=timeout)

    # Steps -------------------------------------------------------------------------------

    def expire(self) -> None:
        now = self.clock.now()
        cutoff = now - timedelta(hours=self.approval.expire_after_hours)
        self._transition_all(
            Event.EXPIRE, now, lambda session: store.expired_pending(session=session, older_than=cutoff)
        )

    def release(self) -> None:
        """Start publishing every announcement whose count reached ten."""
        now = self.clock.now()
        self._transition_all(Event.RELEASE, now, lambda session: store.due_releases(session=session, now=now))

    def _transition_all(self, event: Event, now: datetime, due: Callable[[Session], list[Announcement]]) -> None:
        """One transaction for everything due this tick: a burst of releases stays on time.

        An announcement whose compare-and-set fails (a Cancel got there first) wrote nothing
        and is skipped; the others go ahead.
        """
        changed: list[int] = []
        with transaction(self.engine) as session:
            for a in due(session):
                try:
                    store.apply_transition(session=session, announcement=a, event=event, actor="worker", now=now)
                except store.StaleState:
                    continue
                changed.append(a.id or 0)
        for announcement_id in changed:
            self._changed(announcement_id)

    def repair_cards(self, *, every_seconds: float = 5.0) -> None:
        """Every few seconds, queue a refresh for cards that lag behind (never rendered inline,
        so a backlog of cards cannot hold up a release)."""
        now = self.clock.now()
        if self._next_card_sync is not None and now < self._next_card_sync:
            return
        self._next_card_sync = now + timedelta(seconds=every_seconds)
        for announcement_id in self.stale_cards(now):
            self._changed(announcement_id)

    def renew_leases(self) -> None:
        with self._lock:
            jobs = [job for job, _ in self._in_flight.values()]
        if not jobs:
            return
        until = to_db(self.clock.now() + timedelta(seconds=self.lease_seconds))
        with transaction(self.engine) as session:
            for job in jobs:
                session.execute(
                    update(Delivery)
                    .where(
                        col(Delivery.id) == job.delivery_id,
                        col(Delivery.state) == DeliveryState.SENDING.value,
                        col(Delivery.attempts) == job.attempt,
                    )
                    .values(lease_until=until)
                    .execution_options(synchronize_session=False)
                )

    def dispatch(self) -> int:
        with self._lock:
            free = self.parallel - len(self._in_flight)
        if free <= 0:
            return 0
        now = self.clock.now()
        jobs: list[Job] = []
        with transaction(self.engine) as session:
            claimed = store.claim_due(
                session=session, now=now, lease_seconds=self.lease_seconds, limit=free, skip_locked=self._skip_locked
            )
            for delivery, interrupted in claimed:
                a = session.get(Announcement, delivery.announcement_id)
                assert a is not None and delivery.id is not None
                post = Post(
                    text=a.text,
                    title=a.title,
                    status=a.status,
                    announcement_id=a.id,
                    released_at=from_db(a.release_at) if a.release_at else None,
                )
                reply_to = None
                if a.follows_id is not None:
                    reply_to = store.receipt_of(
                        session=session, announcement_id=a.follows_id, destination=delivery.destination
                    )
                jobs.append(
                    Job(
                        delivery_id=delivery.id,
                        announcement_id=delivery.announcement_id,
                        destination=delivery.destination,
                        key=delivery.key,
                        attempt=delivery.attempts,
                        interrupted=interrupted,
                        post=post,
                        reply_to=reply_to,
                    )
                )
        for job in jobs:
            with self._lock:
                future = self._pool.submit(self._deliver, job)
                self._in_flight[job.delivery_id] = (job, future)
            future.add_done_callback(lambda _f, did=job.delivery_id: self._done(did))
        return len(jobs)

    def _done(self, delivery_id: int) -> None:
        with self._lock:
            self._in_flight.pop(delivery_id, None)

    # Retraction ----------------------------------------------------------------------------

    def retract(self) -> None:
        """Delete approved retractions. Deleting twice is harmless (the second finds nothing),
        so unlike sends these need no lease: a crash just means the next tick tries again."""
        now = self.clock.now()
        with Session(self.engine) as session:
            due = [
                (d.id or 0, d.announcement_id, d.destination, d.attempts, store.receipt(d))
                for d in store.due_retractions(session=session, now=now, limit=self.parallel)
            ]
        for delivery_id, announcement_id, name, attempt, receipt in due:
            with self._lock:
                if delivery_id in self._retracting:
                    continue
                future = self._pool.submit(self._retract_one, delivery_id, announcement_id, name, attempt, receipt)
                self._retracting[delivery_id] = future
            future.add_done_callback(lambda _f, did=delivery_id: self._retract_done(did))

    def _retract_done(self, delivery_id: int) -> None:
        with self._lock:
            self._retracting.pop(delivery_id, None)

    def _retract_one(self, delivery_id: int, announcement_id: int, name: str, attempt: int, receipt: Receipt) -> None:
        destination = self.destinations.get(name)
        values: dict[str, Any]
        try:
            if destination is None:
                raise PermanentPublishError(f"{name} is no longer configured in announce.toml; delete the post by hand")
            destination.retract(receipt)
            values = {"state": DeliveryState.RETRACTED.value, "last_error": None}
        except TransientPublishError as exc:
            message = self.redact(str(exc))
            if attempt + 1 >= self.policy.max_attempts:
                values = {"state": DeliveryState.RETRACT_FAILED.value, "last_error": f"gave up: {message}"}
            else:
                delay = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else backoff(attempt + 1, policy=self.policy, rand=self.rand())
                )
                when = self.clock.now() + timedelta(seconds=min(delay, self.policy.max_retry_after))
                values = {"attempts": attempt + 1, "next_attempt_at": to_db(when), "last_error": message}
        except PublishError as exc:  # permanent, or unknown: a person has to look
            values = {"state": DeliveryState.RETRACT_FAILED.value, "last_error": self.redact(str(exc))}
        now = self.clock.now()
        with transaction(self.engine) as session:
            if not store.set_delivery(
                session=session, delivery_id=delivery_id, expect=DeliveryState.RETRACTING, now=now, values=values
            ):
                return
            store.record(
                session=session,
                actor="worker",
                action="retraction",
                now=now,
                announcement_id=announcement_id,
                data={
                    "destination": name,
                    "outcome": values.get("state", "retrying"),
                    "error": values.get("last_error"),
                },
            )
            settle(session=session, announcement_id=announcement_id, now=now)
        self._changed(announcement_id)

    # One send ----------------------------------------------------------------------------

    def _deliver(self, job: Job) -> None:
        try:
            outcome = self._attempt(job)
            self._finish(job, outcome)
        except Exception:  # a bug in one send must not kill the pool thread silently
            log.exception(
                "delivery %s to %s crashed; its lease will run out and it will be retried",
                job.delivery_id,
                job.destination,
            )

    def _attempt(self, job: Job) -> dict[str, Any]:
        destination = self.destinations.get(job.destination)
        if destination is None:
            return _failed(f"{job.destination} is no longer configured in announce.toml")
        disabled = self._disabled_reason(job.destination)
        if disabled:
            return _failed(f"{job.destination} is switched off: {disabled}")
        mode = destination.redelivery
        if job.interrupted and mode is Redelivery.NONE:
            return _uncertain("The app stopped while sending; check whether the post arrived.")
        try:
            # A retry on a destination that can look checks first: an earlier attempt may
            # have landed even though we never heard back.
            if mode is Redelivery.LOOKUP and job.attempt > 1:
                found = destination.find(job.post, key=job.key)
                if found is not None:
                    return _delivered(found)
            return _delivered(destination.publish(job.post, key=job.key, reply_to=job.reply_to))
        except TransientPublishError as exc:
            return self._retry_or_give_up(job, self.redact(str(exc)), exc.retry_after)
        except PermanentPublishError as exc:
            message = self.redact(str(exc))
            if exc.disable:
                self._disable(job.destination, message)
            return _failed(message)
        except UncertainPublishError as exc:
            message = self.redact(str(exc))
            if mode is Redelivery.NONE:
                return _uncertain(message)
            return self._retry_or_give_up(job, message, None)
        except PublishError as exc:  # a subclass an adapter invented: be safe, ask a person
            return _uncertain(self.redact(str(exc)))

    def _retry_or_give_up(self, job: Job, message: str, retry_after: float | None) -> dict[str, Any]:
        if job.attempt >= self.policy.max_attempts:
            return _failed(f"gave up after {job.attempt} attempts: {message}")
        delay = backoff(job.attempt, policy=self.policy, rand=self.rand())
        if retry_after is not None:
            delay = min(max(retry_after, 0.0), self.policy.max_retry_after)
        when = self.clock.now() + timedelta(seconds=delay)
        return {"state": DeliveryState.QUEUED.value, "next_attempt_at": to_db(when), "last_error": message}

    def _finish(self, job: Job, values: dict[str, Any]) -> None:
        now = self.clock.now()
        with transaction(self.engine) as session:
            if not store.finish_delivery(
                session=session, delivery_id=job.delivery_id, attempt=job.attempt, now=now, values=values
            ):
                log.warning("delivery %s: claim lost before the result was written", job.delivery_id)
                return
            store.record(
                session=session,
                actor="worker",
                action="delivery",
                now=now,
                announcement_id=job.announcement_id,
                data={
                    "destination": job.destination,
                    "attempt": job.attempt,
                    "outcome": values["state"],
                    "remote_id": values.get("remote_id"),
                    "url": values.get("url"),
                    "error": values.get("last_error"),
                },
            )
            settle(session=session, announcement_id=job.announcement_id, now=now)
        self._changed(job.announcement_id)

    def _changed(self, announcement_id: int) -> None:
        # One queued refresh per card is enough: it renders whatever the state is when it runs,
        # so a release and its deliveries landing together cost one chat.update, not three.
        with self._lock:
            if announcement_id in self._cards_queued:
                return
            self._cards_queued.add(announcement_id)
        future = self._cards.submit(self._refresh, announcement_id)
        with self._lock:
            self._card_futures.add(future)
        future.add_done_callback(self._card_done)

    def _card_done(self, future: Future[None]) -> None:
        with self._lock:
            self._card_futures.discard(future)

    def _refresh(self, announcement_id: int) -> None:
        with self._lock:
            self._cards_queued.discard(announcement_id)
        try:
            self.on_change(announcement_id)
        except Exception:  # the card is repaired by the next sync; the state change stands
            log.exception("could not refresh the card of announcement %s", announcement_id)

    def _disabled_reason(self, name: str) -> str | None:
        with Session(self.engine) as session:
            row = store.disabled_destinations(session=session).get(name)
        if row is None or row.fingerprint != self.fingerprints.get(name):
            return None
        return row.reason

    def _disable(self, name: str, reason: str) -> None:
        with transaction(self.engine) as session:
            store.disable_destination(
                session=session,
                name=name,
                fingerprint=self.fingerprints.get(name, ""),
                reason=reason,
                now=self.clock.now(),
            )


def _delivered(receipt: Receipt) -> dict[str, Any]:
    return {
        "state": DeliveryState.DELIVERED.value,
        "remote_id": receipt.remote_id,
        "url": receipt.url,
        "receipt": json.dumps(receipt.extra, sort_keys=True),
        "last_error": None,
    }


def _failed(message: str) -> dict[str, Any]:
    return {"state": DeliveryState.FAILED.value, "last_error": message}


def _uncertain(message: str) -> dict[str, Any]:
    return {"state": DeliveryState.UNCERTAIN.value, "last_error": message}
