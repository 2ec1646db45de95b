"""The one small interface every destination implements, and the values it trades in.

A destination knows its platform's wire protocol, its length rule and how it signals
failure; it knows nothing of the database, Slack cards or retries. The outbox decides what
to do with the three failure classes below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Post:
    """What goes out: the approved text and the optional fields some platforms need."""

    text: str
    title: str | None = None
    status: str | None = None  # statuspage incident status: investigating, identified, ...
    announcement_id: int | None = None
    released_at: datetime | None = None  # stable across retries (Bluesky createdAt, TID)


@dataclass(frozen=True)
class Receipt:
    """Where a post landed, as the platform named it."""

    remote_id: str
    url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Length:
    """A text's length as the platform counts it, against the platform's limit."""

    used: int
    limit: int | None  # None: the platform sets no limit we enforce
    unit: str = "characters"

    @property
    def fits(self) -> bool:
        return self.limit is None or self.used <= self.limit

    def __str__(self) -> str:
        return f"{self.used}" if self.limit is None else f"{self.used}/{self.limit}"


class Redelivery(StrEnum):
    """What happens when we do not know whether a send arrived (a crash, a read timeout)."""

    IDEMPOTENT = "idempotent"  # sending again with the same key cannot duplicate the post
    LOOKUP = "lookup"  # `find` can tell whether the post exists
    NONE = "none"  # neither: a person decides (Mark as sent / Send again)


class PublishError(Exception):
    """Base of the three failure classes. Messages must never contain secrets."""


class TransientPublishError(PublishError):
    """Nothing was posted and trying later may work (connect errors, 408/425/429/5xx)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentPublishError(PublishError):
    """Nothing was posted and trying again will not help until a person changes something.

    `disable` asks the outbox to stop using the destination (a webhook answered 410 Gone)
    until its configuration changes.
    """

    def __init__(self, message: str, *, disable: bool = False) -> None:
        super().__init__(message)
        self.disable = disable


class UncertainPublishError(PublishError):
    """The request may have reached the platform and the answer was lost (a read timeout)."""


@runtime_checkable
class Destination(Protocol):
    name: str
    type: str
    redelivery: Redelivery

    def length(self, post: Post) -> Length:
        """The text's length as this platform counts it."""
        ...

    def check(self, post: Post) -> list[str]:
        """Problems that block submission (too long, a required field missing)."""
        ...

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        """Send the post. `key` is stable across retries of the same delivery."""
        ...

    def find(self, post: Post, *, key: str) -> Receipt | None:
        """For Redelivery.LOOKUP: the post sent with `key`, if it exists. Others return None."""
        ...

    def retract(self, receipt: Receipt) -> None:
        """Delete the post where the platform allows it."""
        ...

    def verify(self) -> str:
        """Check the credentials without posting; return a one-line description."""
        ...


def too_long(name: str, length: Length) -> list[str]:
    """The standard 'does not fit' problem, with the count, or nothing."""
    if length.fits:
        return []
    return [f"{name}: {length.used} {length.unit}, over the limit of {length.limit}"]
