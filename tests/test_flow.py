"""The approval loop end to end: signed Slack requests over real HTTP into the app served by
waitress, a fake Slack Web API and a Standard Webhooks receiver on loopback, a real database
(SQLite file and PostgreSQL). Assertions are on what reached Slack and the destinations.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from tests.fakes.server import Response
from tests.fakes.slack import FakeSlack
from tests.fakes.webhook import SECRET, FakeWebhookReceiver
from tests.harness import (
    ALICE,
    APPROVAL_CHANNEL,
    AUTHOR,
    BOB,
    CAROL,
    MALLORY,
    AppUnderTest,
    config,
    wait_until,
)
from workflow import audit
from workflow.models import Announcement, AuditEvent

STATUS_CHANNEL = "C0STATUS"


def destinations(webhook_url: str, log_path: Path) -> str:
    return f"""
[[destination]]
name = "status-channel"
type = "slack"
channel = "{STATUS_CHANNEL}"
default = true

[[destination]]
name = "partner-webhook"
type = "webhook"
url = "{webhook_url}/hook"
secret = "{SECRET}"

[[destination]]
name = "log"
type = "log"
path = "{log_path}"
"""


ALL = ["status-channel", "partner-webhook", "log"]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(usergroups={"S0APPROVERS": [CAROL]}) as fake:
        for user in (AUTHOR, ALICE, BOB, CAROL, MALLORY):
            fake.add_user(user, display_name=user.lower())
        yield fake


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver() as fake:
        yield fake


def make_app(
    tmp_path: Path, engine: Engine, slack: FakeSlack, receiver: FakeWebhookReceiver, **approval: object
) -> AppUnderTest:
    return AppUnderTest(
        tmp_path=tmp_path,
        engine=engine,
        slack=slack,
        toml=config(destinations(receiver.url, tmp_path / "published.jsonl"), **approval),
    )


@pytest.fixture
def app(tmp_path: Path, engine: Engine, slack: FakeSlack, receiver: FakeWebhookReceiver) -> Iterator[AppUnderTest]:
    running = make_app(tmp_path, engine, slack, receiver)
    yield running
    running.close()


def log_lines(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "published.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_draft_approve_count_to_ten_publish(
    app: AppUnderTest, slack: FakeSlack, receiver: FakeWebhookReceiver, tmp_path: Path
) -> None:
    text = "Logins are failing for some EU customers. We are rolling back the 14:02 deploy. Next update by 14:30 UTC."
    aid = app.submit(AUTHOR, text, ALL)

    card = app.card(aid)
    assert set(app.buttons(aid)) == {"approve", "reject", "edit", "withdraw"}
    assert "status-channel 1" in app.card_text(aid) and "/4000" in app.card_text(aid)

    assert app.click(ALICE, aid, "approve").status_code == 200
    app.wait_card(aid, "Approved by <@U0ALICE> — sending at")
    assert set(app.buttons(aid)) == {"cancel"}
    assert app.card(aid)["ts"] == card["ts"], "the card is updated in place"

    app.tick(9)  # nine seconds in: still counting
    assert app.state(aid) == "cooling_off"
    assert slack.messages(STATUS_CHANNEL) == [] and receiver.requests == []

    app.tick(1.2)
    assert app.state(aid) == "published"
    posted = slack.messages(STATUS_CHANNEL)
    assert [m["text"] for m in posted] == [text]
    assert posted[0]["metadata"]["event_type"] == "count_to_ten_delivery"
    assert len(receiver.unique()) == 1
    (payload,) = receiver.unique().values()
    assert payload["data"]["text"] == text and payload["type"] == "announcement.published"
    assert [line["text"] for line in log_lines(tmp_path)] == [text]

    app.wait_card(aid, "Published")
    assert set(app.buttons(aid)) == {"request_retract"}, "published: only Retract is left"
    assert "view post" in app.card_text(aid)

    result = audit.verify(app.engine)
    assert result.ok, result.describe()
    actions = [row["action"] for row in audit_rows(app.engine)]
    assert actions[:3] == ["submit", "approve_final", "release"]
    assert actions.count("delivery") == 3 and actions[-1] == "delivered"


def audit_rows(engine: Engine) -> list[dict[str, object]]:
    return [json.loads(line) for line in audit.export_jsonl(engine)]


def test_the_card_escapes_the_draft(app: AppUnderTest) -> None:
    aid = app.submit(AUTHOR, "<!channel> see <https://evil.example|our bank> & <@U0BOSS>", ["status-channel"])
    rendered = app.card_text(aid) + str(app.card(aid)["text"])
    assert "<!channel>" not in rendered and "<https://evil" not in rendered and "<@U0BOSS>" not in rendered
    assert "&lt;!channel&gt;" in rendered


def test_author_cannot_approve_their_own_text(app: AppUnderTest, slack: FakeSlack) -> None:
    aid = app.submit(AUTHOR, "Maintenance tonight 22:00-23:00 UTC.", ["log"])
    app.click(AUTHOR, aid, "approve")
    app.ephemeral_to(AUTHOR, "four eyes")
    assert app.state(aid) == "pending"
    refused = [r for r in audit_rows(app.engine) if r["action"] == "refused"]
    assert refused and refused[0]["actor"] == AUTHOR


def test_only_listed_approvers_and_group_members_may_approve(
    tmp_path: Path, engine: Engine, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    app = make_app(tmp_path, engine, slack, receiver, approvers=[ALICE, "S0APPROVERS"])
    try:
        aid = app.submit(AUTHOR, "Maintenance tonight 22:00-23:00 UTC.", ["log"])
        app.click(MALLORY, aid, "approve")
        app.ephemeral_to(MALLORY, "Only the approvers")
        assert app.state(aid) == "pending"
        app.click(CAROL, aid, "approve")  # a member of S0APPROVERS, checked via usergroups.users.list
        app.wait_state(aid, "cooling_off")
        assert slack.calls("usergroups.users.list")[0]["usergroup"] == "S0APPROVERS"
    finally:
        app.close()


def test_quorum_of_two_needs_two_different_people(
    tmp_path: Path, engine: Engine, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    app = make_app(tmp_path, engine, slack, receiver, required_approvals=2)
    try:
        aid = app.submit(AUTHOR, "Maintenance tonight 22:00-23:00 UTC.", ["log"])
        app.click(ALICE, aid, "approve")
        app.ephemeral_to(ALICE, "1 more approval needed")
        app.wait_card(aid, "Approvals: 1/2")
        app.click(ALICE, aid, "approve")
        app.ephemeral_to(ALICE, "You already approved")
        assert app.state(aid) == "pending"
        app.click(BOB, aid, "approve")
        app.wait_state(aid, "cooling_off")
        app.wait_card(aid, "Approved by <@U0ALICE>, <@U0BOB>")
    finally:
        app.close()


def edit(app: AppUnderTest, user: str, aid: int, text: str) -> None:
    """Press Edit (opens the pre-filled modal), then submit the modal Slack opened."""
    before = len(app.slack.calls("views.open"))
    app.click(user, aid, "edit")
    view = app.slack.wait_for_calls("views.open", before + 1)[-1]["view"]
    assert view["callback_id"] == "edit_announcement"
    values = {
        "text": {"text": {"type": "plain_text_input", "value": text}},
        "destinations": {
            "destinations": {
                "type": "checkboxes",
                "selected_options": next(b for b in view["blocks"] if b.get("block_id") == "destinations")["element"][
                    "initial_options"
                ],
            }
        },
    }
    response = app.post(
        app.requests.view_submission(
            user_id=user, callback_id="edit_announcement", values=values, private_metadata=view["private_metadata"]
        )
    )
    assert response.status_code == 200 and b"errors" not in response.content, response.text


def test_an_edit_clears_approvals_and_old_buttons_stop_working(
    tmp_path: Path, engine: Engine, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    app = make_app(tmp_path, engine, slack, receiver, required_approvals=2, approvers=[ALICE, BOB, CAROL])
    try:
        aid = app.submit(AUTHOR, "Maintenance tonight 22:00-23:00 UTC.", ["log"])
        stale_value = app.buttons(aid)["approve"]["value"]
        app.click(ALICE, aid, "approve")
        app.wait_card(aid, "Approvals: 1/2")

        edit(app, AUTHOR, aid, "Maintenance tonight 22:00-23:30 UTC.")
        app.wait_card(aid, "Approvals: 0/2")
        assert "23:30" in app.card_text(aid)

        app.click(BOB, aid, "approve", value=stale_value)  # a button from before the edit
        app.ephemeral_to(BOB, "The text changed since this card was shown to you")
        assert app.state(aid) == "pending"

        edit(app, CAROL, aid, "Maintenance tonight 22:00-23:45 UTC.")  # an approver fixes the time
        app.wait_card(aid, "23:45")
        app.click(CAROL, aid, "approve")
        app.ephemeral_to(CAROL, "You edited this text")
        app.click(ALICE, aid, "approve")
        app.click(BOB, aid, "approve")
        app.wait_state(aid, "cooling_off")
        edits = [r for r in audit_rows(engine) if r["action"] == "edit"]
        assert [e["text"] for e in edits] == [
            "Maintenance tonight 22:00-23:30 UTC.",
            "Maintenance tonight 22:00-23:45 UTC.",
        ]
    finally:
        app.close()


def test_reject_with_a_reason_tells_the_author(app: AppUnderTest, slack: FakeSlack) -> None:
    aid = app.submit(AUTHOR, "It is all new, lol.", ["log"])
    app.click(ALICE, aid, "reject")
    view = slack.wait_for_calls("views.open")[-1]["view"]
    assert view["callback_id"] == "reject_reason"
    response = app.post(
        app.requests.view_submission(
            user_id=ALICE,
            callback_id="reject_reason",
            values={"reason": {"reason": {"type": "plain_text_input", "value": "Say what broke & when it's fixed"}}},
            private_metadata=view["private_metadata"],
        )
    )
    assert response.status_code == 200
    app.wait_state(aid, "rejected")
    dm = slack.dm_channel(AUTHOR)
    wait_until(lambda: slack.messages(dm), what="the DM")
    assert "Say what broke & when it's fixed" in slack.messages(dm)[-1]["text"]
    app.wait_card(aid, "Rejected by <@U0ALICE>: Say what broke &amp; when it's fixed")
    assert app.buttons(aid) == {}


def test_withdraw_is_for_the_author_only(app: AppUnderTest) -> None:
    aid = app.submit(AUTHOR, "Maintenance tonight.", ["log"])
    app.click(ALICE, aid, "withdraw")
    app.ephemeral_to(ALICE, "Only the author can withdraw")
    app.click(AUTHOR, aid, "withdraw")
    app.wait_state(aid, "cancelled")
    app.wait_card(aid, "Cancelled by <@U0AUTHOR>")


def test_cancel_during_the_count_sends_nothing(
    tmp_path: Path, engine: Engine, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    app = make_app(tmp_path, engine, slack, receiver, approvers=[ALICE, "S0APPROVERS"])
    try:
        check_cancel(app, slack, receiver, tmp_path)
    finally:
        app.close()


def check_cancel(app: AppUnderTest, slack: FakeSlack, receiver: FakeWebhookReceiver, tmp_path: Path) -> None:
    aid = app.submit(AUTHOR, "Power is back in the Milan data centre. Next update by 16:00 UTC.", ALL)
    app.click(ALICE, aid, "approve")
    app.wait_state(aid, "cooling_off")
    app.wait_card(aid, "sending at")
    app.tick(5)
    app.click(MALLORY, aid, "cancel")  # neither author nor approver: refused
    app.ephemeral_to(MALLORY, "Only the author or an approver can cancel")
    app.click(AUTHOR, aid, "cancel")
    app.wait_state(aid, "cancelled")
    app.tick(60)
    assert slack.messages(STATUS_CHANNEL) == [] and receiver.requests == [] and log_lines(tmp_path) == []
    app.wait_card(aid, "nothing was sent")


@pytest.mark.parametrize(
    ("text", "chosen", "block", "message"),
    [
        ("   ", ["log"], "text", "Write the text"),
        ("Hello", [], "destinations", "Choose at least one destination"),
        ("x" * 4001, ["status-channel"], "text", "4001 characters, over the limit of 4000"),
        ("Hello", ["nope"], "destinations", "not a configured destination"),
    ],
)
def test_an_invalid_draft_is_refused_in_the_modal_and_nothing_is_stored(
    app: AppUnderTest, slack: FakeSlack, text: str, chosen: list[str], block: str, message: str
) -> None:
    response = app.compose(AUTHOR, text, chosen)
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert message in body["errors"][block]
    with Session(app.engine) as session:
        assert session.exec(select(func.count()).select_from(Announcement)).one() == 0
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 0
    assert slack.calls("chat.postMessage") == []


@pytest.mark.parametrize("problem", ["wrong", "missing", "stale"])
def test_unsigned_or_stale_requests_are_refused(app: AppUnderTest, slack: FakeSlack, problem: str) -> None:
    values = {
        "text": {"text": {"type": "plain_text_input", "value": "hi"}},
        "destinations": {"destinations": {"type": "checkboxes", "selected_options": [{"value": "log"}]}},
    }
    calls_before = len(slack.requests)
    if problem == "wrong":
        signed = app.requests.view_submission(
            user_id=AUTHOR, callback_id="compose", values=values, secret="not-the-secret"
        )
    elif problem == "stale":
        import time

        signed = app.requests.view_submission(
            user_id=AUTHOR, callback_id="compose", values=values, timestamp=int(time.time()) - 301
        )
    else:
        body, headers = app.requests.view_submission(user_id=AUTHOR, callback_id="compose", values=values)
        signed = (body, {k: v for k, v in headers.items() if not k.lower().startswith("x-slack")})
    assert app.post(signed).status_code == 401
    with Session(app.engine) as session:
        assert session.exec(select(func.count()).select_from(Announcement)).one() == 0
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 0
    assert len(slack.requests) == calls_before


def test_twenty_parallel_approvals_release_once(
    app: AppUnderTest, slack: FakeSlack, receiver: FakeWebhookReceiver, tmp_path: Path
) -> None:
    aid = app.submit(AUTHOR, "Degraded API latency in us-east. Next update by 15:00 UTC.", ALL)
    users = [f"U0APPROVER{i:02d}" for i in range(20)]
    for user in users:
        slack.add_user(user)
    barrier = threading.Barrier(20)
    codes: list[int] = []

    def click(user: str) -> None:
        barrier.wait()
        codes.append(app.click(user, aid, "approve").status_code)

    threads = [threading.Thread(target=click, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 20
    wait_until(lambda: len(slack.ephemerals()) >= 20, what="an answer for every click")
    winners = [e for e in slack.ephemerals() if "Sending in 10 seconds" in e["text"]]
    assert len(winners) == 1
    app.tick(11)
    app.tick(1)
    assert app.state(aid) == "published"
    assert len(slack.messages(STATUS_CHANNEL)) == 1
    assert len(receiver.attempts()) == 1
    assert len(log_lines(tmp_path)) == 1
    assert [r["action"] for r in audit_rows(app.engine)].count("release") == 1


def test_approve_and_withdraw_at_once_exactly_one_wins(app: AppUnderTest, slack: FakeSlack) -> None:
    aid = app.submit(AUTHOR, "Maintenance tonight.", ["log"])
    barrier = threading.Barrier(2)

    def press(user: str, action: str) -> None:
        barrier.wait()
        app.click(user, aid, action)

    threads = [threading.Thread(target=press, args=a) for a in [(ALICE, "approve"), (AUTHOR, "withdraw")]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: len(slack.ephemerals()) >= 2, what="both answers")
    final = app.state(aid)
    assert final in {"cooling_off", "cancelled"}
    transitions = [r["action"] for r in audit_rows(app.engine) if r["action"] in {"approve_final", "withdraw"}]
    assert len(transitions) == 1
    if final == "cancelled":
        app.wait_card(aid, "Cancelled by <@U0AUTHOR>")
        app.ephemeral_to(ALICE, "cancelled by <@U0AUTHOR>")
    else:
        app.wait_card(aid, "Approved by <@U0ALICE>")
        app.ephemeral_to(AUTHOR, "already approved")


def release(app: AppUnderTest, text: str, chosen: list[str]) -> int:
    aid = app.submit(AUTHOR, text, chosen)
    app.click(ALICE, aid, "approve")
    app.wait_state(aid, "cooling_off")
    app.tick(10.5)
    return aid


def test_webhook_500_500_200_is_one_post_with_one_id(app: AppUnderTest, receiver: FakeWebhookReceiver) -> None:
    receiver.script(Response(500, "boom"), Response(503, "busy"))
    app.worker.rand = lambda: 0.0  # pin the jitter: backoff is then 1 s, then 2 s
    aid = release(app, "Recovered.", ["partner-webhook"])
    assert len(receiver.attempts()) == 1 and app.state(aid) == "publishing"
    app.wait_card(aid, "retry at")
    app.tick(1.1)
    assert len(receiver.attempts()) == 2
    app.tick(2.1)
    assert len(receiver.attempts()) == 3
    assert app.state(aid) == "published"
    ids = {r.headers["webhook-id"] for r in receiver.attempts()}
    assert len(ids) == 1 and len(receiver.unique()) == 1
    assert receiver.rejected == 0


def test_webhook_429_retry_after_is_honoured(app: AppUnderTest, receiver: FakeWebhookReceiver) -> None:
    receiver.script(Response(429, "slow down", headers={"Retry-After": "7"}))
    aid = release(app, "Recovered.", ["partner-webhook"])
    app.tick(6.5)
    assert len(receiver.attempts()) == 1
    app.tick(1)
    assert len(receiver.attempts()) == 2
    assert app.state(aid) == "published"


def test_webhook_400_fails_and_retry_failed_sends_it(app: AppUnderTest, receiver: FakeWebhookReceiver) -> None:
    receiver.script(Response(400, "missing field"))
    aid = release(app, "Recovered.", ["partner-webhook", "log"])
    assert app.state(aid) == "failed"
    app.wait_card(aid, "HTTP 400 missing field")
    assert set(app.buttons(aid)) == {"retry_failed"}
    app.click(ALICE, aid, "retry_failed")
    app.wait_state(aid, "publishing")
    app.tick()
    assert app.state(aid) == "published"
    assert len(receiver.unique()) == 1
    app.wait_card(aid, "Published")


def test_webhook_410_switches_the_destination_off(app: AppUnderTest, receiver: FakeWebhookReceiver) -> None:
    receiver.script(Response(410, "gone"))
    aid = release(app, "Recovered.", ["partner-webhook"])
    assert app.state(aid) == "failed"
    response = app.compose(AUTHOR, "Another update.", ["partner-webhook"])
    assert "switched off" in response.json()["errors"]["destinations"]


def test_slash_command_opens_the_modal_prefilled(app: AppUnderTest, slack: FakeSlack) -> None:
    response = app.post(app.requests.slash_command(user_id=AUTHOR, text="DNS is down <!here>"))
    assert response.status_code == 200
    view = slack.wait_for_calls("views.open")[-1]["view"]
    assert view["callback_id"] == "compose"
    text_block = next(b for b in view["blocks"] if b.get("block_id") == "text")
    assert text_block["element"]["initial_value"] == "DNS is down <!here>"
    picker = next(b for b in view["blocks"] if b.get("block_id") == "destinations")["element"]
    assert [o["value"] for o in picker["options"]] == ALL
    assert [o["value"] for o in picker["initial_options"]] == ["status-channel"]


def test_help(app: AppUnderTest) -> None:
    response = app.post(app.requests.slash_command(user_id=AUTHOR, text="help"))
    assert response.status_code == 200
    assert "opens a draft" in response.text


def test_app_home_lists_announcements(app: AppUnderTest, slack: FakeSlack) -> None:
    app.submit(AUTHOR, "Maintenance tonight.", ["log"])
    assert app.post(app.requests.app_home_opened(user_id=ALICE)).status_code == 200
    home = wait_until(lambda: slack.home_view(ALICE), what="the home tab")
    assert "Waiting for approval (1)" in str(home)


def test_healthz(app: AppUnderTest) -> None:
    response = app.http.get("/healthz")
    assert response.status_code == 200 and response.text == "ok\n"


def test_a_damaged_button_value_changes_nothing(app: AppUnderTest) -> None:
    aid = app.submit(AUTHOR, "Maintenance tonight.", ["log"])
    app.click(ALICE, aid, "approve", value="not-a-ref")
    app.ephemeral_to(ALICE, "damaged")
    assert app.state(aid) == "pending"


def test_a_malformed_payload_is_refused_and_changes_nothing(app: AppUnderTest) -> None:
    body = b"payload=%7Bnot-json"
    response = app.post((body, app.requests.sign(body)))
    assert 400 <= response.status_code < 500
    with Session(app.engine) as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 0


def test_a_card_that_could_not_be_posted_is_posted_by_the_worker(app: AppUnderTest, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", "internal_error", times=1)
    response = app.compose(AUTHOR, "Maintenance tonight.", ["log"])
    assert response.status_code == 200
    wait_until(lambda: slack.calls("chat.postMessage"), what="the failed card post")
    aid = app.latest_id()
    assert app.cards() == []
    app.tick(11)  # past the grace period: the worker repairs the card
    assert app.card(aid)


def test_expired_drafts(app: AppUnderTest) -> None:
    aid = app.submit(AUTHOR, "Maintenance tonight.", ["log"])
    app.tick(24 * 3600 + 1)
    assert app.state(aid) == "expired"
    app.wait_card(aid, "Expired")
    assert APPROVAL_CHANNEL


def test_a_secret_in_the_draft_blocks_it_in_the_modal(app: AppUnderTest, slack: FakeSlack) -> None:
    response = app.compose(AUTHOR, "Fixed. Use token xoxb-123456789012-abcdefabcdef to test.", ["status-channel"])
    error = response.json()["errors"]["text"]
    assert "Slack token" in error and "abcdefabcdef" not in error
    assert slack.calls("chat.postMessage") == []


def test_warnings_reach_the_card_and_approve_asks_to_confirm(app: AppUnderTest) -> None:
    aid = app.submit(AUTHOR, "The SERVER is DOWN!!! Probably the ciabatta.", ["status-channel"])
    card = app.card_text(aid)
    assert "warnings from the pre-flight checks" in card and "*ciabatta*" in card
    assert "power distribution unit" in card
    confirm = app.buttons(aid)["approve"]["confirm"]["title"]["text"]
    assert confirm.startswith("Approve despite") and "warnings?" in confirm
    findings = next(r for r in audit_rows(app.engine) if r["action"] == "submit")["findings"]
    assert {f["rule"] for f in findings} >= {"shouting", "jargon", "speculation", "punctuation"}


def test_checks_command_for_ci_pipelines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import app as app_module

    (tmp_path / "announce.toml").write_text('[checks]\ndisable = ["no_next_step"]\n')
    env = {"ANNOUNCE_CONFIG": str(tmp_path / "announce.toml")}
    for draft, expected in [
        ("Logins fail for some users since 14:02 UTC. We are rolling back.", 0),
        ("We THINK it is the ciabatta??", 1),
        ("password = hunter22hunter", 2),
    ]:
        monkeypatch.setattr("sys.stdin", io.StringIO(draft))
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        assert app_module.main(["checks", "--json"], env) == expected, out.getvalue()
        assert isinstance(json.loads(out.getvalue()), list)
    (tmp_path / "announce.toml").write_text('[checks]\ndisable = ["speculatoin"]\n')
    assert app_module.main(["checks"], env) == 64


def test_cancel_at_the_moment_of_release_exactly_one_wins(
    app: AppUnderTest, slack: FakeSlack, receiver: FakeWebhookReceiver
) -> None:
    for _ in range(3):  # the race goes either way; each round must come out whole
        aid = app.submit(AUTHOR, "Maintenance finished at 23:10 UTC.", ["partner-webhook"])
        app.click(ALICE, aid, "approve")
        app.wait_state(aid, "cooling_off")
        app.wait_card(aid, "sending at")
        app.clock.advance(10)  # release_at is now
        barrier = threading.Barrier(2)

        def cancel(aid: int = aid, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            app.click(AUTHOR, aid, "cancel")

        def release(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            app.tick()

        threads = [threading.Thread(target=cancel), threading.Thread(target=release)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_until(lambda aid=aid: app.state(aid) in {"cancelled", "published"}, what="an outcome")
        app.tick()
        won = [
            r["action"]
            for r in audit_rows(app.engine)
            if r["announcement_id"] == aid and r["action"] in {"cancel", "release"}
        ]
        assert len(won) == 1
        sent = [p for _, p in receiver.accepted if p["data"]["id"] == aid]
        assert len(sent) == (1 if won == ["release"] else 0)


def test_a_view_submission_without_state_is_answered_with_field_errors(app: AppUnderTest) -> None:
    body, _ = app.requests.view_submission(user_id=AUTHOR, callback_id="compose", values={})
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    del payload["view"]["state"]
    raw = ("payload=" + quote(json.dumps(payload))).encode()
    response = app.post((raw, app.requests.sign(raw)))
    assert response.status_code == 200
    assert set(response.json()["errors"]) == {"text", "destinations"}
