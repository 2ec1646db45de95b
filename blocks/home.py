"""The App Home tab: what waits for approval, what went out recently, how to start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.card import STATE_TITLES, escape, mention
from workflow.views import AnnouncementView

PREVIEW = 120


def _line(view: AnnouncementView) -> str:
    text = view.text if len(view.text) <= PREVIEW else view.text[: PREVIEW - 1] + "…"
    return f"*#{view.id}* · {STATE_TITLES[view.state]} · by {mention(view.author_id)}\n{escape(text)}"


def render(*, pending: Sequence[AnnouncementView], recent: Sequence[AnnouncementView]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Count to Ten"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Type `/announce` to draft a public update. A second person approves it, the app counts "
                "to ten, then posts it everywhere you chose. `/announce help` for more.",
            },
        },
        {"type": "header", "text": {"type": "plain_text", "text": f"Waiting for approval ({len(pending)})"}},
    ]
    blocks.extend({"type": "section", "text": {"type": "mrkdwn", "text": _line(v)}} for v in pending[:15])
    if not pending:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Nothing is waiting."}]})
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Recent"}})
    blocks.extend({"type": "section", "text": {"type": "mrkdwn", "text": _line(v)}} for v in recent[:15])
    if not recent:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "No announcements yet."}]})
    return {"type": "home", "blocks": blocks[:100]}
