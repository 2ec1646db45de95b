"""Action, callback and block ids, and button values. One place, so handlers and builders
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflow.states import Event

# Buttons on the card
APPROVE = "approve"
REJECT = "reject"
EDIT = "edit"
WITHDRAW = "withdraw"
CANCEL = "cancel"
RETRY_FAILED = "retry_failed"
MARK_SENT = "mark_sent"
SEND_AGAIN = "send_again"
REQUEST_RETRACT = "request_retract"
APPROVE_RETRACT = "approve_retract"
KEEP = "keep"

# Which card button stands for which state event. Worker events have no button.
BUTTON_FOR_EVENT: dict[Event, str] = {
    Event.APPROVE: APPROVE,
    Event.APPROVE_FINAL: APPROVE,
    Event.REJECT: REJECT,
    Event.EDIT: EDIT,
    Event.WITHDRAW: WITHDRAW,
    Event.CANCEL: CANCEL,
    Event.RETRY_FAILED: RETRY_FAILED,
    Event.REQUEST_RETRACT: REQUEST_RETRACT,
    Event.APPROVE_RETRACT: APPROVE_RETRACT,
    Event.KEEP: KEEP,
}
BUTTON_ORDER = (APPROVE, REJECT, EDIT, WITHDRAW, CANCEL, RETRY_FAILED, APPROVE_RETRACT, KEEP, REQUEST_RETRACT)

# Modals
COMPOSE = "compose"
EDIT_VIEW = "edit_announcement"
REJECT_VIEW = "reject_reason"
RETRACT_VIEW = "retract_reason"

# Blocks and their single input element (action id = block id, for simple parsing)
TEXT = "text"
DESTINATIONS = "destinations"
TITLE = "title"
STATUS = "status"
FOLLOWS = "follows"
COUNTS = "counts"
REASON = "reason"
CARD_ACTIONS = "card_actions"
DELIVERY_ACTIONS = "delivery_actions"


class BadValue(ValueError):
    """A button value or private_metadata we did not write (or that was truncated)."""


@dataclass(frozen=True)
class Ref:
    """Which announcement, and which revision of its text the clicker saw."""

    announcement_id: int
    revision: int

    def encode(self) -> str:
        return f"{self.announcement_id}:{self.revision}"

    @classmethod
    def decode(cls, value: str | None) -> Ref:
        try:
            left, right = (value or "").split(":")
            ref = cls(int(left), int(right))
        except ValueError:
            raise BadValue(f"not an announcement reference: {value!r}") from None
        if ref.announcement_id <= 0 or ref.revision <= 0:
            raise BadValue(f"not an announcement reference: {value!r}")
        return ref


def decode_delivery(value: str | None) -> int:
    if not value or not value.isdigit() or int(value) <= 0:
        raise BadValue(f"not a delivery id: {value!r}")
    return int(value)
