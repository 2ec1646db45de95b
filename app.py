"""Count to Ten: composition root and command line. Wires; decides nothing.

python app.py            migrate, then serve HTTP (waitress) and run the worker
python app.py web        HTTP only          python app.py worker    worker only
python app.py migrate    python app.py check (settings, Slack token, destinations)
python app.py audit export [--format csv|jsonl] [--since] [--until] [--announcement] [--output] [--workers N]
python app.py audit verify [--workers N]
python app.py checks [--lang en|it] [--json] < draft.txt
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workflow import audit, checks
from workflow.clock import Clock, SystemClock
from workflow.db import make_engine, migrate, missing_migrations
from workflow.errors import SettingsError
from workflow.redact import Redactor
from workflow.settings import Settings, load_settings, read_checks_table
from workflow.web import BadQuery, export_filter, make_wsgi

# The serving graph (Slack, HTTP clients, destinations, the worker) is imported where it is
# built: `python app.py audit ...` and `checks` start in three quarters of the time.
if TYPE_CHECKING:
    import httpx
    from slack_sdk import WebClient
    from sqlalchemy import Engine

    from workflow.outbox import Worker
    from workflow.service import Announcements
    from workflow.slack_ui import SlackUI

log = logging.getLogger("count_to_ten")
WEB_THREADS = 16


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    service: Announcements
    ui: SlackUI
    worker: Worker
    bolt: Any  # slack_bolt.App; typed loosely so only listeners.py imports slack_bolt
    wsgi: Any


def slack_client(settings: Settings) -> WebClient:
    from slack_sdk import WebClient  # noqa: PLC0415 - see the imports

    return WebClient(token=settings.bot_token, base_url=settings.slack_api_url, timeout=15)


def build(
    settings: Settings, *, clock: Clock, engine: Engine | None = None, http_timeout: httpx.Timeout | None = None
) -> Runtime:
    """Everything the app is made of, connected. Tests call this with a ManualClock and short timeouts."""
    import httpx  # noqa: PLC0415 - see the imports
    from slack_sdk import WebClient  # noqa: PLC0415

    from workflow import destinations, listeners  # noqa: PLC0415
    from workflow.audit_export import AuditExports  # noqa: PLC0415
    from workflow.destinations.http import DEFAULT_TIMEOUT  # noqa: PLC0415
    from workflow.outbox import Worker  # noqa: PLC0415
    from workflow.service import Announcements  # noqa: PLC0415
    from workflow.slack_ui import SlackDirectory, SlackUI  # noqa: PLC0415

    http_timeout = http_timeout or DEFAULT_TIMEOUT
    engine = engine or make_engine(settings.database_url)
    client = slack_client(settings)
    # Destinations get their own Slack client without slack_sdk's retry-on-connection-error:
    # the outbox decides about retries, and a blind retry of chat.postMessage could post twice.
    publisher = WebClient(
        token=settings.bot_token,
        base_url=settings.slack_api_url,
        timeout=int(http_timeout.read or 15),
        retry_handlers=[],
    )
    http = httpx.Client(timeout=http_timeout, follow_redirects=False, headers={"user-agent": "count-to-ten/0.1"})
    adapters = destinations.build(settings.destinations, http=http, slack=publisher, clock=clock)
    checks_config, problems = checks.load_config(settings.checks)
    if problems:
        raise SettingsError(problems)
    service = Announcements(
        engine=engine,
        approval=settings.approval,
        destinations=adapters,
        destination_settings=settings.destinations,
        directory=SlackDirectory(client),
        checks_config=checks_config,
    )
    ui = SlackUI(client=client, service=service, engine=engine)
    worker = Worker(
        engine=engine,
        clock=clock,
        approval=settings.approval,
        destinations=adapters,
        destination_settings=settings.destinations,
        on_change=ui.refresh,
        redact=Redactor(settings.secret_values()),
        stale_cards=ui.stale_cards,
    )
    bolt = listeners.create_app(settings, client=client)
    audit_exports = AuditExports(
        engine=engine, client=client, service=service, readers=settings.audit.readers, clock=clock
    )
    listeners.register(bolt, service=service, ui=ui, clock=clock, audit_exports=audit_exports)
    slack_wsgi = None if settings.socket_mode else listeners.wsgi_handler(bolt)
    wsgi = make_wsgi(engine=engine, slack=slack_wsgi, audit_token=settings.audit_export_token, now=clock.now)
    return Runtime(settings, engine, service, ui, worker, bolt, wsgi)


def serve(runtime: Runtime, *, web: bool, worker: bool) -> None:
    import waitress  # noqa: PLC0415 - only the serving commands need it

    from workflow import listeners  # noqa: PLC0415 - see the imports

    stop = threading.Event()
    threads: list[threading.Thread] = []
    if worker:
        threads.append(threading.Thread(target=runtime.worker.run_forever, args=(stop,), name="worker"))
    server = None
    if web:
        server = waitress.create_server(runtime.wsgi, host="0.0.0.0", port=runtime.settings.port, threads=WEB_THREADS)  # noqa: S104 - a server
        log.info("listening on :%s", runtime.settings.port)
    if runtime.settings.socket_mode:
        app_token = runtime.settings.app_token or ""
        threads.append(
            threading.Thread(
                target=listeners.start_socket_mode, args=(runtime.bolt, app_token), daemon=True, name="socket"
            )
        )

    def shutdown(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()
        if server is not None:
            server.close()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for thread in threads:
        thread.start()
    if server is not None:
        try:
            server.run()
        except OSError:
            if not stop.is_set():
                raise
    else:
        stop.wait()
    stop.set()
    for thread in threads:
        if not thread.daemon:
            thread.join(timeout=30)


def check(settings: Settings, runtime: Runtime) -> int:
    """Settings are valid (we got here); now the Slack token and each destination's credentials."""
    from slack_sdk.errors import SlackApiError  # noqa: PLC0415 - see the imports

    from workflow.destinations.base import PublishError  # noqa: PLC0415

    failures = 0
    try:
        who = runtime.ui.client.auth_test()
        print(f"ok    slack: bot {who.get('user')} in {who.get('team')}")
    except SlackApiError as exc:
        failures += 1
        print(f"FAIL  slack: {exc.response.get('error')} (check SLACK_BOT_TOKEN)")
    for name, destination in runtime.service.destinations.items():
        try:
            print(f"ok    {destination.verify()}")
        except PublishError as exc:
            failures += 1
            print(f"FAIL  {name}: {exc}")
    return 1 if failures else 0


