"""The approval card, in every state.

The buttons are derived from `states.allowed_events`: a card can only offer what the state
table allows, so a finished card has no buttons at all. Every piece of user text goes
through `escape` before it reaches mrkdwn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from blocks import ids
from workflow.states import HUMAN_EVENTS, State, allowed_events
from workflow.views import AnnouncementView, DeliveryView

SECTION_LIMIT = 3000  # characters of text in one section block
MAX_FINDINGS = 10

STATE_TITLES = {
    State.PENDING: "Waiting for approval",
    State.COOLING_OFF: "Approved: counting to ten",
    State.PUBLISHING: "Sending",
    State.PUBLISHED: "Published",
    State.FAILED: "Some destinations failed",
    State.REJECTED: "Rejected",
    State.CANCELLED: "Cancelled",
    State.EXPIRED: "Expired",
    State.RETRACT_PENDING: "Retraction requested",
    State.RETRACTING: "Retracting",
    State.RETRACTED: "Retracted",
}

DELIVERY_ICONS = {
    "queued": ":hourglass_flowing_sand:",
    "sending": ":outbox_tray:",
    "delivered": ":white_check_mark:",
    "failed": ":x:",
    "uncertain": ":grey_question:",
    "skipped": ":white_circle:",
    "retracting": ":wastebasket:",
    "retracted": ":wastebasket:",
    "retract_failed": ":warning:",
}


def escape(text: str) -> str:
    """Slack's control characters; after this, user text cannot mention or link anything."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def slack_time(moment: datetime, fallback_format: str = "%H:%M:%S UTC") -> str:
    """A time each reader sees in their own time zone (Slack date formatting)."""
    return f"<!date^{int(moment.timestamp())}^{{time_secs}}|{moment.strftime(fallback_format)}>"


