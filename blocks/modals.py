"""Compose, edit and reject-reason modals, and the parsers for what comes back.

Parsers read `view.state.values` and never trust its shape: a missing block or an odd value
becomes an empty field, which validation then names, instead of a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from blocks import ids
from workflow.views import Count

TEXT_MAX = 3000  # Slack's limit for a plain_text_input
TITLE_MAX = 255
REASON_MAX = 500
CHECKBOX_LIMIT = 10  # checkboxes take at most 10 options; more become a multi-select
STATUSES = ("investigating", "identified", "monitoring", "resolved")


@dataclass(frozen=True)
class DestinationChoice:
    name: str
    type: str
    default: bool = False


@dataclass(frozen=True)
class Submitted:
    text: str
    destinations: tuple[str, ...]
    title: str | None
    status: str | None
    follows: int | None = None


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _option(name: str, description: str | None = None) -> dict[str, Any]:
    option: dict[str, Any] = {"text": _plain(name[:75]), "value": name}
    if description:
        option["description"] = _plain(description[:75])
    return option


def _option_id(value: int, label: str) -> dict[str, Any]:
    text = label if len(label) <= 75 else label[:74] + "…"
    return {"text": _plain(text), "value": str(value)}


def compose(
    choices: Sequence[DestinationChoice],
    *,
    callback_id: str = ids.COMPOSE,
    text: str = "",
    title: str | None = None,
    status: str | None = None,
    selected: Sequence[str] | None = None,
    private_metadata: str = "",
    counts: Sequence[Count] = (),
    follow_ups: Sequence[tuple[int, str]] = (),
    follows: int | None = None,
) -> dict[str, Any]:
    """The compose modal (also the edit modal, with callback_id=EDIT_VIEW and the old values)."""
    chosen = set(selected if selected is not None else [c.name for c in choices if c.default])
    editing = callback_id == ids.EDIT_VIEW
    text_input: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ids.TEXT,
        "multiline": True,
        "max_length": TEXT_MAX,
        "placeholder": _plain("What happened, who is affected, what you are doing, when the next update comes."),
        # Typing sends block_actions, so the counts below follow the text as it is written.
        "dispatch_action_config": {"trigger_actions_on": ["on_character_entered"]},
    }
    if text:
        text_input["initial_value"] = text[:TEXT_MAX]
    options = [_option(c.name, c.type) for c in choices]
    initial = [o for o in options if o["value"] in chosen]
    kind = "checkboxes" if len(options) <= CHECKBOX_LIMIT else "multi_static_select"
    picker: dict[str, Any] = {"type": kind, "action_id": ids.DESTINATIONS, "options": options}
    if kind == "multi_static_select":
        picker["placeholder"] = _plain("Choose destinations")
    if initial:
        picker["initial_options"] = initial
    title_input: dict[str, Any] = {"type": "plain_text_input", "action_id": ids.TITLE, "max_length": TITLE_MAX}
    if title:
        title_input["initial_value"] = title[:TITLE_MAX]
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": ids.TEXT,
            "dispatch_action": True,
            "label": _plain("Announcement"),
            "element": text_input,
        },
        {
            "type": "input",
            "block_id": ids.DESTINATIONS,
            "dispatch_action": True,
            "label": _plain("Post to"),
            "element": picker,
        },
        {
            "type": "input",
            "block_id": ids.TITLE,
            "optional": True,
            "label": _plain("Title"),
            "hint": _plain("Required for Statuspage, where it becomes the incident name."),
            "element": title_input,
        },
    ]
    if any(c.type == "statuspage" for c in choices):
        status_select: dict[str, Any] = {
            "type": "static_select",
            "action_id": ids.STATUS,
            "placeholder": _plain("Incident status"),
            "options": [_option(s) for s in STATUSES],
        }
        if status in STATUSES:
            status_select["initial_option"] = _option(status)
        blocks.append(
            {
                "type": "input",
                "block_id": ids.STATUS,
                "optional": True,
                "label": _plain("Status"),
                "element": status_select,
            }
        )
    if follow_ups:
        options = [_option_id(i, label) for i, label in follow_ups[:100]]
        follow: dict[str, Any] = {
            "type": "static_select",
            "action_id": ids.FOLLOWS,
            "placeholder": _plain("A new announcement"),
            "options": options,
        }
        initial_follow = next((o for o in options if o["value"] == str(follows)), None)
        if initial_follow:
            follow["initial_option"] = initial_follow
        blocks.append(
            {
                "type": "input",
                "block_id": ids.FOLLOWS,
                "optional": True,
                "label": _plain("Follow-up to"),
                "hint": _plain("Threads the post under the earlier one; Statuspage updates the same incident."),
                "element": follow,
            }
        )
    if counts:
        line = " · ".join(f"{c.destination} {c}" + ("" if c.fits else " ⚠ too long") for c in counts)
        blocks.append(
            {
                "type": "context",
                "block_id": ids.COUNTS,
                "elements": [{"type": "plain_text", "text": f"Length: {line}"[:2000]}],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "A second person approves it, then the app counts to ten before sending. "
                    "Anyone who approved can still cancel during the count.",
                }
            ],
        }
    )
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "title": _plain("Edit announcement" if editing else "New announcement"),
        "submit": _plain("Save" if editing else "Send for approval"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def _reason_modal(
    ref: ids.Ref, *, callback_id: str, title: str, submit: str, label: str, optional: bool
) -> dict[str, Any]:
    element = {"type": "plain_text_input", "action_id": ids.REASON, "multiline": True, "max_length": REASON_MAX}
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": ref.encode(),
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Back"),
        "blocks": [
            {"type": "input", "block_id": ids.REASON, "optional": optional, "label": _plain(label), "element": element}
        ],
    }


def reject(ref: ids.Ref) -> dict[str, Any]:
    return _reason_modal(
        ref,
        callback_id=ids.REJECT_VIEW,
        title="Reject announcement",
        submit="Reject",
        label="Why? The author gets this in a DM.",
        optional=True,
    )


def retract(ref: ids.Ref) -> dict[str, Any]:
    return _reason_modal(
        ref,
        callback_id=ids.RETRACT_VIEW,
        title="Retract announcement",
        submit="Ask to retract",
        label="Why delete it? A second person approves.",
        optional=False,
    )


def _value(values: Mapping[str, Any], block: str) -> Mapping[str, Any]:
    entry = values.get(block)
    if not isinstance(entry, Mapping):
        return {}
    element = entry.get(block)
    return element if isinstance(element, Mapping) else {}


def parse_compose(values: Mapping[str, Any]) -> Submitted:
    text = _value(values, ids.TEXT).get("value") or ""
    title = (_value(values, ids.TITLE).get("value") or "").strip() or None
    chosen = _value(values, ids.DESTINATIONS).get("selected_options") or []
    destinations = tuple(str(o.get("value")) for o in chosen if isinstance(o, Mapping) and o.get("value"))
    option = _value(values, ids.STATUS).get("selected_option")
    status = str(option.get("value")) if isinstance(option, Mapping) and option.get("value") else None
    follow = _value(values, ids.FOLLOWS).get("selected_option")
    follow_value = str(follow.get("value", "")) if isinstance(follow, Mapping) else ""
    follows = int(follow_value) if follow_value.isdigit() else None
    return Submitted(text=str(text).strip(), destinations=destinations, title=title, status=status, follows=follows)


def parse_reason(values: Mapping[str, Any]) -> str:
    return str(_value(values, ids.REASON).get("value") or "").strip()


def edit_metadata(ref: ids.Ref) -> str:
    return json.dumps({"ref": ref.encode()})


def parse_edit_metadata(private_metadata: str) -> ids.Ref:
    try:
        data = json.loads(private_metadata)
    except (TypeError, ValueError):
        raise ids.BadValue("the edit form lost track of its announcement") from None
    return ids.Ref.decode(data.get("ref") if isinstance(data, dict) else None)


def errors(fields: Mapping[str, str]) -> dict[str, str]:
    """Validation messages keyed by block id, for `response_action: errors` (150 chars max each)."""
    known = {ids.TEXT, ids.DESTINATIONS, ids.TITLE, ids.STATUS, ids.FOLLOWS}
    result: dict[str, str] = {}
    for field, message in fields.items():
        block = field if field in known else ids.TEXT
        text = f"{result[block]} · {message}" if block in result else message
        result[block] = text if len(text) <= 150 else text[:149] + "…"
    return result
