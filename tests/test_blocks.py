"""Block Kit builders: valid for Slack (slack_sdk's models and Slack's limits), escaped, and
offering exactly the buttons the state table allows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from blocks import card, home, ids, modals
from workflow.states import HUMAN_EVENTS, State, allowed_events
from workflow.views import AnnouncementView, Count, DeliveryView, FindingView

HOSTILE = "<!channel> <@U0BOSS> <https://evil.example|your bank> & <#C0GENERAL> *bold*"


def view(state: State = State.PENDING, **changes: Any) -> AnnouncementView:
    base: dict[str, Any] = {
        "id": 7,
        "state": state,
        "revision": 2,
        "author_id": "U0AUTHOR",
        "text": "We are investigating failed logins. Next update by 14:30 UTC.",
        "title": None,
        "status": None,
        "destinations": ("status-channel", "partner-webhook"),
        "follows": None,
        "counts": (Count("status-channel", 60, 4000), Count("partner-webhook", 120, 20480, "bytes")),
        "approvals": (),
        "required_approvals": 1,
        "release_at": None,
        "decided_by": None,
        "reason": None,
    }
    base.update(changes)
    return AnnouncementView(**base)


def assert_valid_message(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        if raw["type"] == "section":
            assert len(raw["text"]["text"]) <= 3000


EVERY_STATE = [
    view(State.PENDING),
    view(
        State.PENDING,
        approvals=("U0A",),
        required_approvals=2,
        findings=(FindingView("shouting", "warning", "Capitals read as shouting.", "DOWN", "Write it in lower case."),),
    ),
    view(State.COOLING_OFF, approvals=("U0A",), release_at=datetime(2026, 11, 24, 14, 3, 10, tzinfo=UTC)),
    view(
        State.PUBLISHING,
        approvals=("U0A",),
        deliveries=(
            DeliveryView(1, "status-channel", "delivered", 1, url="https://x.slack.com/p1"),
            DeliveryView(2, "x", "uncertain", 1, error="no answer in time", can_resend=False),
        ),
    ),
    view(State.PUBLISHED, approvals=("U0A",), deliveries=(DeliveryView(1, "status-channel", "delivered", 1),)),
    view(
        State.FAILED,
        approvals=("U0A",),
        deliveries=(DeliveryView(2, "partner-webhook", "failed", 1, error="HTTP 400 bad"),),
    ),
    view(State.REJECTED, decided_by="U0B", reason=HOSTILE),
    view(State.CANCELLED, decided_by="U0B"),
    view(State.EXPIRED),
    view(State.RETRACT_PENDING, retract_requested_by="U0B", retract_reason=HOSTILE),
    view(
        State.RETRACTED,
        retract_requested_by="U0B",
        retract_reason="Wrong region",
        decided_by="U0C",
        deliveries=(DeliveryView(1, "teams", "retract_failed", 1, error="cannot delete"),),
    ),
]


@pytest.mark.parametrize("announcement", EVERY_STATE, ids=lambda v: v.state.value)
def test_every_card_is_valid_block_kit(announcement: AnnouncementView) -> None:
    text, blocks = card.render(announcement)
    assert text
    assert_valid_message(blocks)


@pytest.mark.parametrize("announcement", EVERY_STATE, ids=lambda v: v.state.value)
def test_buttons_are_exactly_the_events_the_state_allows(announcement: AnnouncementView) -> None:
    _, blocks = card.render(announcement)
    actions = [e["action_id"] for b in blocks if b.get("block_id") == ids.CARD_ACTIONS for e in b["elements"]]
    expected = {ids.BUTTON_FOR_EVENT[e] for e in allowed_events(announcement.state) & HUMAN_EVENTS}
    assert set(actions) == expected
    assert len(actions) == len(set(actions))
    if not allowed_events(announcement.state):
        assert not [b for b in blocks if b["type"] == "actions"]


def test_buttons_carry_the_revision_the_clicker_saw() -> None:
    _, blocks = card.render(view(State.PENDING))
    values = {e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}
    assert values == {"7:2"}
    assert ids.Ref.decode("7:2") == ids.Ref(7, 2)


@pytest.mark.parametrize("bad", ["", "7", "7:x", "x:2", "0:1", "7:2:3", None, "-1:2"])
def test_damaged_button_values_are_refused(bad: str | None) -> None:
    with pytest.raises(ids.BadValue):
        ids.Ref.decode(bad)


def test_user_text_cannot_ping_or_link() -> None:
    hostile = view(State.REJECTED, text=HOSTILE, title=HOSTILE, decided_by="U0B", reason=HOSTILE)
    text, blocks = card.render(hostile)
    rendered = str(blocks) + text
    for forbidden in ["<!channel>", "<@U0BOSS>", "<https://evil", "<#C0GENERAL>"]:
        assert forbidden not in rendered
    assert "&lt;!channel&gt;" in rendered
    assert "&amp;" in rendered


def test_findings_are_shown_and_approve_asks_to_confirm() -> None:
    finding = FindingView("blame", "warning", "Blames a vendor.", "<Cisco>", "Say what failed.")
    _, blocks = card.render(view(State.PENDING, findings=(finding, finding)))
    rendered = str(blocks)
    assert "*&lt;Cisco&gt;*" in rendered and "Say what failed." in rendered
    approve = next(e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == ids.APPROVE)
    assert approve["confirm"]["title"]["text"] == "Approve despite 2 warnings?"


def test_uncertain_deliveries_offer_mark_sent_and_send_again() -> None:
    _, blocks = card.render(EVERY_STATE[3])
    resolve = next(b for b in blocks if b.get("block_id") == ids.DELIVERY_ACTIONS)
    assert [e["action_id"] for e in resolve["elements"]] == ["mark_sent:2", "send_again:2"]
    assert "confirm" in resolve["elements"][1]


def test_long_text_is_split_into_sections_without_breaking_entities() -> None:
    text = ("a&b<c>" * 1700)[:10_000]
    _, blocks = card.render(view(text=text))
    assert_valid_message(blocks)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    joined = "".join(sections)
    assert joined.count("&amp;") == text.count("&")
    assert not re.search(r"&(?!amp;|lt;|gt;)", joined)


def test_cooling_off_card_says_who_approved_and_when() -> None:
    _, blocks = card.render(EVERY_STATE[2])
    rendered = str(blocks)
    assert "Approved by <@U0A>" in rendered
    assert "<!date^1795528990^{time_secs}|14:03:10 UTC>" in rendered


def choices(n: int = 3) -> list[modals.DestinationChoice]:
    kinds = ["slack", "webhook", "statuspage", "log", "mastodon"]
    return [modals.DestinationChoice(f"dest-{i}", kinds[i % len(kinds)], default=i == 0) for i in range(n)]


@pytest.mark.parametrize("n", [1, 3, 10, 11, 40])
def test_compose_modal_is_valid_and_preselects_defaults(n: int) -> None:
    built = modals.compose(choices(n), text="hello")
    View(**built).validate_json()
    picker = next(b for b in built["blocks"] if b.get("block_id") == ids.DESTINATIONS)["element"]
    assert picker["type"] == ("checkboxes" if n <= 10 else "multi_static_select")
    assert [o["value"] for o in picker["initial_options"]] == ["dest-0"]


def test_edit_modal_carries_the_revision_and_round_trips() -> None:
    built = modals.compose(
        choices(),
        callback_id=ids.EDIT_VIEW,
        text="old",
        title="Login errors",
        status="identified",
        selected=["dest-1", "dest-2"],
        private_metadata=modals.edit_metadata(ids.Ref(7, 3)),
    )
    View(**built).validate_json()
    assert modals.parse_edit_metadata(built["private_metadata"]) == ids.Ref(7, 3)


def test_parse_compose_reads_slack_state_values() -> None:
    values = {
        ids.TEXT: {ids.TEXT: {"type": "plain_text_input", "value": "  Hello  "}},
        ids.DESTINATIONS: {
            ids.DESTINATIONS: {"type": "checkboxes", "selected_options": [{"value": "a"}, {"value": "b"}]}
        },
        ids.TITLE: {ids.TITLE: {"type": "plain_text_input", "value": None}},
        ids.STATUS: {ids.STATUS: {"type": "static_select", "selected_option": {"value": "monitoring"}}},
    }
    assert modals.parse_compose(values) == modals.Submitted("Hello", ("a", "b"), None, "monitoring")


@pytest.mark.parametrize(
    "values", [{}, {ids.TEXT: "junk"}, {ids.DESTINATIONS: {ids.DESTINATIONS: {"selected_options": "x"}}}]
)
def test_parse_compose_survives_damaged_payloads(values: dict[str, Any]) -> None:
    parsed = modals.parse_compose(values)
    assert parsed.text == "" and parsed.destinations == ()


def test_reject_modal_and_errors_mapping() -> None:
    View(**modals.reject(ids.Ref(7, 2))).validate_json()
    mapped = modals.errors({"text": "x" * 400, "destinations": "Choose one.", "other": "Also this."})
    assert set(mapped) == {ids.TEXT, ids.DESTINATIONS}
    assert len(mapped[ids.TEXT]) <= 150


def test_home_tab_is_valid() -> None:
    built = home.render(pending=[view()], recent=EVERY_STATE)
    View(**built).validate_json()
    assert HOSTILE not in str(home.render(pending=[view(text=HOSTILE)], recent=[]))