def chunks(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Escaped text in pieces that fit a section, never cutting an entity like &amp; in two."""
    pieces, current, size = [], [], 0
    for char in text:
        escaped = escape(char)
        if size + len(escaped) > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(escaped)
        size += len(escaped)
    if current or not pieces:
        pieces.append("".join(current))
    return pieces


def quote(text: str) -> list[str]:
    """Quote every line so the draft reads as a draft, not as the app talking."""
    lines = escape(text).split("\n")
    return ["\n".join("&gt; " + line for line in lines)] if len(text) < 2500 else chunks(text)


def render(view: AnnouncementView) -> tuple[str, list[dict[str, Any]]]:
    """(notification text, blocks) for the card."""
    title = STATE_TITLES[view.state]
    fallback = f"Announcement #{view.id} by {mention(view.author_id)}: {title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"#{view.id} · {title}"[:150]}},
    ]
    if view.title:
        blocks.append(
            _section(f"*{escape(view.title)}*" + (f"  ·  status: {escape(view.status)}" if view.status else ""))
        )
    blocks.extend(_section(piece) for piece in quote(view.text))
    counts = " · ".join(f"{escape(c.destination)} {c}" + ("" if c.fits else " :warning:") for c in view.counts)
    follows = f" · follow-up to #{view.follows}" if view.follows else ""
    blocks.append(_context(f"Drafted by {mention(view.author_id)}{follows} · to {counts or 'no destinations'}"))
    if view.findings:
        blocks.append(_section(_findings(view)))
    blocks.append(_section(_status_line(view)))
    if view.deliveries:
        blocks.append(_section("\n".join(_delivery_line(d) for d in view.deliveries)))
    buttons = _buttons(view)
    if buttons:
        blocks.append({"type": "actions", "block_id": ids.CARD_ACTIONS, "elements": buttons})
    resolve = _delivery_buttons(view)
    if resolve:
        blocks.append({"type": "actions", "block_id": ids.DELIVERY_ACTIONS, "elements": resolve})
    return fallback, blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}


def _findings(view: AnnouncementView) -> str:
    lines = [
        f":warning: *{len(view.findings)} warning{'s' if len(view.findings) != 1 else ''} from the pre-flight checks*"
    ]
    for finding in view.findings[:MAX_FINDINGS]:
        line = (
            f"• *{escape(finding.excerpt)}* — {escape(finding.message)}"
            if finding.excerpt
            else f"• {escape(finding.message)}"
        )
        if finding.suggestion:
            line += f" _Try: {escape(finding.suggestion)}_"
        lines.append(line)
    if len(view.findings) > MAX_FINDINGS:
        lines.append(f"…and {len(view.findings) - MAX_FINDINGS} more.")
    return "\n".join(lines)[:SECTION_LIMIT]


def _status_line(view: AnnouncementView) -> str:
    approvers = ", ".join(mention(u) for u in view.approvals)
    if view.state is State.PENDING:
        line = f"Approvals: {len(view.approvals)}/{view.required_approvals}"
        return line + (f" ({approvers})" if approvers else " · the author cannot approve their own text")
    if view.state is State.COOLING_OFF and view.release_at:
        return (
            f":hourglass: Approved by {approvers} — sending at {slack_time(view.release_at)}. "
            "The author or an approver can still cancel."
        )
    if view.state is State.REJECTED:
        reason = f": {escape(view.reason)}" if view.reason else ""
        return f":no_entry: Rejected by {mention(view.decided_by or '')}{reason}"
    if view.state is State.CANCELLED:
        return f":octagonal_sign: Cancelled by {mention(view.decided_by or '')} — nothing was sent."
    if view.state is State.EXPIRED:
        return ":zzz: Expired without enough approvals — nothing was sent."
    if view.state is State.RETRACT_PENDING:
        reason = f": {escape(view.retract_reason)}" if view.retract_reason else ""
        return (
            f":wastebasket: {mention(view.retract_requested_by or '')} asks to delete this everywhere it was "
            f"posted{reason}. A second person approves the retraction, or keeps it published."
        )
    if view.state in (State.RETRACTING, State.RETRACTED):
        reason = f": {escape(view.retract_reason)}" if view.retract_reason else ""
        return (
            f":wastebasket: Retraction requested by {mention(view.retract_requested_by or '')}{reason} — "
            f"approved by {mention(view.decided_by or '')}. Platforms that cannot delete are marked below."
        )
    return f"Approved by {approvers or 'the approvers'}."


def _delivery_line(delivery: DeliveryView) -> str:
    icon = DELIVERY_ICONS.get(delivery.state, "")
    line = f"{icon} *{escape(delivery.destination)}* — {delivery.state}"
    if delivery.url:
        line += f" · <{delivery.url}|view post>"
    if delivery.state == "queued" and delivery.attempts and delivery.next_attempt_at:
        line += f" · retry at {slack_time(delivery.next_attempt_at)}"
    if delivery.error and delivery.state != "delivered":
        line += f"\n      {escape(delivery.error)[:300]}"
    return line


def _buttons(view: AnnouncementView) -> list[dict[str, Any]]:
    wanted = {ids.BUTTON_FOR_EVENT[e] for e in allowed_events(view.state) & HUMAN_EVENTS}
    value = ids.Ref(view.id, view.revision).encode()
    buttons = []
    for action in ids.BUTTON_ORDER:
        if action not in wanted:
            continue
        button: dict[str, Any] = {
            "type": "button",
            "action_id": action,
            "value": value,
            "text": {"type": "plain_text", "text": BUTTON_LABELS[action]},
        }
        if action in (ids.APPROVE, ids.RETRY_FAILED):
            button["style"] = "primary"
        if action in (ids.REJECT, ids.CANCEL, ids.APPROVE_RETRACT):
            button["style"] = "danger"
        if action == ids.APPROVE_RETRACT:
            button["confirm"] = _confirm(
                "Delete it everywhere?", "The posts are deleted where each platform allows it.", "Delete"
            )
        if action == ids.APPROVE and view.findings:
            n = len(view.findings)
            button["confirm"] = _confirm(
                f"Approve despite {n} warning{'s' if n != 1 else ''}?",
                "The pre-flight checks flagged this text (see the card). Approve it as it is?",
                "Approve",
            )
        if action == ids.WITHDRAW:
            button["confirm"] = _confirm("Withdraw this announcement?", "Nothing will be sent.", "Withdraw")
        buttons.append(button)
    return buttons


def _delivery_buttons(view: AnnouncementView) -> list[dict[str, Any]]:
    buttons: list[dict[str, Any]] = []
    for delivery in view.deliveries:
        if delivery.state != "uncertain":
            continue
        name = delivery.destination[:30]
        buttons.append(
            {
                "type": "button",
                "action_id": f"{ids.MARK_SENT}:{delivery.id}",
                "value": str(delivery.id),
                "text": {"type": "plain_text", "text": f"Mark {name} as sent"},
            }
        )
        send_again: dict[str, Any] = {
            "type": "button",
            "action_id": f"{ids.SEND_AGAIN}:{delivery.id}",
            "value": str(delivery.id),
            "text": {"type": "plain_text", "text": f"Send {name} again"},
        }
        send_again["confirm"] = _confirm(
            "Send again?",
            f"Check {delivery.destination} first: if the post is there, sending again will publish it twice.",
            "Send again",
        )
        buttons.append(send_again)
    return buttons[:25]


def _confirm(title: str, text: str, confirm: str) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": title[:100]},
        "text": {"type": "mrkdwn", "text": text[:300]},
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": "Not yet"},
    }


BUTTON_LABELS = {
    ids.APPROVE: "Approve",
    ids.REJECT: "Reject",
    ids.EDIT: "Edit",
    ids.WITHDRAW: "Withdraw",
    ids.CANCEL: "Cancel",
    ids.RETRY_FAILED: "Retry failed",
    ids.REQUEST_RETRACT: "Retract…",
    ids.APPROVE_RETRACT: "Approve retraction",
    ids.KEEP: "Keep published",
}
