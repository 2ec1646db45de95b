"""Every platform through the real app flow: compose → approve → count → post, against each
platform's fake on loopback; plus the uncertain path that ends on the card, and `app.py check`.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from contextlib import ExitStack, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

import app as app_module
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.discord import FakeDiscord
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.slack import FakeSlack
from tests.fakes.statuspage import FakeStatuspage
from tests.fakes.teams import FakeTeams
from tests.fakes.x import FakeX
from tests.harness import ALICE, AUTHOR, AppUnderTest, config
from tests.slack_requests import checkboxes, plain_text, static_select

PLATFORMS = ["mastodon", "bluesky", "x", "statuspage", "discord", "teams"]


@dataclass
class Platforms:
    mastodon: FakeMastodon
    bluesky: FakeBluesky
    x: FakeX
    statuspage: FakeStatuspage
    discord: FakeDiscord
    teams: FakeTeams

    def toml(self) -> str:
        return f"""
[[destination]]
name = "mastodon"
type = "mastodon"
base_url = "{self.mastodon.url}"
access_token = "${{MASTODON_TOKEN}}"

[[destination]]
name = "bluesky"
type = "bluesky"
base_url = "{self.bluesky.url}"
handle = "{self.bluesky.user_handle}"
app_password = "${{BLUESKY_APP_PASSWORD}}"

[[destination]]
name = "x"
type = "x"
base_url = "{self.x.url}"
consumer_key = "{self.x.consumer_key}"
consumer_secret = "{self.x.consumer_secret}"
access_token = "{self.x.access_token}"
access_token_secret = "{self.x.access_token_secret}"

[[destination]]
name = "statuspage"
type = "statuspage"
base_url = "{self.statuspage.url}"
page_id = "{self.statuspage.page_id}"
api_key = "{self.statuspage.api_key}"

[[destination]]
name = "discord"
type = "discord"
webhook_url = "{self.discord.webhook_url}"

