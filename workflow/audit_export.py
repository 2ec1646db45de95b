"""`/announce audit [since] [until] [csv|jsonl]`: the audit log as a file in the requester's DM.

The command answers at once: a usage error, a refusal, or "Preparing your export…". The export
itself runs on this object's own one-thread pool, never on the request thread or Bolt's
listener pool (so a long export cannot delay a click's work). It streams into a temporary file
(memory stays flat), then `conversations.open` + `files_upload_v2` (files.getUploadURLExternal,
the upload, files.completeUploadExternal) put it in the requester's DM with a comment giving the
row count, the time range and the chain head. Large files take the same three steps with the
body streamed from disk, since files_upload_v2 reads the whole file into memory. A failure is
told to the requester (DM, else the command's response_url), never dropped. Exports and refused
attempts are themselves audit events.

Who may export: the users and user groups in [audit].readers, and the approvers listed in
[approval].approvers. See `may_read` for why an empty approver list grants nothing.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from workflow import audit, store
from workflow.clock import Clock
from workflow.db import transaction
from workflow.errors import Refusal
from workflow.service import Announcements
from workflow.web import BadQuery, parse_moment

log = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
DEFAULT_DAYS = 30
USAGE = (
    "Usage: `/announce audit [since] [until] [csv|jsonl]`. `since` and `until` are dates (2026-11-01), "
    "times (2026-11-01T14:00Z, UTC unless they say otherwise) or ages (7d, 12h, 30m); a bare date as "
    f"`until` includes that day. Default: the last {DEFAULT_DAYS} days, as CSV. Example: `/announce audit 7d jsonl`.\n"
    "(To draft an announcement that starts with the word audit, run `/announce` alone and type it in the form.)"
)
STREAM_ABOVE = 8 * 1024 * 1024  # bytes: larger files are uploaded from disk without reading them whole
SLACK_FILE_LIMIT = 1024**3  # files.getUploadURLExternal takes files up to 1 GB
Respond = Callable[..., Any]


@dataclass(frozen=True)
class AuditRequest:
    since: datetime
    until: datetime | None  # None: up to the chain head when the export starts
    format: str

    def span(self) -> str:
        if self.until is None:
            return f"since {self.since:%Y-%m-%d %H:%M} UTC"
        return f"{self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC"


def parse_request(words: Sequence[str], *, now: datetime) -> AuditRequest:
    """The words after `audit`: up to two moments (since, until) and a format, in any order."""
    formats = {w.lower() for w in words if w.lower() in FORMATS}
    moments = [w for w in words if w.lower() not in FORMATS]
    if len(formats) > 1:
        raise BadQuery("Choose one format: csv or jsonl.")
    if len(moments) > 2:
        raise BadQuery(f"Too many values ({' '.join(moments)}): give at most a since and an until.")
    since = (parse_moment(moments[0], now=now) if moments else now - timedelta(days=DEFAULT_DAYS)).astimezone(UTC)
    until = parse_moment(moments[1], now=now, end_of_day=True).astimezone(UTC) if len(moments) == 2 else None
    if until is not None and until <= since:
        raise BadQuery(f"`until` ({until:%Y-%m-%d %H:%M} UTC) must be after `since` ({since:%Y-%m-%d %H:%M} UTC).")
    return AuditRequest(since=since, until=until, format=formats.pop() if formats else "csv")


class AuditExports:
    def __init__(
        self,
        *,
        engine: Engine,
        client: WebClient,
        service: Announcements,
        readers: Sequence[str],
        clock: Clock,
        stream_above: int = STREAM_ABOVE,
        upload_timeout: float = 300.0,
    ) -> None:
        self.engine = engine
        self.client = client
        self.service = service
        self.readers = tuple(readers)
        self.clock = clock
        self.stream_above = stream_above
        self.upload_timeout = upload_timeout
        # One export at a time: each is a full scan and a file on disk; more queue up behind it.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-export")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Who may read ----------------------------------------------------------------------------

    def may_read(self, user_id: str) -> bool:
        """[audit].readers (people, or members of user groups), and the listed approvers.

        With [approval].approvers empty, "anyone but the author may approve": that is a rule for
        approving one text, not a list of people trusted with the whole log (every draft, rejected
        ones included, every reviewer's reasons). So then only [audit].readers may export, and
        nobody until someone is listed: the safe default for a record meant for auditors.
        Group lookups may raise Refusal (Slack could not be asked).
        """
        if user_id in self.readers:
            return True
        if any(user_id in self.service.directory.members(g) for g in self.readers if g.startswith("S")):
            return True
        return bool(self.service.approval.approvers) and self.service.is_approver(user_id)

    def refusal(self) -> str:
        who = ", ".join(f"<!subteam^{r}>" if r.startswith("S") else f"<@{r}>" for r in self.readers)
        if self.service.approval.approvers:
            return (
                "Only the approvers and the readers in announce.toml may export the audit log: "
                f"{self.service.approver_names()}{', ' + who if who else ''}."
            )
        if who:
            return f"Only the audit readers in announce.toml may export the audit log: {who}."
        return (
            "Nobody may export the audit log from Slack yet: list user or user-group ids in "
            "[audit].readers (or [approval].approvers) in announce.toml."
        )

    # The command -----------------------------------------------------------------------------

    def request(self, *, user_id: str, words: Sequence[str], respond: Respond | None = None) -> str:
        """Answer `/announce audit …` (the returned text is the command's ephemeral ack) and,
        when allowed, start the export in the background."""
        now = self.clock.now()
        try:
            wanted = parse_request(words, now=now)
        except BadQuery as exc:
            return f"{exc}\n{USAGE}"
        try:
            allowed = self.may_read(user_id)
        except Refusal as exc:
            return str(exc)
        if not allowed:
            self._submit(self._record_refusal, user_id, wanted)
            return self.refusal()
        self._submit(self.run, user_id, wanted, respond)
        return (
            f"Preparing your export… ({wanted.format.upper()}, {wanted.span()}). "
            "It will arrive as a file in a DM from me."
        )

    def _submit(self, fn: Callable[..., None], *args: Any) -> Future[None]:
        return self._pool.submit(fn, *args)

    # The export (on the pool) ----------------------------------------------------------------

    def run(self, user_id: str, wanted: AuditRequest, respond: Respond | None = None) -> None:
        try:
            self._export(user_id, wanted)
        except Exception as exc:  # told to the requester, never dropped
            log.exception("audit export for %s failed", user_id)
            self._tell(
                user_id,
                f"Your audit export ({wanted.span()}) failed: {_reason(exc)}. Nothing was sent. "
                "Please try again; `python app.py audit export` and GET /audit/export work too.",
                respond,
            )

    def _export(self, user_id: str, wanted: AuditRequest) -> None:
        export = audit.Export(self.engine, wanted.format, audit.ExportFilter(since=wanted.since, until=wanted.until))
        until = wanted.until or self.clock.now()
        filename = f"audit-{wanted.since:%Y%m%d}-{until:%Y%m%d}.{wanted.format}"
        with tempfile.TemporaryDirectory(prefix="count-to-ten-audit-") as directory:
            path = Path(directory) / filename
            with path.open("wb") as out:
                for chunk in export.chunks():
                    out.write(chunk)
            size = path.stat().st_size
            if size > SLACK_FILE_LIMIT:
                raise ExportTooLarge(size)
            channel = str(self.client.conversations_open(users=user_id)["channel"]["id"])
            comment = _comment(wanted, export)
            if export.rows == 0:
                self.client.chat_postMessage(channel=channel, text=comment)  # no empty file
            else:
                title = f"Audit log {wanted.span()}"
                self._upload(path, channel=channel, title=title, comment=comment, size=size)
        self._record(
            user_id,
            "audit_export",
            {
                "format": wanted.format,
                "since": wanted.since.isoformat(),
                "until": wanted.until.isoformat() if wanted.until else None,
                "rows": export.rows,
                "head_seq": export.head_seq,
                "head_hash": export.head_hash,
                "destination": "slack-dm",
            },
        )

    def _record(self, user_id: str, action: str, data: dict[str, Any]) -> None:
        """One audit event by this person, with their display name at the time."""
        name = self.service.directory.display_name(user_id)
        with transaction(self.engine) as session:
            audit.name_actor(session, user_id, name)
            store.record(
                session=session, actor=user_id, action=action, now=self.clock.now(), announcement_id=None, data=data
            )

    def _upload(self, path: Path, *, channel: str, title: str, comment: str, size: int) -> None:
        if size <= self.stream_above:
            self.client.files_upload_v2(
                channel=channel, file=str(path), filename=path.name, title=title, initial_comment=comment
            )
            return
        # files_upload_v2 reads the whole file into memory; these are its three steps with the
        # body streamed from disk.
        ticket = self.client.files_getUploadURLExternal(filename=path.name, length=size)
        with path.open("rb") as body:
            answer = httpx.post(
                str(ticket["upload_url"]),
                content=iter(lambda: body.read(1024 * 1024), b""),
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                timeout=httpx.Timeout(self.upload_timeout, connect=10.0),
            )
        if answer.status_code != 200:
            raise UploadFailed(f"Slack's upload server answered HTTP {answer.status_code}")
        self.client.files_completeUploadExternal(
            files=[{"id": str(ticket["file_id"]), "title": title}], channel_id=channel, initial_comment=comment
        )

    def _record_refusal(self, user_id: str, wanted: AuditRequest) -> None:
        try:
            self._record(user_id, "refused", {"attempted": "audit_export", "reason": "not an approver or audit reader"})
        except Exception:  # the refusal itself was answered; losing its record is logged
            log.exception("could not record the refused audit export by %s", user_id)

    def _tell(self, user_id: str, text: str, respond: Respond | None) -> None:
        try:
            channel = str(self.client.conversations_open(users=user_id)["channel"]["id"])
            self.client.chat_postMessage(channel=channel, text=text)
            return
        except Exception as exc:  # no DM: the command's response_url is the other way to reach them
            log.warning("could not DM %s about their audit export: %s", user_id, _reason(exc))
        if respond is not None:
            try:
                respond(text=text, response_type="ephemeral", replace_original=False)
                return
            except Exception as exc:  # nothing else can reach them; it is in the log
                log.error("could not tell %s that their audit export failed: %s", user_id, _reason(exc))


class ExportTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"the file would be {size / 1024**3:.1f} GB, more than Slack takes (1 GB); "
            "choose a shorter range, or use `python app.py audit export`"
        )


class UploadFailed(Exception):
    pass


def _comment(wanted: AuditRequest, export: audit.Export) -> str:
    rows = "no events" if export.rows == 0 else f"{export.rows} event{'s' if export.rows != 1 else ''}"
    seqs = f" (seq {export.first_seq}–{export.last_seq})" if export.rows else ""
    return (
        f"Audit log {wanted.span()}: {rows}{seqs}, {wanted.format.upper()}.\n"
        f"Chain head when exported: seq {export.head_seq}, hash `{export.head_hash}`. Two exports agree "
        "on everything up to the same head; `python app.py audit verify` recomputes the whole chain."
    )


def _reason(exc: Exception) -> str:
    """Words for the requester: Slack's error code, or ours; anything else stays in the log."""
    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error', 'an error')}"
    if isinstance(exc, httpx.HTTPError):
        return f"the upload did not go through ({type(exc).__name__})"
    if isinstance(exc, ExportTooLarge | UploadFailed):
        return str(exc)
    return f"an error on our side ({type(exc).__name__}, logged)"
