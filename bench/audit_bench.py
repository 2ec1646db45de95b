"""Benchmark: audit export (CSV, JSONL) and verification at a million events.

Builds a database of N audit events with a real hash chain (bulk inserts computing the same
`row_hash` the app uses, not N calls of `append`), then runs, each in its own process as a user
would, and in the same run:

    python app.py audit export --format csv   --output /dev/null [--workers N]
    python app.py audit export --format jsonl --output /dev/null [--workers N]
    python app.py audit verify [--workers N]
    sqlite3 -csv <the same table as a SQLite file> "SELECT <its 8 columns> FROM auditevent ORDER BY seq" > /dev/null

and reports rows per second, the ratio to `sqlite3 -csv`, CPU seconds (the command and the
workers it waited for, from wait4), and peak memory sampled from /proc
every 10 ms: the largest peak RSS of any process of the command (its own or a worker's), and
the proportional set size summed over its process tree (forked workers share pages with their
parent; PSS counts them once).

    python bench/audit_bench.py [--rows 1000000] [--database-url URL] [--workers 1,2] [--repeat 3] [--keep]

Without --database-url the database is a SQLite file in a temporary directory. With a PostgreSQL
URL a database of its own, `ctt_audit_bench`, is created on that server and dropped afterwards
(the URL's own database is not touched). The sqlite3 reference always reads a SQLite file with
the same rows. `--workers` lists the CLI's --workers values to measure (default 1,2): 1 is the
single-process path the HTTP endpoint and Slack use, 2 forks two worker processes.

Numbers, not pass/fail: the goals are exports at >= 40% of the sqlite3 rate, peak memory under
150 MB, and verification at >= 200,000 rows/s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow.audit import GENESIS, canonical_json, row_hash  # noqa: E402
from workflow.db import make_engine, migrate  # noqa: E402
from workflow.settings import normalise_database_url  # noqa: E402

BENCH_DATABASE = "ctt_audit_bench"
COLUMNS = "seq, at, actor, action, announcement_id, data, prev_hash, hash"
SAMPLE = (
    "Logins are failing for some EU customers . We rolled back the 14:02 deploy and are watching error rates ; "
    "next update by 14:30 UTC . Payments , API , dashboard and webhooks may be slow . The database failover "
    'finished ; latency is back to normal . Café naïve über 🚀 ✅ 🔴 "quoted" 50% a/b <https://status.example.com>'
)
WORDS = SAMPLE.split()
DESTINATIONS = ("status-channel", "partner-webhook", "mastodon")


def events(rows: int, *, seed: int = 7) -> Iterator[tuple[int, datetime, str, str, int, str, str, str]]:
    """`rows` audit events shaped like the app's: each announcement is submitted, sometimes refused,
    edited or rejected, approved, released and delivered to three destinations. Texts are 10-60
    words with commas, quotes, emoji, and now and then a leading = + - @ (formula injection)."""
    rnd = random.Random(seed)
    texts = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randrange(10, 60))) for _ in range(997)]
    for i in range(0, len(texts), 19):
        texts[i] = rnd.choice("=+-@") + texts[i]
    start = datetime(2025, 10, 1, tzinfo=UTC)
    step = timedelta(days=400) / max(rows, 1)
    prev = GENESIS
    seq = 0
    announcement = 0
    while seq < rows:
        announcement += 1
        author, approver = f"U0{rnd.randrange(500):07d}", f"U0{rnd.randrange(500):07d}"
        text_ = texts[rnd.randrange(len(texts))]
        digest = hashlib.sha256(text_.encode()).hexdigest()
        findings = (
            []
            if rnd.random() < 0.7
            else [{"excerpt": "14:30", "message": "Say the time zone.", "rule": "time_zone", "severity": "warning"}]
        )
        batch: list[tuple[str, str, dict[str, object]]] = [
            (
                author,
                "submit",
                {
                    "to_state": "pending",
                    "text": text_,
                    "title": None,
                    "destinations": list(DESTINATIONS),
                    "text_hash": digest,
                    "findings": findings,
                    "actor_name": f"author {author[-3:]}",
                },
            )
        ]
        if rnd.random() < 0.1:
            batch.append(
                (author, "refused", {"attempted": "approve", "reason": "You wrote this announcement, so someone else…"})
            )
        if rnd.random() < 0.1:
            batch.append(
                (
                    author,
                    "edit",
                    {
                        "from_state": "pending",
                        "to_state": "pending",
                        "text": text_ + " (edited)",
                        "text_hash": digest,
                        "findings": [],
                        "revision": 2,
                        "actor_name": f"author {author[-3:]}",
                    },
                )
            )
        if rnd.random() < 0.05:
            batch.append(
                (approver, "reject", {"from_state": "pending", "to_state": "rejected", "reason": "Wrong, region"})
            )
        else:
            batch.append(
                (
                    approver,
                    "approve_final",
                    {
                        "from_state": "pending",
                        "to_state": "cooling_off",
                        "text_hash": digest,
                        "revision": 1,
                        "approvals": 1,
                        "release_at": "2026-01-01T00:00:10+00:00",
                        "actor_name": f"approver {approver[-3:]}",
                    },
                )
            )
            batch.append(("worker", "release", {"from_state": "cooling_off", "to_state": "publishing"}))
            for name in DESTINATIONS:
                failed = rnd.random() < 0.03
                batch.append(
                    (
                        "worker",
                        "delivery",
                        {
                            "destination": name,
                            "attempt": 1,
                            "outcome": "failed" if failed else "delivered",
                            "remote_id": None if failed else str(rnd.randrange(10**15)),
                            "url": None
                            if failed
                            else f"https://example.slack.com/archives/C0STATUS/p{rnd.randrange(10**16)}",
                            "error": "HTTP 503: upstream connect error" if failed else None,
                        },
                    )
                )
            batch.append(("worker", "delivered", {"from_state": "publishing", "to_state": "published"}))
        for actor, action, data in batch:
            seq += 1
            if seq > rows:
                return
            at = start + step * seq
            data_text = canonical_json(data)
            digest_ = row_hash(
                prev_hash=prev,
                seq=seq,
                at=at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                actor=actor,
                action=action,
                announcement_id=announcement,
                data=data_text,
            )
            yield seq, at, actor, action, announcement, data_text, prev, digest_
            prev = digest_


def load_sqlite(path: Path, rows: int) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    last = (0, GENESIS)
    batch: list[tuple[object, ...]] = []
    insert = f"INSERT INTO auditevent ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    for seq, at, actor, action, aid, data, prev, digest in events(rows):
        # SQLAlchemy's SQLite DATETIME text, exactly as the app stores it.
        batch.append((seq, at.strftime("%Y-%m-%d %H:%M:%S.%f"), actor, action, aid, data, prev, digest))
        last = (seq, digest)
        if len(batch) == 20_000:
            conn.executemany(insert, batch)
            batch.clear()
    conn.executemany(insert, batch)
    conn.execute("INSERT INTO audithead (id, seq, hash) VALUES (1, ?, ?)", last)
    conn.execute("COMMIT")
    conn.close()


def load_postgres(url: str, rows: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    last = (0, GENESIS)
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY auditevent ({COLUMNS}) FROM STDIN") as copy:
                for row in events(rows):
                    copy.write_row(row)
                    last = (row[0], row[7])
            cursor.execute("INSERT INTO audithead (id, seq, hash) VALUES (1, %s, %s)", last)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE auditevent"))
    engine.dispose()


def postgres_bench_url(server_url: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    admin.dispose()
    return make_url(server_url).set(database=BENCH_DATABASE).render_as_string(hide_password=False)


def drop_postgres(server_url: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
    admin.dispose()


# Measuring ----------------------------------------------------------------------------------


def _tree(pid: int) -> tuple[int, int]:
    """(largest peak RSS of any process, summed proportional set size) over `pid` and all its
    descendants, in KB. VmHWM is a process's own peak since exec; PSS splits the pages forked
    workers share with their parent, which a sum of RSS would count once per process."""
    peak = total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
                        break
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return peak, total


def measure(command: list[str], *, env: dict[str, str]) -> tuple[float, int, int, int, float]:
    """Run `command`, output to /dev/null; return (seconds, exit status, peak RSS of its largest
    process in KB, peak PSS of its process tree in KB, CPU seconds of the command and the
    workers it waited for), memory sampled every 10 ms.

    Not ru_maxrss: a child forked from this (large) process keeps the fork's high-water mark
    across exec, so every command would seem to need what this script holds."""
    peaks = [0, 0]
    done = threading.Event()
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(command, env=env, stdout=devnull, stderr=subprocess.PIPE, cwd=ROOT)

        def sample() -> None:
            while not done.is_set():
                rss, pss = _tree(proc.pid)
                peaks[0], peaks[1] = max(peaks[0], rss), max(peaks[1], pss)
                done.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        assert proc.stderr is not None
        errors = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    if proc.returncode != 0:
        print(errors.decode(errors="replace"), file=sys.stderr)
    return seconds, proc.returncode, peaks[0], peaks[1], usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: a SQLite file)")
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated values for `audit export/verify --workers` (default 1,2)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median is reported")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    sqlite_path = workdir / "audit.db"
    (workdir / "announce.toml").write_text(
        '[approval]\nchannel = "C0APPROVALS"\n\n[[destination]]\nname = "log"\ntype = "log"\n'
        f'path = "{workdir / "published.jsonl"}"\n'
    )
    server_url = normalise_database_url(args.database_url) if args.database_url else None
    try:
        started = time.perf_counter()
        load_sqlite(sqlite_path, args.rows)
        print(f"built SQLite: {args.rows:,} events in {time.perf_counter() - started:.1f} s ({sqlite_path})")
        database_url = f"sqlite:///{sqlite_path}"
        if server_url:
            database_url = postgres_bench_url(server_url)
            started = time.perf_counter()
            load_postgres(database_url, args.rows)
            print(f"built PostgreSQL: {args.rows:,} events in {time.perf_counter() - started:.1f} s")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ANNOUNCE_CONFIG": str(workdir / "announce.toml"),
            "LOG_LEVEL": "WARNING",
        }
        runs: dict[str, list[str]] = {
            "sqlite3 -csv (reference)": [
                shutil.which("sqlite3") or "sqlite3",
                "-csv",
                str(sqlite_path),
                # The table as the app writes it; the columns migration 0004 derives for the
                # export are left out, so the reference does no more work than it always did.
                f"SELECT {COLUMNS} FROM auditevent ORDER BY seq",
            ]
        }
        for workers in (int(w) for w in args.workers.split(",")):
            for fmt in ("csv", "jsonl"):
                runs[f"export {fmt}, workers {workers}"] = [
                    *(sys.executable, "app.py", "audit", "export", "--format", fmt, "--output", os.devnull),
                    *("--workers", str(workers)),
                ]
            runs[f"verify, workers {workers}"] = [
                sys.executable,
                "app.py",
                "audit",
                "verify",
                "--workers",
                str(workers),
            ]
        if shutil.which("sqlite3") is None:
            print("sqlite3 CLI not found (apt-get install sqlite3): no reference timing")
            del runs["sqlite3 -csv (reference)"]
        results: dict[str, list[tuple[float, int, int, float]]] = {name: [] for name in runs}
        for _ in range(args.repeat):  # interleaved, so load from elsewhere hits every command alike
            for name, command in runs.items():
                seconds, status, maxrss, tree, cpu = measure(command, env=env)
                if status != 0:
                    print(f"{name}: exit status {status}")
                    return 1
                results[name].append((seconds, maxrss, tree, cpu))
        backend = "PostgreSQL" if server_url else "SQLite"
        print(f"\n{args.rows:,} events on {backend}, median of {args.repeat} (wall time includes interpreter start-up)")
        print(
            f"{'command':26s} {'seconds':>8s} {'rows/s':>9s} {'vs sqlite3':>10s} {'CPU s':>6s}"
            f" {'max RSS':>8s} {'tree PSS':>9s}"
        )
        reference = results.get("sqlite3 -csv (reference)")
        reference_rate = args.rows / statistics.median(r[0] for r in reference) if reference else None
        for name, samples in results.items():
            seconds = statistics.median(r[0] for r in samples)
            cpu = statistics.median(r[3] for r in samples)
            maxrss = max(r[1] for r in samples) / 1024
            tree = max(r[2] for r in samples) / 1024
            rate = args.rows / seconds
            ratio = f"{rate / reference_rate:9.0%}" if reference_rate else "        -"
            print(f"{name:26s} {seconds:8.2f} {rate:9,.0f} {ratio:>10s} {cpu:6.1f} {maxrss:6.0f}MB {tree:7.0f}MB")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            if server_url:
                drop_postgres(server_url)
        else:
            print(f"kept {workdir}" + (f" and database {BENCH_DATABASE}" if server_url else ""))


if __name__ == "__main__":
    sys.exit(main())