[[destination]]
name = "teams"
type = "teams"
webhook_url = "{self.teams.webhook_url}"
"""

    def env(self) -> dict[str, str]:
        return {"MASTODON_TOKEN": self.mastodon.token, "BLUESKY_APP_PASSWORD": self.bluesky.app_password}

    def secrets(self) -> list[str]:
        return [
            self.mastodon.token,
            self.bluesky.app_password,
            self.x.consumer_secret,
            self.x.access_token_secret,
            self.statuspage.api_key,
            self.discord.token,
            self.teams.sig,
        ]


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    with ExitStack() as stack:
        yield Platforms(
            mastodon=stack.enter_context(FakeMastodon()),
            bluesky=stack.enter_context(FakeBluesky()),
            x=stack.enter_context(FakeX()),
            statuspage=stack.enter_context(FakeStatuspage()),
            discord=stack.enter_context(FakeDiscord()),
            teams=stack.enter_context(FakeTeams()),
        )


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for user in (AUTHOR, ALICE):
            fake.add_user(user)
        yield fake


@pytest.fixture
def app(tmp_path: Path, engine: Engine, slack: FakeSlack, platforms: Platforms) -> Iterator[AppUnderTest]:
    running = AppUnderTest(
        tmp_path=tmp_path,
        engine=engine,
        slack=slack,
        toml=config(platforms.toml()),
        env=platforms.env(),
        read_timeout=1.0,
    )
    yield running
    running.close()


TEXT = "Logins are failing for some customers since 14:02 UTC. We are rolling back. Next update by 14:30 UTC. https://status.example.com"


def compose(
    app: AppUnderTest,
    chosen: list[str],
    *,
    title: str | None,
    status: str | None,
    text: str = TEXT,
    follows: int | None = None,
) -> dict:
    values = {
        "text": {"text": plain_text(text)},
        "destinations": {"destinations": checkboxes(*chosen)},
        "title": {"title": plain_text(title)},
        "status": {"status": static_select(status)},
        "follows": {"follows": static_select(str(follows) if follows else None)},
    }
    response = app.post(app.requests.view_submission(user_id=AUTHOR, callback_id="compose", values=values))
    assert response.status_code == 200
    return response.json() if response.content else {}


def approve_and_release(
    app: AppUnderTest, chosen: list[str], *, status: str = "identified", follows: int | None = None, text: str = TEXT
) -> int:
    before = len(app.cards())
    assert compose(app, chosen, title="Login failures", status=status, follows=follows, text=text) == {}
    app.slack.wait_for_calls("chat.postMessage", before + 1)
    aid = app.latest_id()
    app.click(ALICE, aid, "approve")
    app.wait_state(aid, "cooling_off")
    app.tick(10.5)
    return aid


def test_an_approved_post_reaches_every_platform_once(app: AppUnderTest, platforms: Platforms) -> None:
    aid = approve_and_release(app, PLATFORMS)
    assert app.state(aid) == "published", app.card_text(aid)
    assert [s["content"] for s in platforms.mastodon.statuses.values()] == [f"<p>{TEXT}</p>"]  # Mastodon renders HTML
    (post,) = platforms.bluesky.posts()
    assert post["text"] == TEXT and post["facets"][0]["features"][0]["uri"] == "https://status.example.com"
    assert [t["text"] for t in platforms.x.tweets.values()] == [TEXT]
    (incident,) = platforms.statuspage.incidents.values()
    assert incident["name"] == "Login failures" and incident["status"] == "identified"
    assert [m["content"] for m in platforms.discord.messages.values()] == [TEXT]
    assert len(platforms.teams.cards) == 1
    app.wait_card(aid, "Published")
    card = app.card_text(aid)
    for name in PLATFORMS:
        assert f"*{name}* — delivered" in card
    assert card.count("view post") >= 4  # Teams answers 202 with no id; Discord links once its guild is known


def test_the_card_and_the_modal_show_each_platforms_count(app: AppUnderTest) -> None:
    long = "Everything is fine. " * 16  # 319 characters once the trailing space is trimmed
    errors = compose(app, ["mastodon", "bluesky", "x"], title=None, status=None, text=long)["errors"]["text"]
    assert "bluesky: 319 graphemes, over the limit of 300" in errors and "x: 319 characters" in errors
    assert compose(app, ["mastodon", "bluesky", "x"], title=None, status=None) == {}
    app.slack.wait_for_calls("chat.postMessage")
    card = app.card_text(app.latest_id())
    # 128 characters with a 26-character URL: Mastodon and X count the URL as 23, Bluesky counts graphemes.
    assert "mastodon 125/500" in card and "bluesky 128/300" in card and "x 125/280" in card


def test_statuspage_needs_a_title_and_a_status(app: AppUnderTest) -> None:
    errors = compose(app, ["statuspage"], title=None, status=None)["errors"]
    assert "incident name" in errors["title"] and "investigating" in errors["status"]


def test_a_lost_answer_from_x_goes_to_a_person(app: AppUnderTest, platforms: Platforms) -> None:
    platforms.x.answer_slowly(3)  # X posts it, the answer never arrives in time
    aid = approve_and_release(app, ["x", "mastodon"])
    assert app.state(aid) == "publishing"
    app.wait_card(aid, "uncertain")
    buttons = app.buttons(aid)
    mark = next(k for k in buttons if k.startswith("mark_sent:"))
    assert any(k.startswith("send_again:") for k in buttons)
    app.tick(60)
    assert len(platforms.x.tweets) == 1, "never resent blindly"
    app.click(ALICE, aid, mark)
    app.wait_state(aid, "published")
    assert len(platforms.x.tweets) == 1


def test_a_lost_answer_from_mastodon_is_retried_with_the_same_key(app: AppUnderTest, platforms: Platforms) -> None:
    platforms.mastodon.answer_slowly(3)
    app.worker.rand = lambda: 0.0
    aid = approve_and_release(app, ["mastodon"])
    assert app.state(aid) == "publishing"
    app.tick(1.1)
    assert app.state(aid) == "published"
    keys = {r.headers.get("idempotency-key") for r in platforms.mastodon.requests if r.method == "POST"}
    assert len(keys) == 1 and len(platforms.mastodon.statuses) == 1


def test_send_again_after_an_uncertain_post(app: AppUnderTest, platforms: Platforms) -> None:
    platforms.discord.answer_slowly(3)
    aid = approve_and_release(app, ["discord"])
    app.wait_card(aid, "uncertain")
    again = next(k for k in app.buttons(aid) if k.startswith("send_again:"))
    app.click(ALICE, aid, again)
    app.wait_card(aid, "queued")
    app.tick()
    assert app.state(aid) == "published"
    assert len(platforms.discord.messages) == 2, "Send again means: post it, a person checked"


def test_check_command_verifies_every_destination(tmp_path: Path, slack: FakeSlack, platforms: Platforms) -> None:
    path = tmp_path / "announce.toml"
    path.write_text(config(platforms.toml()))
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": slack.api_url,
        "ANNOUNCE_CONFIG": str(path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        **platforms.env(),
    }
    out = io.StringIO()
    with redirect_stdout(out):
        code = app_module.main(["check"], env)
    lines = out.getvalue().splitlines()
    assert code == 0, out.getvalue()
    assert [line.split()[0] for line in lines] == ["ok"] * 7
    assert any("@status" in line for line in lines)
    for secret in platforms.secrets():
        assert secret not in out.getvalue()

    platforms.mastodon.token = "rotated"  # the configured token no longer works
    out = io.StringIO()
    with redirect_stdout(out):
        assert app_module.main(["check"], env) == 1
    assert "FAIL  mastodon" in out.getvalue()


def test_unreachable_slack_is_a_message_not_a_traceback(
    tmp_path: Path, platforms: Platforms, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "announce.toml"
    path.write_text(config(platforms.toml()))
    with socket.socket() as closed:  # a port that was free a moment ago: nothing answers there
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": f"http://127.0.0.1:{port}/api/",
        "ANNOUNCE_CONFIG": str(path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        **platforms.env(),
    }
    assert app_module.main(["check"], env) == 2
    err = capsys.readouterr().err
    assert f"Cannot reach Slack at http://127.0.0.1:{port}/api/" in err and "Traceback" not in err


def test_a_follow_up_continues_the_thread_and_the_incident(
    app: AppUnderTest, platforms: Platforms, slack: FakeSlack
) -> None:
    first = approve_and_release(app, ["mastodon", "bluesky", "x", "statuspage"])
    assert app.state(first) == "published"
    response = app.post(app.requests.slash_command(user_id=AUTHOR, text=""))
    assert response.status_code == 200
    view = slack.wait_for_calls("views.open")[-1]["view"]
    follow = next(b for b in view["blocks"] if b.get("block_id") == "follows")["element"]
    assert follow["options"][0]["value"] == str(first)

    fixed = "Logins work again since 14:41 UTC. We will publish a review by Friday."
    second = approve_and_release(
        app, ["mastodon", "bluesky", "x", "statuspage"], status="resolved", follows=first, text=fixed
    )
    assert app.state(second) == "published", app.card_text(second)
    assert f"follow-up to #{first}" in app.card_text(second), app.card_text(second)

    (incident,) = platforms.statuspage.incidents.values()  # updated, not a second incident
    assert incident["status"] == "resolved"
    statuses = list(platforms.mastodon.statuses.values())
    assert statuses[1]["in_reply_to_id"] == statuses[0]["id"]
    tweets = list(platforms.x.tweets.values())
    assert len(tweets) == 2
    x_reply = [r.json() for r in platforms.x.requests if r.method == "POST"][-1]
    assert x_reply["reply"]["in_reply_to_tweet_id"] == next(iter(platforms.x.tweets))
    replies = [p for p in platforms.bluesky.posts() if "reply" in p]
    assert len(replies) == 1 and replies[0]["reply"]["root"]["uri"].endswith(
        replies[0]["reply"]["parent"]["uri"].rsplit("/", 1)[1]
    )


def test_a_follow_up_must_follow_something_published(app: AppUnderTest) -> None:
    assert compose(app, ["mastodon"], title=None, status=None) == {}
    app.slack.wait_for_calls("chat.postMessage")
    pending = app.latest_id()
    errors = compose(app, ["mastodon"], title=None, status=None, follows=pending)["errors"]
    assert "never published" in errors["follows"]


def test_the_modal_counts_as_you_type(app: AppUnderTest, slack: FakeSlack) -> None:
    app.post(app.requests.slash_command(user_id=AUTHOR, text=""))
    opened = slack.wait_for_calls("views.open")[-1]["view"]
    view_id = slack.views()[-1]["id"]
    text_block = next(b for b in opened["blocks"] if b.get("block_id") == "text")
    assert text_block["dispatch_action"] is True
    values = {
        "text": {"text": plain_text("Everything is fine. " * 16)},
        "destinations": {"destinations": checkboxes("bluesky", "x", "mastodon")},
    }
    response = app.post(
        app.requests.view_block_action(
            user_id=AUTHOR,
            action_id="text",
            value="",
            block_id="text",
            view_id=view_id,
            view_type="modal",
            callback_id="compose",
            view_blocks=opened["blocks"],
            values=values,
        )
    )
    assert response.status_code == 200
    updated = slack.wait_for_calls("views.update")[-1]["view"]
    counts = next(b for b in updated["blocks"] if b.get("block_id") == "counts")["elements"][0]["text"]
    assert counts == "Length: mastodon 319/500 · bluesky 319/300 ⚠ too long · x 319/280 ⚠ too long"
    for block in ("text", "destinations"):  # same ids: Slack keeps what the person typed and ticked
        assert {b.get("block_id") for b in updated["blocks"]} >= {block}


def test_retracting_a_published_post_needs_a_second_person(
    app: AppUnderTest, platforms: Platforms, slack: FakeSlack
) -> None:
    aid = approve_and_release(app, ["mastodon", "x", "discord", "teams"])
    assert app.state(aid) == "published"
    assert set(app.buttons(aid)) == {"request_retract"}

    app.click(AUTHOR, aid, "request_retract")
    view = slack.wait_for_calls("views.open")[-1]["view"]
    assert view["callback_id"] == "retract_reason"
    reason = {"reason": {"reason": plain_text("Posted to the wrong region's customers")}}
    response = app.post(
        app.requests.view_submission(
            user_id=AUTHOR, callback_id="retract_reason", values=reason, private_metadata=view["private_metadata"]
        )
    )
    assert response.status_code == 200 and not response.content
    app.wait_state(aid, "retract_pending")
    app.wait_card(aid, "asks to delete this everywhere")
    assert set(app.buttons(aid)) == {"approve_retract", "keep"}

    app.click(AUTHOR, aid, "approve_retract")
    app.ephemeral_to(AUTHOR, "You asked for this retraction")
    assert app.state(aid) == "retract_pending"
    app.click(ALICE, aid, "approve_retract")
    app.wait_state(aid, "retracting")
    app.tick()
    assert app.state(aid) == "retracted"
    assert platforms.mastodon.statuses == {} and platforms.x.tweets == {} and platforms.discord.messages == {}
    assert len(platforms.teams.cards) == 1  # a Teams webhook cannot delete: the card says so
    app.wait_card(aid, "Retracted")
    card = app.card_text(aid)
    assert "*teams* — retract_failed" in card and "*mastodon* — retracted" in card
    assert app.buttons(aid) == {}
    actions = [r["action"] for r in audit_rows(app)]
    assert actions[-7:].count("retraction") == 4 and actions[-1] == "retract_done"


def audit_rows(app: AppUnderTest) -> list[dict]:
    import json

    from workflow import audit

    return [json.loads(line) for line in audit.export_jsonl(app.engine)]


def test_a_retraction_can_be_declined(app: AppUnderTest, platforms: Platforms, slack: FakeSlack) -> None:
    aid = approve_and_release(app, ["mastodon"])
    app.click(ALICE, aid, "request_retract")
    view = slack.wait_for_calls("views.open")[-1]["view"]
    app.post(
        app.requests.view_submission(
            user_id=ALICE,
            callback_id="retract_reason",
            values={"reason": {"reason": plain_text("Typo")}},
            private_metadata=view["private_metadata"],
        )
    )
    app.wait_state(aid, "retract_pending")
    app.click(AUTHOR, aid, "keep")  # with no approver list, anyone may decide
    app.wait_state(aid, "published")
    app.ephemeral_to(AUTHOR, "stays published")
    app.tick(60)
    assert len(platforms.mastodon.statuses) == 1
