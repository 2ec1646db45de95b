"""Getting the audit log, end to end: `/announce audit` over signed Slack requests into the app
served by waitress, answered at once and delivered later as a file in the requester's DM through
the fake Slack Web API's three-step upload; `GET /audit/export` with its bearer token; and
`python app.py audit export|verify`. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, text

import app as app_module
from tests.fakes.server import Response
from tests.fakes.slack import UPLOAD, FakeSlack
from tests.fakes.webhook import SECRET, FakeWebhookReceiver
from tests.harness import ALICE, AUTHOR, BOB, CAROL, MALLORY, AppUnderTest, config, wait_until
from workflow import audit
from workflow.audit_export import AuditExports, parse_request

TOKEN = "audit-export-token-0123456789"
TEXT = "Logins are failing for some EU customers, we are rolling back. Next update 14:30 UTC."
NAMES = {AUTHOR: "Ann Author", ALICE: "Alice Approver", BOB: "Bob", CAROL: "Carol Auditor", MALLORY: "Mallory"}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(usergroups={"S0AUDITORS": [CAROL]}) as fake:
        for user, name in NAMES.items():
            fake.add_user(user, display_name=name)
        yield fake


def make_app(
    tmp_path: Path,
    engine: Engine,
    slack: FakeSlack,
    *,
    approvers: list[str],
    readers: list[str],
    env: dict[str, str] | None = None,
    destinations: str = "",
) -> AppUnderTest:
    destinations = destinations or f'[[destination]]\nname = "log"\ntype = "log"\npath = "{tmp_path / "out.jsonl"}"\n'
    listed = ", ".join(f'"{r}"' for r in readers)
    return AppUnderTest(
        tmp_path=tmp_path,
        engine=engine,
        slack=slack,
        toml=config(destinations, approvers=approvers) + f"\n[audit]\nreaders = [{listed}]\n",
        env=env,
    )


@pytest.fixture
def app(tmp_path: Path, engine: Engine, slack: FakeSlack) -> Iterator[AppUnderTest]:
    running = make_app(
        tmp_path, engine, slack, approvers=[ALICE], readers=["S0AUDITORS"], env={"AUDIT_EXPORT_TOKEN": TOKEN}
    )
    yield running
    running.close()


def publish(app: AppUnderTest, text_: str = TEXT) -> int:
    aid = app.submit(AUTHOR, text_, ["log"])
    app.click(ALICE, aid, "approve")
    app.wait_state(aid, "cooling_off")
    app.tick(11)
    app.wait_state(aid, "published")
    return aid


def command(app: AppUnderTest, user: str, text_: str) -> str:
    response = app.post(app.requests.slash_command(user_id=user, text=text_))
    assert response.status_code == 200, response.text
    return response.text  # Bolt answers a command's ack(text=...) as plain text: shown only to the user


def events(engine: Engine) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit.export_jsonl(engine)]


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def completed_files(slack: FakeSlack) -> list[dict[str, Any]]:
    return [f for f in slack.uploaded_files() if f["completed"]]


def exported(engine: Engine) -> list[dict[str, Any]]:
    """Wait for the export's own audit event: the last thing an export does."""
    return wait_until(lambda: [e for e in events(engine) if e["action"] == "audit_export"], what="the export's event")


# /announce audit --------------------------------------------------------------------------------


