"""Builders for the signed HTTP requests Slack sends to the app's ``POST /slack/events``.

Each builder returns ``(body, headers)``, ready for ``httpx.Client.post(url, content=body,
headers=headers)`` (or `SlackRequests.post`). Shapes follow Slack's reference pages:

- signing: docs.slack.dev/authentication/verifying-requests-from-slack — ``X-Slack-Request-Timestamp``
  (Unix seconds) and ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>" keyed
  with the signing secret>``; receivers reject timestamps more than five minutes away.
- slash commands: docs.slack.dev/interactivity/implementing-slash-commands — a form-encoded body
  (token, team_id, team_domain, channel_id, channel_name, user_id, user_name, command, text,
  api_app_id, is_enterprise_install, response_url, trigger_id).
- interactivity: docs.slack.dev/reference/interaction-payloads/block_actions-payload and
  .../view-interactions-payload — a form-encoded body with one field, ``payload``, holding JSON.
- events: docs.slack.dev/apis/events-api — a JSON ``event_callback`` envelope (and
  ``url_verification`` with a ``challenge``); redeliveries carry ``X-Slack-Retry-Num`` and
  ``X-Slack-Retry-Reason``.
- ``state.values`` entries: docs.slack.dev/reference/interaction-payloads/view-interactions-payload
  (``block_id -> action_id -> {"type", "value" | "selected_option" | "selected_options"}``).

Trigger ids start with their issue time in milliseconds, which lets tests/fakes/slack.py expire them
after three seconds like Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx

SignedRequest = tuple[bytes, dict[str, str]]
StateValue = dict[str, Any]

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def _option(value: str, label: str | None = None) -> dict[str, Any]:
    return {
        "text": {"type": "plain_text", "text": label if label is not None else value, "emoji": True},
        "value": value,
    }


def plain_text(value: str | None) -> StateValue:
    """State of a ``plain_text_input`` (``value`` is None when the optional field was left empty)."""
    return {"type": "plain_text_input", "value": value}


def checkboxes(*values: str) -> StateValue:
    """State of a ``checkboxes`` element with these option values ticked (labels = values)."""
    return {"type": "checkboxes", "selected_options": [_option(v) for v in values]}


def multi_static_select(*values: str) -> StateValue:
    """State of a ``multi_static_select`` with these option values chosen (labels = values)."""
    return {"type": "multi_static_select", "selected_options": [_option(v) for v in values]}


def static_select(value: str | None) -> StateValue:
    """State of a ``static_select``; None means nothing chosen (Slack sends ``selected_option: null``)."""
    return {"type": "static_select", "selected_option": _option(value) if value is not None else None}


def radio_buttons(value: str | None) -> StateValue:
    """State of a ``radio_buttons`` group; None means nothing chosen."""
    return {"type": "radio_buttons", "selected_option": _option(value) if value is not None else None}


class SlackRequests:
    """Signed Slack → app requests for one app installation (see the module docstring)."""

    plain_text = staticmethod(plain_text)
    checkboxes = staticmethod(checkboxes)
    multi_static_select = staticmethod(multi_static_select)
    static_select = staticmethod(static_select)
    radio_buttons = staticmethod(radio_buttons)

    def __init__(
        self,
        signing_secret: str,
        *,
        team_id: str = "T0TEAM",
        team_domain: str = "example",
        api_app_id: str = "A0APP",
        bot_id: str = "B0BOT",
        bot_user_id: str = "U0BOT",
        response_url_base: str | None = None,
        verification_token: str = "legacy-verification-token",
    ) -> None:
        """`response_url_base` replaces ``https://hooks.slack.com`` in response URLs (e.g. ``fake.url``
        so FakeSlack records what the app sends to them)."""
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.bot_id = bot_id
        self.bot_user_id = bot_user_id
        self.response_url_base = (response_url_base or "https://hooks.slack.com").rstrip("/")
        self.verification_token = verification_token
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._last_action_us = 0

    # ------------------------------------------------------------------ signing

    def sign(self, body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        """Slack's v0 signature headers for `body` (now, unless `timestamp` is given)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = (self.signing_secret if secret is None else secret).encode()
        digest = hmac.new(key, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    @staticmethod
    def post(client: httpx.Client, url: str, body_headers: SignedRequest) -> httpx.Response:
        """POST a built request: ``SlackRequests.post(client, app_url + "/slack/events", req.slash_command(...))``."""
        body, headers = body_headers
        return client.post(url, content=body, headers=headers)

    # ------------------------------------------------------------------ ids

    def trigger_id(self) -> str:
        """A fresh trigger id: ``<issued at, ms>.<n>.<hex>`` (Slack's look: ``13345224609.738474920.8088…``)."""
        return f"{int(time.time() * 1000)}.{next(self._counter)}.{secrets.token_hex(16)}"

    def _action_ts(self) -> str:
        with self._lock:
            self._last_action_us = max(int(time.time() * 1_000_000), self._last_action_us + 1)
            seconds, micros = divmod(self._last_action_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _response_url(self, kind: str) -> str:
        hook_id = f"{next(self._counter)}{secrets.randbelow(10**9)}"
        return f"{self.response_url_base}/{kind}/{self.team_id}/{hook_id}/{secrets.token_urlsafe(18)}"

    def _user(self, user_id: str, user_name: str | None) -> dict[str, str]:
        name = user_name or user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    # ------------------------------------------------------------------ bodies

    def _form(self, fields: dict[str, str], *, timestamp: int | None, secret: str | None) -> SignedRequest:
        body = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
        return body, headers | self.sign(body, timestamp=timestamp, secret=secret)

    def _payload(self, payload: dict[str, Any], *, timestamp: int | None, secret: str | None) -> SignedRequest:
        return self._form({"payload": json.dumps(payload, separators=(",", ":"))}, timestamp=timestamp, secret=secret)

    def _json(
        self,
        envelope: dict[str, Any],
        *,
        timestamp: int | None,
        secret: str | None,
        extra: dict[str, str] | None = None,
    ) -> SignedRequest:
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(extra or {})}
        return body, headers | self.sign(body, timestamp=timestamp, secret=secret)

    # ------------------------------------------------------------------ slash commands

    def slash_command(
        self,
        *,
        user_id: str,
        text: str = "",
        command: str = "/announce",
        channel_id: str = "C0ORIGIN",
        channel_name: str = "general",
        user_name: str | None = None,
        trigger_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """A slash command invocation, form-encoded in the field order of Slack's documented example."""
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url("commands"),
            "trigger_id": trigger_id or self.trigger_id(),
        }
        return self._form(fields, timestamp=timestamp, secret=secret)

    # ------------------------------------------------------------------ block_actions

    def block_action(
        self,
        *,
        user_id: str,
        action_id: str,
        value: str,
        block_id: str = "actions",
        channel_id: str,
        message_ts: str,
        message_blocks: list[dict[str, Any]] | None = None,
        message_text: str = "",
        trigger_id: str | None = None,
        channel_name: str = "general",
        is_ephemeral: bool = False,
        user_name: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """A button click on a message (``block_actions`` with a ``message`` container).

        `message_blocks` is the message as Slack shows it back (default: one actions block holding the
        clicked button). An ephemeral message comes without ``message``, as Slack sends it.
        """
        blocks = message_blocks if message_blocks is not None else [_actions_block(block_id, action_id, value)]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id, user_name),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            },
            "trigger_id": trigger_id or self.trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_name},
            "state": {"values": {}},
            "response_url": self._response_url("actions"),
            "actions": [self._button_action(blocks, block_id, action_id, value)],
        }
        if not is_ephemeral:
            payload["message"] = {
                "type": "message",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "app_id": self.api_app_id,
                "team": self.team_id,
                "text": message_text,
                "ts": message_ts,
                "blocks": blocks,
            }
        return self._payload(payload, timestamp=timestamp, secret=secret)

    def view_block_action(
        self,
        *,
        user_id: str,
        action_id: str,
        value: str,
        view_id: str,
        block_id: str = "actions",
        view_type: str = "home",
        callback_id: str = "",
        private_metadata: str = "",
        view_blocks: list[dict[str, Any]] | None = None,
        values: dict[str, dict[str, StateValue]] | None = None,
        trigger_id: str | None = None,
        user_name: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """A button click inside a view (App Home or a modal): ``block_actions`` with a ``view`` container."""
        blocks = view_blocks if view_blocks is not None else [_actions_block(block_id, action_id, value)]
        view = self._view(
            view_id=view_id,
            view_type=view_type,
            callback_id=callback_id,
            private_metadata=private_metadata,
            values=values or {},
            blocks=blocks,
            hash_=None,
            title="Home" if view_type == "home" else "Modal",
        )
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id, user_name),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": trigger_id or self.trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": view,
            "actions": [self._button_action(blocks, block_id, action_id, value)],
        }
        return self._payload(payload, timestamp=timestamp, secret=secret)

    def _button_action(self, blocks: list[dict[str, Any]], block_id: str, action_id: str, value: str) -> dict[str, Any]:
        label: dict[str, Any] = {"type": "plain_text", "text": value, "emoji": True}
        for block in blocks:
            for element in block.get("elements", []) if block.get("block_id") == block_id else []:
                if element.get("action_id") == action_id and isinstance(element.get("text"), dict):
                    label = element["text"]
        return {
            "action_id": action_id,
            "block_id": block_id,
            "text": label,
            "value": value,
            "type": "button",
            "action_ts": self._action_ts(),
        }

    # ------------------------------------------------------------------ view_submission

    def view_submission(
        self,
        *,
        user_id: str,
        callback_id: str,
        values: dict[str, dict[str, StateValue]],
        private_metadata: str = "",
        view_id: str | None = None,
        hash_: str | None = None,
        title: str = "Announce",
        blocks: list[dict[str, Any]] | None = None,
        trigger_id: str | None = None,
        user_name: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """A modal submitted: ``view_submission`` whose ``view.state.values`` is `values`."""
        view = self._view(
            view_id=view_id or f"V0{next(self._counter):08d}",
            view_type="modal",
            callback_id=callback_id,
            private_metadata=private_metadata,
            values=values,
            blocks=blocks or [],
            hash_=hash_,
            title=title,
        )
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user(user_id, user_name),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id or self.trigger_id(),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._payload(payload, timestamp=timestamp, secret=secret)

    def _view(
        self,
        *,
        view_id: str,
        view_type: str,
        callback_id: str,
        private_metadata: str,
        values: dict[str, dict[str, StateValue]],
        blocks: list[dict[str, Any]],
        hash_: str | None,
        title: str,
    ) -> dict[str, Any]:
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view_type,
            "blocks": blocks,
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": hash_ or f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True} if view_type == "modal" else None,
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True} if view_type == "modal" else None,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.api_app_id,
            "external_id": "",
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    # ------------------------------------------------------------------ Events API

    def event(
        self,
        *,
        event: dict[str, Any],
        event_id: str | None = None,
        event_time: int | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """An Events API ``event_callback`` envelope around `event`. With `retry_num`, the request is a
        redelivery (same `event_id` as the original) carrying ``X-Slack-Retry-Num``/``-Reason``."""
        now = int(time.time())
        envelope = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev0{next(self._counter):08d}",
            "event_time": event_time or now,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }
        extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason} if retry_num else None
        return self._json(envelope, timestamp=timestamp, secret=secret, extra=extra)

    def app_home_opened(
        self,
        *,
        user_id: str,
        channel_id: str = "D0HOME",
        tab: str = "home",
        view: dict[str, Any] | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> SignedRequest:
        """docs.slack.dev/reference/events/app_home_opened: ``view`` is present only once a Home was published."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": channel_id,
            "tab": tab,
            "event_ts": self._action_ts(),
        }
        if view is not None:
            event["view"] = view
        return self.event(event=event, timestamp=timestamp, secret=secret)

    def url_verification(
        self, challenge: str, *, timestamp: int | None = None, secret: str | None = None
    ) -> SignedRequest:
        """The handshake Slack sends when the Request URL is saved; the app must echo `challenge`."""
        envelope = {"token": self.verification_token, "challenge": challenge, "type": "url_verification"}
        return self._json(envelope, timestamp=timestamp, secret=secret)


def _actions_block(block_id: str, action_id: str, value: str) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": value, "emoji": True},
        "value": value,
    }
    return {"type": "actions", "block_id": block_id, "elements": [button]}
