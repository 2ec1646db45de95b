"""Crashes and concurrency with real processes: `python app.py` killed with SIGKILL at the
worst moments, and two worker processes on one PostgreSQL. Each destination must get each
post exactly once (for the webhook: exactly one webhook-id, which receivers dedupe on).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app import build
from tests.conftest import TABLES
from tests.fakes.server import Response
from tests.fakes.slack import FakeSlack
from tests.fakes.webhook import SECRET, FakeWebhookReceiver
from tests.harness import ALICE, AUTHOR, SIGNING_SECRET, config, wait_until
from tests.slack_requests import SlackRequests, checkboxes, plain_text
from workflow import store
from workflow.clock import SystemClock
from workflow.db import make_engine, transaction
from workflow.service import Draft
from workflow.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
STATUS = "C0STATUS"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppProcess:
    """`python app.py [command]` with its own environment; killed or stopped by the test."""

    def __init__(self, env: dict[str, str], *args: str, log: Path) -> None:
        self.env = env
        self.args = args
        self.log = log
        self.port = int(env["PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AppProcess:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", *self.args], cwd=ROOT, env=self.env, stdout=handle, stderr=handle
        )
        if not self.args or self.args[0] == "web":
            wait_until(self._healthy, timeout=30, what=f"app to listen on {self.port} (log: {self.log})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"app exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for user in (AUTHOR, ALICE):
            fake.add_user(user)
        yield fake


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver() as fake:
        yield fake


def environment(
    tmp_path: Path, database_url: str, slack: FakeSlack, receiver: FakeWebhookReceiver, cooldown: int
) -> dict[str, str]:
    toml = config(
        f"""
[[destination]]
name = "status-channel"
type = "slack"
channel = "{STATUS}"

[[destination]]
name = "partner-webhook"
type = "webhook"
url = "{receiver.url}/hook"
secret = "{SECRET}"

[[destination]]
name = "log"
type = "log"
path = "{tmp_path / "published.jsonl"}"
""",
        cooldown_seconds=cooldown,
    )
    (tmp_path / "announce.toml").write_text(toml)
    return {
        "PATH": os.environ.get("PATH", ""),
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "ANNOUNCE_CONFIG": str(tmp_path / "announce.toml"),
        "DATABASE_URL": database_url,
        "PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
    }


def submit_and_approve(app: AppProcess, slack: FakeSlack) -> None:
    requests = SlackRequests(SIGNING_SECRET)
    url = f"http://127.0.0.1:{app.port}/slack/events"
    values = {
        "text": {"text": plain_text("Service restored at 14:10 UTC. We will publish a review by Friday.")},
        "destinations": {"destinations": checkboxes("status-channel", "partner-webhook", "log")},
        "title": {"title": plain_text(None)},
    }
    requests.post(httpx.Client(), url, requests.view_submission(user_id=AUTHOR, callback_id="compose", values=values))
    card = wait_until(lambda: [m for m in slack.messages("C0APPROVALS") if m.get("blocks")], what="the card")[0]
    value = next(e["value"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"])
    requests.post(
        httpx.Client(),
        url,
        requests.block_action(
            user_id=ALICE,
            action_id="approve",
            value=value,
            block_id="card_actions",
            channel_id="C0APPROVALS",
            message_ts=card["ts"],
        ),
    )


def published(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "published.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_exactly_once(slack: FakeSlack, receiver: FakeWebhookReceiver, tmp_path: Path) -> None:
    assert len(slack.messages(STATUS)) == 1
    assert len(receiver.unique()) == 1
    assert len(published(tmp_path)) == 1


def test_sigkill_during_cooling_off_then_restart_sends_once(
    tmp_path: Path, database_url: str, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    env = environment(tmp_path, database_url, slack, receiver, cooldown=3)
    app = AppProcess(env, log=tmp_path / "app.log").start()
    try:
        submit_and_approve(app, slack)
        wait_until(
            lambda: any("sending at" in str(m.get("blocks")) for m in slack.messages("C0APPROVALS")), what="the count"
        )
        app.kill()
        time.sleep(3.5)  # release_at passes while nothing is running
        assert slack.messages(STATUS) == [] and receiver.requests == []
        app = AppProcess(env, log=tmp_path / "app.log").start()
        wait_until(
            lambda: len(published(tmp_path)) and receiver.unique() and slack.messages(STATUS),
            timeout=20,
            what="delivery",
        )
        time.sleep(1)  # room for a duplicate to show up, if there were one
        assert_exactly_once(slack, receiver, tmp_path)
    finally:
        app.stop()


def test_sigkill_during_publishing_then_restart_sends_once(
    tmp_path: Path, database_url: str, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    env = environment(tmp_path, database_url, slack, receiver, cooldown=1)
    # Both platforms receive the post and then never answer: the app dies not knowing.
    receiver.script(Response(200, {"ok": True}, delay=60))
    app = AppProcess(env, log=tmp_path / "app.log").start()
    try:
        submit_and_approve(app, slack)
        slack.hang("chat.postMessage", 60, times=1)
        wait_until(lambda: receiver.requests and slack.messages(STATUS), timeout=20, what="both sends to be in flight")
        app.kill()
        assert len(receiver.requests) == 1 and len(slack.messages(STATUS)) == 1
        app = AppProcess(env, log=tmp_path / "app.log").start()
        # The dead worker's lease runs out (15 s); the new one takes over: it looks in Slack's
        # history for the message's metadata, and re-sends the webhook with the same id.
        wait_until(lambda: len(receiver.requests) >= 2, timeout=40, what="the webhook to be re-sent")
        wait_until(lambda: len(published(tmp_path)) == 1, timeout=10, what="the log")
        wait_until(lambda: slack.calls("conversations.history"), timeout=10, what="the Slack lookup")
        time.sleep(1)
        assert_exactly_once(slack, receiver, tmp_path)
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    finally:
        app.stop()


def test_two_workers_on_postgres_never_send_twice(
    tmp_path: Path, postgres_database: str, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    """Several machines share one database only on PostgreSQL (SQLite runs on one machine)."""
    database_url = postgres_database
    with make_engine(database_url).begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine = make_engine(database_url)
    env = environment(tmp_path, database_url, slack, receiver, cooldown=0)
    # Fifty announcements, approved and due: the workers race to claim their deliveries.
    # (The in-process app only seeds the database.)
    runtime = build(load_settings(env), clock=SystemClock(), engine=engine)
    now = datetime.now(UTC)
    for i in range(50):
        outcome = runtime.service.submit(
            Draft(text=f"Update {i}: all systems normal.", destinations=("partner-webhook", "log")),
            author_id=AUTHOR,
            now=now,
        )
        runtime.service.approve(announcement_id=outcome.announcement_id, revision=1, user_id=ALICE, now=now)
    workers = [
        AppProcess({**env, "PORT": str(free_port())}, "worker", log=tmp_path / f"worker{i}.log").start()
        for i in range(2)
    ]
    try:
        wait_until(
            lambda: len(published(tmp_path)) == 50 and len(receiver.unique()) == 50,
            timeout=60,
            what="all 100 deliveries",
        )
        time.sleep(1)
        assert len(receiver.requests) == 50, "a webhook was sent twice"
        assert len(published(tmp_path)) == 50
        with transaction(engine) as session:
            states = {a.state for a in store.list_announcements(session=session, limit=100)}
        assert states == {"published"}
    finally:
        for worker in workers:
            worker.stop()
        engine.dispose()
    logs = (tmp_path / "worker0.log").read_text() + (tmp_path / "worker1.log").read_text()
    assert "claim lost" not in logs
