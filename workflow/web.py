"""The HTTP surface as one WSGI app: `POST /slack/events` (handed to Bolt), `GET /healthz`,
and `GET /audit/export` (streamed, behind a bearer token).

Plain WSGI, so any production server runs it; `app.py` serves it with waitress.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Engine, text

from workflow import audit

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BadQuery(ValueError):
    pass


def parse_moment(value: str, *, now: datetime, end_of_day: bool = False) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or an age like 7d, 12h, 30m before `now`.

    With `end_of_day`, a bare date means the end of that day: "until 2026-11-24" includes the 24th.
    """
    value = value.strip()
    units = {"d": "days", "h": "hours", "m": "minutes"}
    try:
        if len(value) > 1 and value[-1] in units and value[:-1].isdigit():
            return now - timedelta(**{units[value[-1]]: int(value[:-1])})
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError):
        raise BadQuery(
            f"{value!r} is not a date (2026-11-24), a time (2026-11-24T14:00:00Z) or an age (7d, 12h, 30m)"
        ) from None
    if end_of_day and len(value) == 10:  # 2026-11-24: a whole day
        moment += timedelta(days=1)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


EXPORT_QUERY = frozenset({"format", "since", "until", "announcement"})


def export_filter(query: dict[str, str], *, now: datetime) -> audit.ExportFilter:
    """`since`: a time, an age, or a sequence number to resume after (what the last export's
    X-Audit-Chain-Seq said); `until`: a time or an age (a bare date includes that day);
    `announcement`: one announcement's events."""
    unknown = sorted(set(query) - EXPORT_QUERY)
    if unknown:
        raise BadQuery(f"unknown parameter {', '.join(unknown)}; expected {', '.join(sorted(EXPORT_QUERY))}")
    since = query.get("since", "").strip()
    since_seq = None
    since_at = None
    if since.isdigit():
        since_seq = int(since)  # a sequence number: resume after the last row already pulled
    elif since:
        since_at = parse_moment(since, now=now)
    until = parse_moment(query["until"], now=now, end_of_day=True) if query.get("until", "").strip() else None
    if since_at and until and until <= since_at:
        raise BadQuery(f"until ({until:%Y-%m-%d %H:%M} UTC) must be after since ({since_at:%Y-%m-%d %H:%M} UTC)")
    announcement = query.get("announcement", "").strip()
    if announcement and not announcement.isdigit():
        raise BadQuery(f"announcement must be a number, got {announcement!r}")
    return audit.ExportFilter(
        since=since_at, until=until, since_seq=since_seq, announcement_id=int(announcement) if announcement else None
    )


def make_wsgi(
    *, engine: Engine, slack: WSGIApp | None, audit_token: str | None, now: Callable[[], datetime]
) -> WSGIApp:
    def respond(
        start_response: Callable[..., Any], status: str, body: str, ctype: str = "text/plain; charset=utf-8"
    ) -> list[bytes]:
        payload = body.encode()
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(payload)))])
        return [payload]

    def healthz(start_response: Callable[..., Any]) -> list[bytes]:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any database failure is "unhealthy", with its kind, no details
            log.warning("health check: database unreachable: %s", type(exc).__name__)
            return respond(start_response, "503 Service Unavailable", f"database unreachable ({type(exc).__name__})\n")
        return respond(start_response, "200 OK", "ok\n")

    def export(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not audit_token:
            return respond(start_response, "404 Not Found", "audit export over HTTP is off: set AUDIT_EXPORT_TOKEN\n")
        scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        # Constant time in the token's content: compare_digest on bytes, always run, whatever was sent.
        token_matches = hmac.compare_digest(given.strip().encode(), audit_token.encode())
        if not (token_matches and scheme.lower() == "bearer"):
            log.warning("audit export refused: %s bearer token", "wrong" if given else "no")
            payload = b"missing or wrong bearer token\n"
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(payload))),
                    ("WWW-Authenticate", 'Bearer realm="audit"'),
                ],
            )
            return [payload]
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        fmt = query.get("format", "csv")
        if fmt not in audit.EXPORTERS:
            return respond(start_response, "400 Bad Request", "format must be csv or jsonl\n")
        try:
            flt = export_filter(query, now=now())
        except BadQuery as exc:
            return respond(start_response, "400 Bad Request", f"{exc}\n")
        # One process: this is a threaded server (workers would fork it). The head is read now and
        # the rows stop there, so the header describes the body exactly.
        run = audit.Export(engine, fmt, flt)
        ctype = "text/csv; charset=utf-8; header=present" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
        start_response(
            "200 OK",
            [
                ("Content-Type", ctype),
                ("Content-Disposition", f'attachment; filename="audit-{run.head_seq}.{fmt}"'),
                ("Cache-Control", "no-store"),
                ("X-Audit-Chain-Head", run.head_hash),
                ("X-Audit-Chain-Seq", str(run.head_seq)),
            ],
        )
        log.info("audit export over HTTP: %s %s, chain head seq %s", fmt, query, run.head_seq)
        return _grouped(run.chunks())

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in {"GET", "HEAD"}:
            return healthz(start_response)
        if path == "/audit/export" and method == "GET":
            return export(environ, start_response)
        if path == "/slack/events":
            if slack is None:
                return respond(start_response, "404 Not Found", "this app runs in Socket Mode\n")
            if method != "POST":
                return respond(start_response, "405 Method Not Allowed", "POST only\n")
            try:
                return slack(environ, start_response)
            except ValueError:
                # Bolt parses the body before it checks the signature; a body that is not the
                # JSON Slack sends is refused before anything can act on it.
                return respond(start_response, "400 Bad Request", "malformed Slack payload\n")
        return respond(start_response, "404 Not Found", "not found\n")

    return app


def _grouped(chunks: Iterator[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """At least ~64 KB per write (the CSV header alone is tiny); batches of rows pass as they are."""
    buffer: list[bytes] = []
    length = 0
    for chunk in chunks:
        buffer.append(chunk)
        length += len(chunk)
        if length >= size:
            yield b"".join(buffer) if len(buffer) > 1 else buffer[0]
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)
