"""The transition table: the only way a state changes."""

from __future__ import annotations

from collections import deque

import pytest

from workflow.states import (
    HUMAN_EVENTS,
    TERMINAL,
    TRANSITIONS,
    Event,
    IllegalTransition,
    State,
    allowed_events,
    is_terminal,
    next_state,
)


def test_terminal_states_have_no_exits() -> None:
    for state in TERMINAL:
        assert allowed_events(state) == frozenset()
        for event in Event:
            with pytest.raises(IllegalTransition):
                next_state(state, event)


def test_terminal_set_is_exactly_the_states_without_exits() -> None:
    assert {s for s in State if is_terminal(s)} == set(TERMINAL)


def test_every_state_is_reachable_from_pending() -> None:
    seen, queue = {State.PENDING}, deque([State.PENDING])
    while queue:
        state = queue.popleft()
        for event in allowed_events(state):
            target = next_state(state, event)
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(State)


def test_no_event_outside_the_table_changes_a_state() -> None:
    for state in State:
        for event in Event:
            if (state, event) in TRANSITIONS:
                assert next_state(state, event) == TRANSITIONS[(state, event)]
            else:
                with pytest.raises(IllegalTransition, match=event.value):
                    next_state(state, event)


def test_nothing_is_sent_without_an_approval() -> None:
    """The only way into PUBLISHING is RELEASE, and the only way into COOLING_OFF is the final approval."""
    into_publishing = {(s, e) for (s, e), t in TRANSITIONS.items() if t is State.PUBLISHING}
    assert into_publishing == {(State.COOLING_OFF, Event.RELEASE), (State.FAILED, Event.RETRY_FAILED)}
    into_cooling = {(s, e) for (s, e), t in TRANSITIONS.items() if t is State.COOLING_OFF}
    assert into_cooling == {(State.PENDING, Event.APPROVE_FINAL)}


def test_the_worker_owns_release_and_outcomes() -> None:
    assert {Event.RELEASE, Event.DELIVERED, Event.GIVE_UP, Event.EXPIRE}.isdisjoint(HUMAN_EVENTS)
    assert allowed_events(State.COOLING_OFF) & HUMAN_EVENTS == {Event.CANCEL}


def test_deleting_what_was_published_needs_its_own_approval() -> None:
    into_retracting = {(s, e) for (s, e), t in TRANSITIONS.items() if t is State.RETRACTING}
    assert into_retracting == {(State.RETRACT_PENDING, Event.APPROVE_RETRACT)}
    assert next_state(State.RETRACT_PENDING, Event.KEEP) is State.PUBLISHED
    assert is_terminal(State.RETRACTED)