def test_an_approver_gets_the_log_as_a_csv_file_in_a_dm(app: AppUnderTest, slack: FakeSlack) -> None:
    publish(app)
    now = app.clock.now()
    answer = command(app, ALICE, "audit 7d")
    assert answer.startswith("Preparing your export…") and "CSV" in answer
    (upload,) = wait_until(lambda: completed_files(slack), what="the file in the DM")
    dm = slack.dm_channel(ALICE)
    assert slack.calls("conversations.open")[-1]["users"] == ALICE
    assert upload["channel"] == dm and upload["filename"].endswith(".csv")

    # The three steps of files_upload_v2, in order, for this file.
    (ticket,) = slack.calls("files.getUploadURLExternal")
    assert ticket["filename"] == upload["filename"] and int(ticket["length"]) == len(upload["bytes"])
    (sent,) = slack.calls(UPLOAD)
    assert sent["file_id"] == upload["id"] and sent["bytes"] == upload["bytes"]
    (complete,) = slack.calls("files.completeUploadExternal")
    assert complete["channel_id"] == dm and complete["files"][0]["id"] == upload["id"]
    assert [m for m in slack.messages(dm) if m.get("files")], "shared in the DM"

    rows = csv_rows(upload["bytes"])
    actions = [r["action"] for r in rows]
    assert actions[:3] == ["submit", "approve_final", "release"] and actions[-1] == "delivered"
    assert rows[0]["text"] == TEXT and rows[0]["actor"] == AUTHOR
    assert rows[0]["actor_name"] == NAMES[AUTHOR] and rows[1]["actor_name"] == NAMES[ALICE], "names at the time"
    comment = upload["initial_comment"]
    assert f"{len(rows)} events (seq 1–{len(rows)})" in comment
    assert f"Audit log since {now - timedelta(days=7):%Y-%m-%d %H:%M} UTC: {len(rows)} events" in comment
    assert f"seq {len(rows)}, hash `{rows[-1]['hash']}`" in comment, "the chain head"

    # The export is itself on the record, after the head it reported.
    (last,) = exported(app.engine)
    assert last["actor"] == ALICE and last["actor_name"] == NAMES[ALICE] and last["seq"] == len(rows) + 1
    assert last["data"]["rows"] == len(rows) and last["data"]["head_hash"] == rows[-1]["hash"]
    assert audit.verify(app.engine).ok


def test_a_group_reader_gets_jsonl_and_anyone_else_is_refused(app: AppUnderTest, slack: FakeSlack) -> None:
    publish(app)
    refusal = command(app, MALLORY, "audit")
    assert "Only the approvers and the readers" in refusal and "<!subteam^S0AUDITORS>" in refusal
    refused = wait_until(
        lambda: [e for e in events(app.engine) if e["data"].get("attempted") == "audit_export"], what="the record"
    )
    assert refused[0]["actor"] == MALLORY and refused[0]["action"] == "refused"
    assert slack.uploaded_files() == []
    assert not [c for c in slack.calls("conversations.open") if c.get("users") == MALLORY]

    assert command(app, CAROL, "audit jsonl 30d").startswith("Preparing your export… (JSONL")
    (upload,) = wait_until(lambda: completed_files(slack), what="the file")
    assert upload["channel"] == slack.dm_channel(CAROL) and upload["filename"].endswith(".jsonl")
    lines = [json.loads(line) for line in upload["bytes"].decode().splitlines()]
    assert lines[0]["action"] == "submit" and lines[0]["data"]["text"] == TEXT
    assert list(lines[0]) == list(audit.EXPORT_FIELDS)
    assert exported(app.engine)[0]["actor"] == CAROL


def test_with_no_approver_list_only_readers_may_export(tmp_path: Path, engine: Engine, slack: FakeSlack) -> None:
    """An empty approver list lets anyone but the author approve; it does not open the log to everyone."""
    app = make_app(tmp_path, engine, slack, approvers=[], readers=[])
    try:
        assert "Nobody may export the audit log from Slack yet" in command(app, ALICE, "audit")
    finally:
        app.close()
    app = make_app(tmp_path, engine, slack, approvers=[], readers=[BOB])
    try:
        assert "Only the audit readers in announce.toml" in command(app, ALICE, "audit")
        assert command(app, BOB, "audit").startswith("Preparing your export…")
        wait_until(lambda: slack.messages(slack.dm_channel(BOB)), what="Bob's DM")
        exported(engine)
    finally:
        app.close()


@pytest.mark.parametrize(
    ("words", "says"),
    [
        ("audit yesterday", "'yesterday' is not a date"),
        ("audit 1d 7d", "must be after"),
        ("audit csv jsonl", "Choose one format"),
        ("audit 30d 7d 1d", "Too many values"),
    ],
)
def test_bad_arguments_get_the_usage(app: AppUnderTest, slack: FakeSlack, words: str, says: str) -> None:
    answer = command(app, ALICE, words)
    assert says in answer and "Usage: `/announce audit [since] [until] [csv|jsonl]`" in answer
    assert not slack.calls("views.open"), "no draft modal for a subcommand"
    assert not slack.calls("conversations.open")


