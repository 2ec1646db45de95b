"""The Slack edge: the only module that imports slack_bolt.

Each handler acks, calls one use case and renders one card. Buttons ack at once and do their
work as Bolt lazy listeners; modal submissions validate before they ack, because their answer
carries the field errors. Refusals and damaged payloads
are turned into words for the person in one place (`_answer`). Bolt verifies every request's
signature and age before any handler runs; an unsigned or stale request gets a 401 and
touches nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from blocks import ids, modals
from workflow.audit_export import AuditExports
from workflow.clock import Clock
from workflow.errors import InvalidDraft, NotAllowed, Refusal
from workflow.service import Announcements, Draft
from workflow.settings import Settings
from workflow.slack_ui import SlackUI

log = logging.getLogger(__name__)

HELP = (
    "*/announce* opens a draft. */announce some text* opens it with the text filled in.\n"
    "A second person approves it on the card in the approval channel; the app then counts to ten "
    "(anyone who approved, or the author, can still Cancel) and posts it to the destinations you chose.\n"
    "*/announce audit [since] [until] [csv|jsonl]* sends you the audit log as a file in a DM "
    "(approvers and audit readers; dates or ages like 7d; default the last 30 days, CSV).\n"
    "*/announce help* shows this."
)

# Card buttons are acked in the request thread and their work runs as a Bolt "lazy" listener on
# this pool. Acks therefore never wait for a busy pool thread (with Bolt's default, an ack needs a
# free pool thread first, so a burst of clicks queues its acks behind the previous clicks' work).
# Each piece of work holds a database connection for one short transaction and makes two or three
# Slack calls; the pool is sized to the web server's threads rather than Bolt's default of 5.
LISTENER_THREADS = 4


def create_app(settings: Settings, *, client: WebClient) -> App:
    return App(
        client=client,
        signing_secret=settings.signing_secret or None,
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="listener"),
        # The token was checked by `python app.py check` / at start-up via auth.test already.
        token_verification_enabled=True,
    )


def wsgi_handler(app: App) -> Callable[..., Any]:
    return SlackRequestHandler(app, path="/slack/events")


def start_socket_mode(app: App, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: PLC0415 - optional transport

    SocketModeHandler(app, app_token).start()


def _values(view: dict[str, Any]) -> dict[str, Any]:
    """The modal's input values; an odd payload yields none, which validation then names."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    return values if isinstance(values, dict) else {}


def _draft(submitted: modals.Submitted) -> Draft:
    return Draft(
        text=submitted.text,
        destinations=submitted.destinations,
        title=submitted.title,
        status=submitted.status,
        follows=submitted.follows,
    )


