"""Read models: plain, frozen data that the Block Kit builders render. Standard library only,
so `blocks/` can import these without pulling in the database or the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workflow.states import State


@dataclass(frozen=True)
class Count:
    """A text's length on one destination, as shown in the modal and on the card."""

    destination: str
    used: int
    limit: int | None
    unit: str = "characters"

    @property
    def fits(self) -> bool:
        return self.limit is None or self.used <= self.limit

    def __str__(self) -> str:
        return f"{self.used}" if self.limit is None else f"{self.used}/{self.limit}"


@dataclass(frozen=True)
class FindingView:
    rule: str
    severity: str  # "blocking" | "warning"
    message: str
    excerpt: str
    suggestion: str | None = None


@dataclass(frozen=True)
class DeliveryView:
    id: int
    destination: str
    state: str
    attempts: int
    error: str | None = None
    url: str | None = None
    next_attempt_at: datetime | None = None
    can_resend: bool = True  # False where Send again could duplicate a post the app cannot see


@dataclass(frozen=True)
class AnnouncementView:
    id: int
    state: State
    revision: int
    author_id: str
    text: str
    title: str | None
    status: str | None
    destinations: tuple[str, ...]
    follows: int | None
    counts: tuple[Count, ...]
    approvals: tuple[str, ...]  # approvers of the current revision, in order
    required_approvals: int
    release_at: datetime | None
    decided_by: str | None
    reason: str | None
    findings: tuple[FindingView, ...] = ()
    deliveries: tuple[DeliveryView, ...] = ()
    editors: tuple[str, ...] = ()
    created_at: datetime | None = None
    warnings: int = field(default=0)
    retract_requested_by: str | None = None
    retract_reason: str | None = None
    version: int = 0  # what a card rendered from this view shows
    channel: str = ""
    message_ts: str | None = None