def test_no_events_in_range_is_a_message_not_an_empty_file(app: AppUnderTest, slack: FakeSlack) -> None:
    assert command(app, ALICE, "audit 2020-01-01 2020-01-31").startswith("Preparing")
    (message,) = wait_until(lambda: slack.messages(slack.dm_channel(ALICE)), what="the DM")
    assert "Audit log 2020-01-01 00:00 to 2020-02-01 00:00 UTC: no events" in message["text"]
    assert slack.uploaded_files() == []
    assert exported(app.engine)[0]["data"]["rows"] == 0


def test_a_failed_upload_is_told_to_the_requester(app: AppUnderTest, slack: FakeSlack) -> None:
    publish(app)
    slack.fail("files.completeUploadExternal", "internal_error")
    command(app, ALICE, "audit")
    dm = slack.dm_channel(ALICE)
    (told,) = wait_until(lambda: slack.messages(dm), what="the DM saying it failed")
    assert "failed: Slack answered internal_error" in told["text"] and "Nothing was sent" in told["text"]
    assert not [e for e in events(app.engine) if e["action"] == "audit_export"]


def test_without_a_dm_the_failure_comes_back_through_the_response_url(app: AppUnderTest, slack: FakeSlack) -> None:
    publish(app)
    slack.fail("conversations.open", "cannot_dm_bot", times=2)
    command(app, ALICE, "audit")
    (response,) = wait_until(slack.responses, what="the response_url")
    assert response["path"].startswith("/commands/")
    assert "failed: Slack answered cannot_dm_bot" in response["body"]["text"]
    assert response["body"]["response_type"] == "ephemeral"


def test_a_large_file_is_streamed_from_disk(app: AppUnderTest, slack: FakeSlack) -> None:
    publish(app)
    exports = AuditExports(
        engine=app.engine,
        client=WebClient(token=slack.bot_token, base_url=slack.api_url),
        service=app.runtime.service,
        readers=(),
        clock=app.clock,
        stream_above=0,  # every file counts as large
    )
    exports.run(ALICE, parse_request(["jsonl"], now=app.clock.now()))
    (upload,) = completed_files(slack)
    expected = "".join(audit.export_jsonl(app.engine, audit.ExportFilter(upto_seq=upload["bytes"].count(b"\n"))))
    assert upload["bytes"].decode() == expected
    (posted,) = [r for r in slack.requests if r.path.startswith("/upload/")]
    assert posted.headers["content-type"] == "application/octet-stream", "our streamed body, not files_upload_v2's"
    assert int(posted.headers["content-length"]) == len(upload["bytes"])
    assert slack.calls("files.completeUploadExternal")[0]["channel_id"] == slack.dm_channel(ALICE)
    exports.close()


# GET /audit/export ------------------------------------------------------------------------------