def register(
    app: App, *, service: Announcements, ui: SlackUI, clock: Clock, audit_exports: AuditExports | None = None
) -> None:
    choices = [
        modals.DestinationChoice(name=name, type=destination.type, default=service.destination_settings[name].default)
        for name, destination in service.destinations.items()
    ]

    def _answer(exc: Exception, *, channel: str | None, user: str) -> None:
        """The one place where errors become words for the person who clicked."""
        if isinstance(exc, Refusal):
            text = str(exc)
        elif isinstance(exc, ids.BadValue):
            text = "That button's data is damaged, so nothing was done. Use the buttons on the latest card."
        else:
            log.exception("handler failed")
            text = "Something went wrong on our side and was logged; nothing was changed. Please try again."
        ui.ephemeral(channel=channel, user=user, text=text)

    def _card_action(body: dict[str, Any], run: Callable[[ids.Ref, str], Any]) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        try:
            ref = ids.Ref.decode(body["actions"][0].get("value"))
            outcome = run(ref, user)
        except Exception as exc:  # rendered for the person, never silently dropped
            _answer(exc, channel=channel, user=user)
            return
        ui.refresh(outcome.announcement_id)
        ui.ephemeral(channel=channel, user=user, text=outcome.message)
        for recipient, text in outcome.notify:
            ui.ephemeral(channel=None, user=recipient, text=text)

    # /announce ---------------------------------------------------------------------------

    @app.command("/announce")
    def announce(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        text = (command.get("text") or "").strip()
        if text.lower() in {"help", "-h", "--help", "?"}:
            ack(text=HELP)
            return
        words = text.split()
        if words and words[0].lower() == "audit":
            # Answered in the ack (ephemeral); the export itself runs on audit_exports' own pool.
            if audit_exports is None:
                ack(text="Audit exports are not set up in this app.")
                return
            ack(text=audit_exports.request(user_id=command["user_id"], words=words[1:], respond=respond))
            return
        ack()
        # Open first: the trigger id dies three seconds after the click.
        view = modals.compose(choices, text=text, follow_ups=service.follow_up_choices())
        client.views_open(trigger_id=command["trigger_id"], view=view)

    @app.view(ids.COMPOSE)
    def compose_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        draft = _draft(modals.parse_compose(_values(view)))
        try:
            outcome = service.submit(draft, author_id=user, now=clock.now())
        except InvalidDraft as exc:
            ack(response_action="errors", errors=modals.errors(exc.fields))
            return
        except Exception:  # keep the modal open: closing it would lose the draft
            log.exception("submit failed")
            ack(response_action="errors", errors={ids.TEXT: "Could not save this just now (logged). Please try again."})
            return
        ack()
        ui.refresh(outcome.announcement_id)

    # Card buttons ------------------------------------------------------------------------

    def ack_now(ack: Ack) -> None:
        ack()

    def approve(body: dict[str, Any]) -> None:
        _card_action(
            body,
            lambda ref, user: service.approve(
                announcement_id=ref.announcement_id, revision=ref.revision, user_id=user, now=clock.now()
            ),
        )

    def withdraw(body: dict[str, Any]) -> None:
        _card_action(
            body,
            lambda ref, user: service.withdraw(
                announcement_id=ref.announcement_id, revision=ref.revision, user_id=user, now=clock.now()
            ),
        )

    def cancel(body: dict[str, Any]) -> None:
        _card_action(
            body, lambda ref, user: service.cancel(announcement_id=ref.announcement_id, user_id=user, now=clock.now())
        )

    def retry_failed(body: dict[str, Any]) -> None:
        _card_action(
            body,
            lambda ref, user: service.retry_failed(announcement_id=ref.announcement_id, user_id=user, now=clock.now()),
        )

    def resolve(body: dict[str, Any]) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        action = body["actions"][0]
        try:
            outcome = service.resolve_uncertain(
                delivery_id=ids.decode_delivery(action.get("value")),
                user_id=user,
                sent=action["action_id"].startswith(ids.MARK_SENT),
                now=clock.now(),
            )
        except Exception as exc:  # rendered for the person
            _answer(exc, channel=channel, user=user)
            return
        ui.refresh(outcome.announcement_id)
        ui.ephemeral(channel=channel, user=user, text=outcome.message)

    def reject_clicked(body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        try:
            ref = ids.Ref.decode(body["actions"][0].get("value"))
            # Ask before opening the modal, so nobody types a reason only to be refused.
            if not service.is_approver(user):
                raise NotAllowed(f"Only the approvers in announce.toml may reject: {service.approver_names()}.")
            client.views_open(trigger_id=body["trigger_id"], view=modals.reject(ref))
        except Exception as exc:  # rendered for the person
            _answer(exc, channel=channel, user=user)

    def reject_submitted(body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        try:
            ref = ids.Ref.decode(view.get("private_metadata"))
            outcome = service.reject(
                announcement_id=ref.announcement_id,
                revision=ref.revision,
                user_id=user,
                reason=modals.parse_reason(_values(view)),
                now=clock.now(),
            )
        except Exception as exc:  # rendered for the person (as a DM: a modal has no channel)
            _answer(exc, channel=None, user=user)
            return
        ui.refresh(outcome.announcement_id)
        for recipient, text in outcome.notify:
            ui.ephemeral(channel=None, user=recipient, text=text)

    def edit_clicked(body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        try:
            ref = ids.Ref.decode(body["actions"][0].get("value"))
            a = service.may_edit(announcement_id=ref.announcement_id, user_id=user)
            current = ids.Ref(ref.announcement_id, a.revision)
            view = service.view(announcement_id=ref.announcement_id)
            client.views_open(
                trigger_id=body["trigger_id"],
                view=modals.compose(
                    choices,
                    callback_id=ids.EDIT_VIEW,
                    text=view.text,
                    title=view.title,
                    status=view.status,
                    selected=view.destinations,
                    private_metadata=modals.edit_metadata(current),
                    counts=view.counts,
                    follow_ups=[c for c in service.follow_up_choices() if c[0] != ref.announcement_id],
                    follows=view.follows,
                ),
            )
        except Exception as exc:  # rendered for the person
            _answer(exc, channel=channel, user=user)

    @app.view(ids.EDIT_VIEW)
    def edit_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        draft = _draft(modals.parse_compose(_values(view)))
        try:
            ref = modals.parse_edit_metadata(view.get("private_metadata") or "")
            outcome = service.edit(
                draft, announcement_id=ref.announcement_id, revision=ref.revision, user_id=user, now=clock.now()
            )
        except InvalidDraft as exc:
            ack(response_action="errors", errors=modals.errors(exc.fields))
            return
        except (Refusal, ids.BadValue) as exc:
            # Keep the modal open with the reason: closing it would throw away the edit.
            ack(response_action="errors", errors=modals.errors({"text": str(exc)}))
            return
        ack()
        ui.refresh(outcome.announcement_id)

    # App Home ----------------------------------------------------------------------------

    def approve_retract(body: dict[str, Any]) -> None:
        _card_action(
            body,
            lambda ref, user: service.approve_retract(
                announcement_id=ref.announcement_id, user_id=user, now=clock.now()
            ),
        )

    def keep(body: dict[str, Any]) -> None:
        _card_action(
            body, lambda ref, user: service.keep(announcement_id=ref.announcement_id, user_id=user, now=clock.now())
        )

    def retract_clicked(body: dict[str, Any], client: WebClient) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id")
        try:
            ref = ids.Ref.decode(body["actions"][0].get("value"))
            client.views_open(trigger_id=body["trigger_id"], view=modals.retract(ref))
        except Exception as exc:  # rendered for the person
            _answer(exc, channel=channel, user=user)

    @app.view(ids.RETRACT_VIEW)
    def retract_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        try:
            ref = ids.Ref.decode(view.get("private_metadata"))
            outcome = service.request_retract(
                announcement_id=ref.announcement_id,
                user_id=user,
                reason=modals.parse_reason(_values(view)),
                now=clock.now(),
            )
        except (Refusal, ids.BadValue) as exc:
            # The modal stays open with the reason, so the person can read it and close it.
            ack(response_action="errors", errors={ids.REASON: str(exc)[:150]})
            return
        ack()
        ui.refresh(outcome.announcement_id)

    def draft_changed(body: dict[str, Any], client: WebClient) -> None:
        """Typing in the modal, or ticking a destination: show each destination's count."""
        view = body["view"]
        draft = _draft(modals.parse_compose(_values(view)))
        counts = service.counts(draft) if draft.text else []
        updated = modals.compose(
            choices,
            callback_id=view.get("callback_id") or ids.COMPOSE,
            text=draft.text,
            title=draft.title,
            status=draft.status,
            selected=draft.destinations,
            private_metadata=view.get("private_metadata") or "",
            counts=counts,
            follow_ups=service.follow_up_choices(),
            follows=draft.follows,
        )
        try:
            # The hash makes Slack refuse the update if the person typed on meanwhile; the next
            # keystroke's event brings the newer text.
            client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)
        except SlackApiError as exc:
            if exc.response.get("error") != "hash_conflict":
                log.warning("could not update the counts: %s", exc.response.get("error"))

    def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab") == "home":
            ui.publish_home(user=event["user"])

    # Ack in the request thread, work on the pool (see LISTENER_THREADS).
    app.action(ids.APPROVE)(ack=ack_now, lazy=[approve])
    app.action(ids.WITHDRAW)(ack=ack_now, lazy=[withdraw])
    app.action(ids.CANCEL)(ack=ack_now, lazy=[cancel])
    app.action(ids.RETRY_FAILED)(ack=ack_now, lazy=[retry_failed])
    app.action(re.compile(rf"^({ids.MARK_SENT}|{ids.SEND_AGAIN}):\d+$"))(ack=ack_now, lazy=[resolve])
    app.action(ids.REJECT)(ack=ack_now, lazy=[reject_clicked])
    app.action(ids.EDIT)(ack=ack_now, lazy=[edit_clicked])
    app.view(ids.REJECT_VIEW)(ack=ack_now, lazy=[reject_submitted])
    app.event("app_home_opened")(ack=ack_now, lazy=[home_opened])
    app.action(ids.REQUEST_RETRACT)(ack=ack_now, lazy=[retract_clicked])
    app.action(ids.APPROVE_RETRACT)(ack=ack_now, lazy=[approve_retract])
    app.action(ids.KEEP)(ack=ack_now, lazy=[keep])
    app.action(ids.TEXT)(ack=ack_now, lazy=[draft_changed])
    app.action(ids.DESTINATIONS)(ack=ack_now, lazy=[draft_changed])

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a Slack listener: %s", type(error).__name__, exc_info=error)
