"""Benchmark: how fast an Approve click is acked, and how late releases are.

Runs `python app.py` (waitress + worker, as in production) and, in the same run, a bare Bolt
app served the same way that only acks (`bench/bare_bolt.py`). Both talk to the fake Slack Web
API on loopback. Sends N signed Approve clicks at concurrency C to each and reports p50/p99 of
the time to the HTTP answer; then reads how long after `release_at` each announcement was
released.

    python bench/ack_latency.py [--requests 200] [--concurrency 20] [--database-url URL]

Numbers, not a pass/fail: the targets are p99 at most 1.5x the bare app's and under 300 ms,
and every release within 1 s of release_at.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.harness import SIGNING_SECRET, config  # noqa: E402
from tests.slack_requests import SlackRequests, checkboxes, plain_text  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def moment(value: object) -> datetime:
    """A timestamp from a raw query: a datetime on PostgreSQL, text on SQLite."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wait_healthy(port: int, proc: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not come up")


def approvals(requests: SlackRequests, *, first: int, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed Approve clicks on announcements first … first + count - 1, one approver each."""
    return [
        requests.block_action(
            user_id=f"U0USER{i:04d}",
            action_id="approve",
            value=f"{first + i}:1",
            block_id="card_actions",
            channel_id="C0APPROVALS",
            message_ts="1.1",
        )
        for i in range(count)
    ]


def clicks(port: int, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int) -> list[float]:
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=10, limits=httpx.Limits(max_connections=concurrency)
    )

    def one(signed: tuple[bytes, dict[str, str]]) -> float:
        start = time.perf_counter()
        response = client.post("/slack/events", content=signed[0], headers=signed[1])
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"HTTP {response.status_code}: {response.text[:200]}")
        return elapsed * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, bodies))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ctt-bench-"))
    slack = FakeSlack(trigger_ttl=None).start()
    for i in range(args.requests + 1):
        slack.add_user(f"U0USER{i:04d}")
    (tmp / "announce.toml").write_text(
        config(f'[[destination]]\nname = "log"\ntype = "log"\npath = "{tmp / "published.jsonl"}"\n', cooldown_seconds=2)
    )
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "ANNOUNCE_CONFIG": str(tmp / "announce.toml"),
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
    }
    requests = SlackRequests(SIGNING_SECRET)
    results: dict[str, list[float]] = {}

    # The bare app: Bolt + waitress, one listener that only acks.
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_bolt.py")], env={**env, "PORT": str(bare_port)})
    try:
        wait_healthy(bare_port, bare, "/")
        bodies = approvals(requests, first=1, count=args.requests)
        clicks(bare_port, bodies[:20], args.concurrency)  # warm-up
        results["bare Bolt app"] = clicks(bare_port, bodies, args.concurrency)
    finally:
        bare.terminate()
        bare.wait()

    app_port = free_port()
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp, env={**env, "PORT": str(app_port)})
    try:
        wait_healthy(app_port, app)
        client = httpx.Client(base_url=f"http://127.0.0.1:{app_port}", timeout=10)
        author = f"U0USER{args.requests:04d}"
        for i in range(args.requests + 20):
            values = {
                "text": {
                    "text": plain_text(f"Scheduled maintenance {i} tonight 22:00-23:00 UTC. Next update by 23:15 UTC.")
                },
                "destinations": {"destinations": checkboxes("log")},
            }
            body, headers = requests.view_submission(user_id=author, callback_id="compose", values=values)
            client.post("/slack/events", content=body, headers=headers)
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if (
                    conn.execute(text("SELECT count(*) FROM announcement WHERE message_ts IS NOT NULL")).scalar()
                    == args.requests + 20
                ):
                    break
            time.sleep(0.2)
        warm = approvals(requests, first=args.requests + 1, count=20)
        clicks(app_port, warm, args.concurrency)
        bodies = approvals(requests, first=1, count=args.requests)
        results["Count to Ten"] = clicks(app_port, bodies, args.concurrency)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until every approved announcement was released
            time.sleep(0.5)
            with engine.connect() as conn:
                pending = conn.execute(text("SELECT count(*) FROM announcement WHERE state = 'cooling_off'")).scalar()
            if not pending:
                break
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT a.release_at, e.at FROM announcement a JOIN auditevent e "
                    "ON e.announcement_id = a.id AND e.action = 'release'"
                )
            ).all()
            approved = conn.execute(text("SELECT count(*) FROM announcement WHERE release_at IS NOT NULL")).scalar()
        lateness = [(moment(at) - moment(release_at)).total_seconds() * 1000 for release_at, at in rows]
    finally:
        app.terminate()
        app.wait()
        slack.stop()

    print(f"{args.requests} Approve clicks at concurrency {args.concurrency}, database {database_url.split(':')[0]}")
    for name, values in results.items():
        p50, p99 = statistics.median(values), percentile(values, 99)
        print(f"  {name:14} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {max(values):6.1f} ms")
    ratio = percentile(results["Count to Ten"], 99) / percentile(results["bare Bolt app"], 99)
    print(f"  p99 ratio {ratio:.2f}x the bare app")
    print(
        f"releases: {len(lateness)} of {approved} approved; after release_at: "
        f"p50 {statistics.median(lateness):.0f} ms, max {max(lateness):.0f} ms"
    )


if __name__ == "__main__":
    main()