def test_http_export_needs_the_bearer_token(app: AppUnderTest) -> None:
    publish(app)
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        refused = app.http.get("/audit/export", headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in refused.text
    response = app.http.get("/audit/export", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv; charset=utf-8")
    assert response.headers.get("transfer-encoding") == "chunked", "streamed, not built in memory"
    rows = csv_rows(response.content)
    seq, head = audit.head(app.engine)
    assert response.headers["x-audit-chain-head"] == head == rows[-1]["hash"]
    assert response.headers["x-audit-chain-seq"] == str(seq) == rows[-1]["seq"]


def test_http_export_filters_and_resumes_by_sequence(app: AppUnderTest) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first_id = publish(app)
    first = app.http.get("/audit/export", params={"format": "jsonl"}, headers=auth)
    pulled = int(first.headers["x-audit-chain-seq"])
    second_id = publish(app, "Maintenance tonight 22:00-23:00 UTC.")
    rest = app.http.get("/audit/export", params={"format": "jsonl", "since": str(pulled)}, headers=auth)
    assert rest.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in rest.text.splitlines()]
    assert lines[0]["seq"] == pulled + 1 and lines[0]["prev_hash"] == first.headers["x-audit-chain-head"]
    assert {line["announcement_id"] for line in lines} == {second_id}
    assert first.content + rest.content == app.http.get("/audit/export?format=jsonl", headers=auth).content

    only = app.http.get("/audit/export", params={"announcement": str(first_id), "since": "1d"}, headers=auth)
    assert {r["announcement_id"] for r in csv_rows(only.content)} == {str(first_id)}
    none = app.http.get("/audit/export", params={"until": "2020-01-01"}, headers=auth)
    assert none.status_code == 200 and none.text == ",".join(audit.EXPORT_FIELDS) + "\r\n"
    for query, says in (
        ("format=xml", "format must be csv or jsonl"),
        ("since=soon", "is not a date"),
        ("seq=1", "unknown parameter"),
    ):
        bad = app.http.get(f"/audit/export?{query}", headers=auth)
        assert bad.status_code == 400 and says in bad.text


def test_http_export_is_off_without_a_token(tmp_path: Path, engine: Engine, slack: FakeSlack) -> None:
    app = make_app(tmp_path, engine, slack, approvers=[ALICE], readers=[])
    try:
        response = app.http.get("/audit/export", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404 and "AUDIT_EXPORT_TOKEN" in response.text
    finally:
        app.close()


# python app.py audit ---------------------------------------------------------------------------


def test_the_command_line_exports_and_verifies(
    app: AppUnderTest, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(app)
    env = {"DATABASE_URL": database_url, "ANNOUNCE_CONFIG": app.env["ANNOUNCE_CONFIG"]}
    out = tmp_path / "audit.jsonl"
    assert app_module.main(["audit", "export", "--format", "jsonl", "--since", "7d", "--output", str(out)], env) == 0
    seq, head = audit.head(app.engine)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == seq and lines[-1]["hash"] == head
    err = capsys.readouterr().err
    assert f"chain head: seq {seq} hash {head}" in err and f"{seq} events (seq 1-{seq})" in err

    assert app_module.main(["audit", "export", "--announcement", "1", "--until", "1d", "--output", str(out)], env) == 0
    assert csv_rows(out.read_bytes()) == []
    assert app_module.main(["audit", "export", "--since", "last week"], env) == 2
    assert "is not a date" in capsys.readouterr().err

    assert app_module.main(["audit", "verify"], env) == 0
    assert f"audit log intact: {seq} events, head {head}" in capsys.readouterr().out
    with app.engine.begin() as conn:
        conn.execute(text("UPDATE auditevent SET data = replace(data, 'Logins', 'Lagins') WHERE seq = 1"))
    assert app_module.main(["audit", "verify", "--workers", "2"], env) == 1
    assert "audit log broken at seq 1: contents changed" in capsys.readouterr().out


# Secrets ---------------------------------------------------------------------------------------


def test_no_secret_enters_the_log(tmp_path: Path, engine: Engine, slack: FakeSlack) -> None:
    """A destination that answers with our own credentials in its error body: the error is
    recorded, the credentials are not."""
    with FakeWebhookReceiver() as receiver:
        url = f"{receiver.url}/hook?token=url-token-0123456789"
        destinations = f'[[destination]]\nname = "partner"\ntype = "webhook"\nurl = "{url}"\nsecret = "{SECRET}"\n'
        app = make_app(
            tmp_path,
            engine,
            slack,
            approvers=[],
            readers=[],
            destinations=destinations,
            env={"AUDIT_EXPORT_TOKEN": TOKEN},
        )
        try:
            receiver.script(Response(500, f"bad signature with {SECRET} for {url}"))
            aid = app.submit(AUTHOR, TEXT, ["partner"])
            app.click(ALICE, aid, "approve")
            app.wait_state(aid, "cooling_off")
            app.tick(11)
            wait_until(lambda: [e for e in events(engine) if e["action"] == "delivery"], what="the failed attempt")
            secrets = app.settings.secret_values()
            assert SECRET in secrets and url in secrets and TOKEN in secrets
            with engine.connect() as conn:
                stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM auditevent")) for v in row)
            assert "HTTP 500" in stored, "the error itself is on the record"
            assert [s for s in secrets if s in stored] == []
            exported = app.http.get("/audit/export", headers={"Authorization": f"Bearer {TOKEN}"}).text
            assert [s for s in secrets if s in exported] == []
        finally:
            app.close()
