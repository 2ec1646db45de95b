"""The app under test: built by `app.build`, served by waitress on loopback exactly as
`python app.py` serves it, talking to a fake Slack and fake destinations over real HTTP.

Time: the app's clock is a ManualClock the test moves; Slack's signatures use real time,
as Bolt checks them against the wall clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import waitress
from sqlalchemy import Engine
from sqlmodel import Session

import app as app_module
from tests.fakes.slack import FakeSlack
from tests.slack_requests import SlackRequests, checkboxes, plain_text
from workflow import store
from workflow.clock import ManualClock
from workflow.settings import load_settings

SIGNING_SECRET = "test-signing-secret"
APPROVAL_CHANNEL = "C0APPROVALS"
AUTHOR, ALICE, BOB, CAROL, MALLORY = "U0AUTHOR", "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"


def wait_until(predicate: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def config(destinations: str, **approval: Any) -> str:
    values = {
        "channel": APPROVAL_CHANNEL,
        "approvers": [],
        "required_approvals": 1,
        "cooldown_seconds": 10,
        "expire_after_hours": 24,
        **approval,
    }
    lines = ["[approval]"]
    for key, value in values.items():
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n\n" + destinations


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


class AppUnderTest:
    def __init__(
        self,
        *,
        tmp_path: Path,
        engine: Engine,
        slack: FakeSlack,
        toml: str,
        env: dict[str, str] | None = None,
        read_timeout: float = 15.0,
    ) -> None:
        path = tmp_path / "announce.toml"
        path.write_text(toml)
        self.env = {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "ANNOUNCE_CONFIG": str(path),
            **(env or {}),
        }
        self.settings = load_settings(self.env)
        self.slack = slack
        self.engine = engine
        self.clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        self.runtime = app_module.build(
            self.settings,
            clock=self.clock,
            engine=engine,
            http_timeout=httpx.Timeout(connect=2.0, read=read_timeout, write=5.0, pool=2.0),
        )
        self.worker = self.runtime.worker
        self.server = waitress.create_server(self.runtime.wsgi, host="127.0.0.1", port=0, threads=16)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.requests = SlackRequests(SIGNING_SECRET, response_url_base=slack.url)

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            if not self._closing:  # closing the listening socket under select() is how it stops
                raise

    def close(self) -> None:
        self._closing = True
        self.http.close()
        self.server.close()
        self.worker.drain(timeout=30)

    # Sending what Slack sends ---------------------------------------------------------------

    def post(self, signed: tuple[bytes, dict[str, str]]) -> httpx.Response:
        body, headers = signed
        return self.http.post("/slack/events", content=body, headers=headers)

    def compose(self, user: str, text: str, destinations: list[str], *, title: str | None = None) -> httpx.Response:
        values = {
            "text": {"text": plain_text(text)},
            "destinations": {"destinations": checkboxes(*destinations)},
            "title": {"title": plain_text(title)},
        }
        return self.post(self.requests.view_submission(user_id=user, callback_id="compose", values=values))

    def submit(self, user: str, text: str, destinations: list[str], **kw: Any) -> int:
        """Submit a draft and wait for its card; return the announcement id."""
        before = len(self.cards())
        response = self.compose(user, text, destinations, **kw)
        assert response.status_code == 200 and response.content in (b"", b"{}"), response.text
        wait_until(lambda: len(self.cards()) > before, what="the card")
        return self.latest_id()

    def latest_id(self) -> int:
        with Session(self.engine) as session:
            rows = store.list_announcements(session=session, limit=1)
        return rows[0].id or 0

    def cards(self) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(APPROVAL_CHANNEL) if m.get("blocks")]

    def card(self, announcement_id: int) -> dict[str, Any]:
        for message in self.cards():
            header = message["blocks"][0]["text"]["text"]
            if header.startswith(f"#{announcement_id} "):
                return message
        raise AssertionError(f"no card for #{announcement_id}")

    def buttons(self, announcement_id: int) -> dict[str, dict[str, Any]]:
        card = self.card(announcement_id)
        return {e["action_id"]: e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]}

    def card_text(self, announcement_id: int) -> str:
        return str(self.card(announcement_id)["blocks"])

    def click(self, user: str, announcement_id: int, action: str, *, value: str | None = None) -> httpx.Response:
        card = self.card(announcement_id)
        if value is None:
            value = self.buttons(announcement_id)[action]["value"]
        return self.post(
            self.requests.block_action(
                user_id=user,
                action_id=action,
                value=value,
                block_id="card_actions",
                channel_id=APPROVAL_CHANNEL,
                message_ts=card["ts"],
                message_blocks=card["blocks"],
            )
        )

    def state(self, announcement_id: int) -> str:
        with Session(self.engine) as session:
            a = store.get_announcement(session=session, announcement_id=announcement_id)
        assert a is not None
        return a.state

    def wait_state(self, announcement_id: int, state: str, timeout: float = 10.0) -> None:
        wait_until(lambda: self.state(announcement_id) == state, timeout=timeout, what=f"state {state}")

    def wait_card(self, announcement_id: int, needle: str, timeout: float = 10.0) -> None:
        wait_until(lambda: needle in self.card_text(announcement_id), timeout=timeout, what=f"card to say {needle!r}")

    def ephemeral_to(self, user: str, needle: str, timeout: float = 10.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for message in self.slack.ephemerals(user):
                if needle in str(message.get("text", "")):
                    return message
            return None

        return wait_until(find, timeout=timeout, what=f"ephemeral to {user} saying {needle!r}")

    def tick(self, seconds: float = 0.0) -> None:
        """Move the clock, run one worker tick and wait for the sends it started."""
        if seconds:
            self.clock.advance(seconds)
        self.worker.run_once()
        self.worker.drain(timeout=30)
