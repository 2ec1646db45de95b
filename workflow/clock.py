"""Time is passed in. The core never reads a clock: handlers and the worker ask a `Clock` and
hand `now` down, so tests move time forward instead of sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; for tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 14, 0, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


def to_db(moment: datetime) -> datetime:
    """Any aware time → UTC, as the database columns (SQLModel's UTCDateTime) store it."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass timezone-aware UTC times into the core")
    return moment.astimezone(UTC)


def from_db(moment: datetime) -> datetime:
    """A time read back (aware, or naive UTC from a raw SQLite query) → aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds and a Z, the one format of exports and hashes."""
    return from_db(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
