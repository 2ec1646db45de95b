"""The Slack fake and the request builders speak Slack's real protocol.

Checked against the real clients: slack_sdk's WebClient talks to FakeSlack; slack_sdk's
SignatureVerifier accepts SlackRequests' signatures; a Bolt App behind Bolt's WSGI adapter accepts
the built requests and answers 401 to a wrong or stale signature.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import UPLOAD, FakeSlack
from tests.slack_requests import SlackRequests, checkboxes, multi_static_select, plain_text, static_select

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0APPROVALS"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(users={"U0ALICE": {"display_name": "alice", "real_name": "Alice A"}}) as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.api_url)


# --------------------------------------------------------------------------- the fake Web API


def test_auth_and_unknown_methods(fake: FakeSlack, client: WebClient) -> None:
    me = client.auth_test()
    assert me["user_id"] == fake.bot_user_id and me["bot_id"] == fake.bot_id and me["team_id"] == fake.team_id
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()
    assert wrong.value.response.status_code == 200 and wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=fake.api_url).auth_test()
    assert missing.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("chat.frobnicate")
    assert unknown.value.response["error"] == "unknown_method"


def test_post_update_history_permalink(fake: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Draft"}}]
    metadata = {"event_type": "announcement_card", "event_payload": {"id": 7}}
    first = client.chat_postMessage(channel=CHANNEL, text="Draft", blocks=blocks, metadata=metadata)
    second = client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=first["ts"])
    assert first["channel"] == CHANNEL and first["message"]["blocks"] == blocks
    assert float(second["ts"]) > float(first["ts"])

    assert fake.calls("chat.postMessage")[0]["metadata"] == metadata  # JSON body, decoded
    client.chat_update(channel=CHANNEL, ts=first["ts"], text="Approved")  # text alone drops the blocks
    [card, reply] = fake.messages(CHANNEL)
    assert card["text"] == "Approved" and "blocks" not in card and card["metadata"] == metadata
    assert card["reply_count"] == 1 and reply["thread_ts"] == first["ts"]

    plain = client.conversations_history(channel=CHANNEL, limit=10)
    assert [m["ts"] for m in plain["messages"]] == [first["ts"]]  # replies are not in history
    assert "metadata" not in plain["messages"][0]
    rich = client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert rich["messages"][0]["metadata"] == metadata
    assert fake.calls("conversations.history")[-1]["include_all_metadata"] == "1"  # form body, as sent

    link = client.chat_getPermalink(channel=CHANNEL, message_ts=first["ts"])
    assert link["permalink"] == f"https://example.slack.com/archives/{CHANNEL}/p{first['ts'].replace('.', '')}"

    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"


def test_history_paging_and_oldest() -> None:
    with FakeSlack(start_ts=1_700_000_000) as fake:
        client = WebClient(token=fake.bot_token, base_url=fake.api_url)
        posted = [client.chat_postMessage(channel=CHANNEL, text=str(i))["ts"] for i in range(5)]
        assert posted[0] == "1700000000.000100"
        page = client.conversations_history(channel=CHANNEL, limit=2)
        assert [m["text"] for m in page["messages"]] == ["4", "3"] and page["has_more"]
        rest = client.conversations_history(channel=CHANNEL, cursor=page["response_metadata"]["next_cursor"])
        assert [m["text"] for m in rest["messages"]] == ["2", "1", "0"] and not rest["has_more"]
        newer = client.conversations_history(channel=CHANNEL, oldest=posted[2])
        assert [m["text"] for m in newer["messages"]] == ["4", "3"]


def test_form_bodies_are_normalised_and_token_rules(fake: FakeSlack) -> None:
    blocks = [{"type": "divider"}]
    with httpx.Client(base_url=fake.api_url) as http:
        answer = http.post(
            "chat.postMessage",
            data={"token": fake.bot_token, "channel": CHANNEL, "text": "hi", "blocks": json.dumps(blocks)},
        ).json()
        assert answer["ok"] and answer["message"]["blocks"] == blocks
        assert fake.calls("chat.postMessage")[0] == {"channel": CHANNEL, "text": "hi", "blocks": blocks}
        in_json = http.post("chat.postMessage", json={"token": fake.bot_token, "channel": CHANNEL, "text": "x"})
        assert in_json.json() == {"ok": False, "error": "not_authed"}  # JSON needs the header


def test_dm_usergroups_users_ephemeral(fake: FakeSlack, client: WebClient) -> None:
    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    assert dm.startswith("D") and client.conversations_open(users=["U0ALICE"])["channel"]["id"] == dm
    assert fake.dm_channel("U0ALICE") == dm
    posted = client.chat_postMessage(channel="U0ALICE", text="to a user id")
    assert posted["channel"] == dm and fake.messages(dm)[0]["text"] == "to a user id"

    fake.set_usergroup("S0APPROVERS", ["U0ALICE", "U0BOB"])
    assert client.usergroups_users_list(usergroup="S0APPROVERS")["users"] == ["U0ALICE", "U0BOB"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        client.usergroups_users_list(usergroup="S0NOPE")

    profile = client.users_info(user="U0ALICE")["user"]["profile"]
    assert profile["display_name"] == "alice" and profile["real_name"] == "Alice A"
    with pytest.raises(SlackApiError, match="user_not_found"):
        client.users_info(user="U0NOBODY")

    ephemeral = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    assert ephemeral["message_ts"] and fake.ephemerals("U0ALICE")[0]["text"] == "only you"
    assert fake.messages(CHANNEL) == []


def test_views(fake: FakeSlack, client: WebClient) -> None:
    requests = SlackRequests(SECRET)
    modal = {"type": "modal", "callback_id": "compose", "title": {"type": "plain_text", "text": "Announce"}}
    trigger = requests.trigger_id()
    opened = client.views_open(trigger_id=trigger, view=modal)["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "compose"
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        client.views_open(trigger_id=trigger, view=modal)
    stale = f"{int((time.time() - 10) * 1000)}.1.abc"
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        client.views_open(trigger_id=stale, view=modal)
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view={**modal, "callback_id": "v2"})
    assert updated["view"]["callback_id"] == "v2" and fake.views()[0]["callback_id"] == "v2"
    with pytest.raises(SlackApiError, match="hash_conflict"):
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal)
    client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": []})
    assert fake.home_view("U0ALICE")["type"] == "home"  # type: ignore[index]


def test_files_upload_v2_shares_into_a_dm(fake: FakeSlack, client: WebClient) -> None:
    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    done = client.files_upload_v2(
        channel=dm, content="seq,actor\n1,alice\n", filename="audit.csv", title="Audit", initial_comment="Here"
    )
    assert done["file"]["id"].startswith("F")
    [uploaded] = fake.uploaded_files()
    assert uploaded["bytes"] == b"seq,actor\n1,alice\n" and uploaded["filename"] == "audit.csv"
    assert uploaded["channel"] == dm and uploaded["initial_comment"] == "Here" and uploaded["completed"]
    assert fake.calls("files.getUploadURLExternal")[0]["length"] == str(len(uploaded["bytes"]))
    assert fake.calls(UPLOAD)[0]["file_id"] == uploaded["id"]
    [shared] = fake.messages(dm)
    assert shared["text"] == "Here" and shared["files"][0]["id"] == uploaded["id"]


def test_multipart_upload(fake: FakeSlack, client: WebClient) -> None:
    target = client.files_getUploadURLExternal(filename="a.csv", length=3)
    with httpx.Client() as http:
        assert http.post(target["upload_url"], files={"file": ("a.csv", b"a,b")}).status_code == 200
    assert fake.uploaded_files()[0]["bytes"] == b"a,b"
    with pytest.raises(SlackApiError, match="file_not_found"):
        client.files_completeUploadExternal(files=[{"id": "F0MISSING", "title": "x"}], channel_id=CHANNEL)


def test_scripted_failures(fake: FakeSlack, client: WebClient) -> None:
    fake.fail("chat.postMessage")
    with pytest.raises(SlackApiError) as limited:
        client.chat_postMessage(channel=CHANNEL, text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response["error"] == "ratelimited" and limited.value.response.headers["Retry-After"] == "1"

    fake.fail("chat.postMessage", headers={"Retry-After": "0"})
    retrying = WebClient(token=fake.bot_token, base_url=fake.api_url)
    retrying.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    assert retrying.chat_postMessage(channel=CHANNEL, text="after retry")["ok"]

    fake.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.chat_postMessage(channel=CHANNEL, text="x")
    assert len(fake.calls("chat.postMessage")) == 4


def test_hang_still_stores_the_message(fake: FakeSlack) -> None:
    fake.hang("chat.postMessage", 1.5)
    impatient = WebClient(token=fake.bot_token, base_url=fake.api_url, timeout=0.3)  # type: ignore[arg-type]  # urllib takes floats
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        impatient.chat_postMessage(channel=CHANNEL, text="slow")
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["slow"]


# --------------------------------------------------------------------------- the request builders


def test_signatures_verify_with_slack_sdk() -> None:
    requests = SlackRequests(SECRET)
    verifier = SignatureVerifier(SECRET)
    body, headers = requests.slash_command(user_id="U0ALICE", text="hello world")
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(*requests.slash_command(user_id="U0ALICE", secret="wrong"))
    stale = requests.slash_command(user_id="U0ALICE", timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(*stale)

    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    assert list(form) == [
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
        "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    ]  # fmt: skip
    assert form["text"] == "hello world" and form["command"] == "/announce"
    other = requests.slash_command(user_id="U0ALICE")
    assert parse_qs(other[0].decode())["trigger_id"] != [form["trigger_id"]]


# --------------------------------------------------------------------------- a real Bolt app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass


@pytest.fixture
def bolt(fake: FakeSlack) -> Iterator[tuple[str, App, dict[str, Any]]]:
    """A Bolt app on the fake Web API, served by wsgiref through Bolt's WSGI adapter."""
    app = App(signing_secret=SECRET, client=WebClient(token=fake.bot_token, base_url=fake.api_url))
    seen: dict[str, Any] = {}

    @app.command("/announce")
    def announce(ack: Any, command: dict[str, Any], client: WebClient) -> None:
        ack()
        seen["command"] = command
        client.views_open(trigger_id=command["trigger_id"], view={"type": "modal", "callback_id": "compose"})

    @app.action("approve")
    def approve(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved")

    @app.view("compose")
    def compose(ack: Any, view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        seen["values"] = values
        if not values["text"]["text"]["value"]:
            ack(response_action="errors", errors={"text": "Write something"})
        else:
            ack()

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": []})

    server: WSGIServer = make_server("127.0.0.1", 0, SlackRequestHandler(app), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/slack/events", app, seen
    finally:
        server.shutdown()
        server.server_close()


def test_bolt_accepts_built_requests(fake: FakeSlack, bolt: tuple[str, App, dict[str, Any]]) -> None:
    url, _, seen = bolt
    requests = SlackRequests(SECRET, response_url_base=fake.url)
    with httpx.Client(timeout=10) as http:
        assert requests.post(http, url, requests.slash_command(user_id="U0ALICE", text="hi")).status_code == 200
        fake.wait_for_calls("views.open")
        assert seen["command"]["text"] == "hi" and seen["command"]["response_url"].startswith(fake.url)

        card = WebClient(token=fake.bot_token, base_url=fake.api_url).chat_postMessage(channel=CHANNEL, text="Draft")
        click = requests.block_action(
            user_id="U0ALICE", action_id="approve", value="7", channel_id=CHANNEL, message_ts=card["ts"]
        )
        assert requests.post(http, url, click).status_code == 200
        fake.wait_for_calls("chat.update")
        assert fake.messages(CHANNEL)[0]["text"] == "Approved"

        empty = requests.view_submission(
            user_id="U0ALICE", callback_id="compose", values={"text": {"text": plain_text("")}}
        )
        answer = requests.post(http, url, empty)
        assert answer.status_code == 200
        assert answer.json() == {"response_action": "errors", "errors": {"text": "Write something"}}
        values = {
            "text": {"text": plain_text("Back up")},
            "destinations": {"destinations": checkboxes("slack", "mastodon")},
            "channels": {"channels": multi_static_select("C1")},
            "status": {"status": static_select("resolved")},
        }
        full = requests.view_submission(user_id="U0ALICE", callback_id="compose", values=values)
        assert requests.post(http, url, full).status_code == 200
        assert seen["values"]["destinations"]["destinations"]["selected_options"][1]["value"] == "mastodon"

        assert requests.post(http, url, requests.app_home_opened(user_id="U0ALICE")).status_code == 200
        fake.wait_for_calls("views.publish")

        handshake = requests.post(http, url, requests.url_verification("c-123"))
        assert handshake.status_code == 200 and handshake.json() == {"challenge": "c-123"}


def test_bolt_rejects_bad_signatures(fake: FakeSlack, bolt: tuple[str, App, dict[str, Any]]) -> None:
    url, _, seen = bolt
    requests = SlackRequests(SECRET)
    with httpx.Client(timeout=10) as http:
        wrong = requests.slash_command(user_id="U0ALICE", secret="not-the-secret")
        assert requests.post(http, url, wrong).status_code == 401
        stale = requests.slash_command(user_id="U0ALICE", timestamp=int(time.time()) - 6 * 60)
        assert requests.post(http, url, stale).status_code == 401
    assert "command" not in seen and fake.calls("views.open") == []