def audit_command(args: argparse.Namespace, engine: Engine, clock: Clock) -> int:
    try:
        return audit_run(args, engine, clock)
    except engine.dialect.loaded_dbapi.Error:
        # Asked only now: importing Alembic up front would add a tenth of a second to every export.
        if missing := missing_migrations(engine):
            print(
                f"audit: the database lacks migrations {', '.join(missing)}; run `python app.py migrate`",
                file=sys.stderr,
            )
            return 2
        raise


def audit_run(args: argparse.Namespace, engine: Engine, clock: Clock) -> int:
    if args.audit_command == "verify":
        result = audit.verify(engine, workers=args.workers)
        print(result.describe())
        return 0 if result.ok else 1
    query = {
        k: v for k, v in {"since": args.since, "until": args.until, "announcement": args.announcement}.items() if v
    }
    try:
        flt = export_filter(query, now=clock.now())
    except BadQuery as exc:
        print(f"audit export: {exc}", file=sys.stderr)
        return 2
    run = audit.Export(engine, args.format, flt, workers=args.workers)
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    try:
        for chunk in run.chunks():
            out.write(chunk)
        out.flush()
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    span = f"seq {run.first_seq}-{run.last_seq}" if run.rows else "none matched"
    print(f"audit export: {run.rows} events ({span})", file=sys.stderr)
    print(f"chain head: seq {run.head_seq} hash {run.head_hash}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python app.py", description="Count to Ten: four eyes and a count to ten.")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("web", help="serve HTTP only")
    sub.add_parser("worker", help="run the worker only")
    sub.add_parser("migrate", help="create or upgrade the database tables")
    sub.add_parser("check", help="validate settings and check the Slack token and destinations")
    audit_p = sub.add_parser("audit", help="export or verify the audit log")
    audit_sub = audit_p.add_subparsers(dest="audit_command", required=True)
    export_p = audit_sub.add_parser("export", help="stream the audit log")
    export_p.add_argument("--format", choices=sorted(audit.EXPORTERS), default="csv")
    export_p.add_argument("--since", help="ISO date/time, an age like 7d, or a sequence number to resume after")
    export_p.add_argument("--until", help="ISO date/time or an age like 1d (a bare date includes that day)")
    export_p.add_argument("--announcement", help="only this announcement's events")
    export_p.add_argument("--output", help="write to this file instead of standard output")
    export_p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes for a large export (from 100,000 rows) on SQLite: 2 are about 10%% faster; "
        "PostgreSQL writes the lines itself, so 1 is fastest there",
    )
    verify_p = audit_sub.add_parser("verify", help="recompute the hash chain")
    verify_p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes for a large log (from 100,000 rows): about N times faster, N times the memory",
    )
    # Listed for --help; main() hands its arguments to checks.cli.
    sub.add_parser("checks", help="pre-flight checks on a draft from standard input ([--lang en|it] [--json])")
    return p


def checks_command(argv: list[str], env: Mapping[str, str]) -> int:
    """Pre-flight checks for CI pipelines: needs only the [checks] table, no secrets, no database."""
    raw, problems = read_checks_table(env)
    config, config_problems = checks.load_config(raw)
    problems += config_problems
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 64
    return checks.cli(argv, stdin=sys.stdin, stdout=sys.stdout, config=config)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["checks"]:  # its options belong to checks.cli, not to this parser
        return checks_command(argv[1:], env)
    args = parser().parse_args(argv)
    logging.basicConfig(level=env.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin, every start
    clock = SystemClock()
    needs_slack = args.command not in {"migrate", "audit"}
    try:
        settings = load_settings(env, require_slack=needs_slack)
    except SettingsError as exc:
        print("Count to Ten cannot start; fix these settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    Redactor(settings.secret_values()).install()
    engine = make_engine(settings.database_url)
    if args.command in {None, "migrate"}:
        migrate(engine)
        if args.command == "migrate":
            print("database is up to date")
            return 0
    if args.command == "audit":
        return audit_command(args, engine, clock)
    from slack_sdk.errors import SlackApiError  # noqa: PLC0415 - see the imports

    try:
        runtime = build(settings, clock=clock, engine=engine)
    except SettingsError as exc:
        print("Count to Ten cannot start; fix these settings:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except SlackApiError as exc:
        print(f"Slack refused the bot token ({exc.response.get('error')}); check SLACK_BOT_TOKEN.", file=sys.stderr)
        return 2
    except OSError as exc:  # urllib's URLError and socket errors: no answer from Slack at all
        print(
            f"Cannot reach Slack at {settings.slack_api_url} ({exc}); check the network or SLACK_API_URL.",
            file=sys.stderr,
        )
        return 2
    if args.command == "check":
        return check(settings, runtime)
    serve(runtime, web=args.command in {None, "web"}, worker=args.command in {None, "worker"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
