"""The announcement life cycle: one table, the only way a state changes.

Standard library only (a test enforces it). `store.apply_transition` looks every change up
here before it writes, so an event that is not in the table can never move an announcement.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"  # waiting for approvals
    COOLING_OFF = "cooling_off"  # approved; counting to ten, Cancel still possible
    PUBLISHING = "publishing"  # deliveries under way (the outbox)
    PUBLISHED = "published"  # every destination delivered
    FAILED = "failed"  # at least one destination gave up; Retry failed possible
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RETRACT_PENDING = "retract_pending"  # someone asked to delete the published posts; a second person decides
    RETRACTING = "retracting"  # the worker deletes the posts where the platform allows it
    RETRACTED = "retracted"


class Event(StrEnum):
    APPROVE = "approve"  # an approval that does not yet make the quorum
    APPROVE_FINAL = "approve_final"  # the approval that makes the quorum: the count starts
    REJECT = "reject"
    EDIT = "edit"  # clears approvals; stays pending
    WITHDRAW = "withdraw"  # the author takes the draft back
    EXPIRE = "expire"  # pending for longer than expire_after_hours
    CANCEL = "cancel"  # pressed during the cooling-off window
    RELEASE = "release"  # the worker: release_at reached, deliveries created
    DELIVERED = "delivered"  # the worker: every delivery succeeded
    GIVE_UP = "give_up"  # the worker: a delivery failed for good
    RETRY_FAILED = "retry_failed"  # a person re-queues the failed deliveries
    REQUEST_RETRACT = "request_retract"  # ask to delete what was published
    APPROVE_RETRACT = "approve_retract"  # a second person agrees: delete it
    KEEP = "keep"  # the retraction is declined or withdrawn: stays published
    RETRACT_DONE = "retract_done"  # the worker: every deletion was tried


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.PENDING, Event.APPROVE): State.PENDING,
    (State.PENDING, Event.APPROVE_FINAL): State.COOLING_OFF,
    (State.PENDING, Event.REJECT): State.REJECTED,
    (State.PENDING, Event.EDIT): State.PENDING,
    (State.PENDING, Event.WITHDRAW): State.CANCELLED,
    (State.PENDING, Event.EXPIRE): State.EXPIRED,
    (State.COOLING_OFF, Event.CANCEL): State.CANCELLED,
    (State.COOLING_OFF, Event.RELEASE): State.PUBLISHING,
    (State.PUBLISHING, Event.DELIVERED): State.PUBLISHED,
    (State.PUBLISHING, Event.GIVE_UP): State.FAILED,
    (State.FAILED, Event.RETRY_FAILED): State.PUBLISHING,
    (State.PUBLISHED, Event.REQUEST_RETRACT): State.RETRACT_PENDING,
    (State.RETRACT_PENDING, Event.KEEP): State.PUBLISHED,
    (State.RETRACT_PENDING, Event.APPROVE_RETRACT): State.RETRACTING,
    (State.RETRACTING, Event.RETRACT_DONE): State.RETRACTED,
}

TERMINAL: frozenset[State] = frozenset({State.REJECTED, State.CANCELLED, State.EXPIRED, State.RETRACTED})

# Events a person causes by pressing a button; the rest belong to the worker.
HUMAN_EVENTS: frozenset[Event] = frozenset(
    {
        Event.APPROVE,
        Event.APPROVE_FINAL,
        Event.REJECT,
        Event.EDIT,
        Event.WITHDRAW,
        Event.CANCEL,
        Event.RETRY_FAILED,
        Event.REQUEST_RETRACT,
        Event.APPROVE_RETRACT,
        Event.KEEP,
    }
)


class IllegalTransition(ValueError):
    """The event is not in TRANSITIONS for this state."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{event.value!r} is not allowed in state {state.value!r}")
        self.state = state
        self.event = event


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def allowed_events(state: State) -> frozenset[Event]:
    return frozenset(event for (source, event) in TRANSITIONS if source == state)


def is_terminal(state: State) -> bool:
    return not allowed_events(state)
