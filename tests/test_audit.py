"""The audit log on real databases (every test runs on SQLite and PostgreSQL): the chain and
`verify` against tampering, the exports (RFC 4180 CSV, JSONL, formula injection, filters,
resumption by sequence number, the chain head), the lines the database writes against the
reference formatter, migration 0004 over rows already stored, and worker processes giving the
same answers as one process.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError

import app as app_module
from workflow import audit
from workflow.db import MIGRATIONS, migrate, missing_migrations, transaction
from workflow.web import BadQuery, export_filter, parse_moment

T0 = datetime(2026, 11, 1, 9, 30, 0, 123456, tzinfo=UTC)
TEXT = 'Logins fail for some EU customers, we "roll back" now.\nNext update 14:30 UTC 🚀'
FORMULAS = ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def add(
    engine: Engine, at: datetime, actor: str, action: str, aid: int | None, data: dict[str, Any], name: str = ""
) -> None:
    with transaction(engine) as session:
        audit.name_actor(session, actor, name or None)
        audit.append(session=session, at=at, actor=actor, action=action, announcement_id=aid, data=data)


def story(engine: Engine) -> None:
    """Ten events of two announcements, one a minute from T0, with every kind of awkward value."""
    events: list[tuple[str, str, int | None, dict[str, Any], str]] = [
        ("U0AUTHOR", "submit", 1, {"to_state": "pending", "text": TEXT, "text_hash": "ab" * 32, "findings": []}, "Ann"),
        ("U0ALICE", "approve_final", 1, {"from_state": "pending", "to_state": "cooling_off"}, 'Alice, "QA"'),
        ("worker", "release", 1, {"from_state": "cooling_off", "to_state": "publishing"}, ""),
        (
            "worker",
            "delivery",
            1,
            {"destination": "status", "remote_id": "1700.01", "url": "https://x.example/p1", "error": None},
            "",
        ),
        ("worker", "delivery", 1, {"destination": "hook", "error": 'HTTP 503, "busy"', "remote_id": None}, ""),
        (
            "U0MALLORY",
            "submit",
            2,
            {
                "to_state": "pending",
                "text": FORMULAS[0],
                "findings": [{"rule": "r", "severity": "warning", "message": 'm, "x"', "excerpt": "e"}],
            },
            "@mallory",
        ),
        ("U0MALLORY", "edit", 2, {"text": "-2+3 minus", "findings": []}, "=cmd|' /C calc'!A0"),
        ("U0BOB", "refused", 2, {"attempted": "approve", "reason": "+ not you"}, "\tBob"),
        ("worker", "delivery", 2, {"destination": "odd", "remote_id": 12345, "url": ["a", "b"], "error": {"e": 1}}, ""),
        ("system", "note", None, {"text": "nul \x00 soh \x01 stx \x02 literal \\u0000 end", "error": "@x"}, ""),
    ]
    for minute, (actor, action, aid, data, name) in enumerate(events):
        add(engine, T0 + timedelta(minutes=minute), actor, action, aid, data, name)


@pytest.fixture
def log(engine: Engine) -> Engine:
    story(engine)
    return engine


def raw_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with audit._reading(engine) as conn:
        return [row for batch in audit._batches(conn, engine.dialect.name, audit.ExportFilter()) for row in batch]


def export(engine: Engine, fmt: str, flt: audit.ExportFilter | None = None, **kw: Any) -> tuple[str, audit.Export]:
    run = audit.Export(engine, fmt, flt or audit.ExportFilter(), **kw)
    return b"".join(run.chunks()).decode(), run


def csv_rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body, newline="")))


def execute(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


# The chain -----------------------------------------------------------------------------------


def test_an_untouched_log_verifies_and_its_head_is_the_last_hash(log: Engine) -> None:
    result = audit.verify(log)
    assert result.ok and result.rows == 10, result.describe()
    rows = raw_rows(log)
    assert audit.head(log) == (10, rows[-1][7]) == (10, result.head_hash)
    assert rows[0][6] == audit.GENESIS
    # The hash is what row_hash says; verify inlines the same body.
    seq, at, actor, action, aid, data, prev, digest = rows[3]
    assert (
        audit.row_hash(
            prev_hash=prev, seq=seq, at=audit._iso(at), actor=actor, action=action, announcement_id=aid, data=data
        )
        == digest
    )


def test_an_empty_log_verifies(engine: Engine) -> None:
    result = audit.verify(engine)
    assert result.ok and result.rows == 0 and result.head_hash == audit.GENESIS


@pytest.mark.parametrize(
    ("tamper", "broken_at", "problem"),
    [
        ("UPDATE auditevent SET data = replace(data, 'Logins', 'Lagins') WHERE seq = 1", 1, "contents changed"),
        ("UPDATE auditevent SET actor = 'U0SOMEONE' WHERE seq = 2", 2, "contents changed"),
        ("UPDATE auditevent SET action = 'reject' WHERE seq = 2", 2, "contents changed"),
        ("UPDATE auditevent SET announcement_id = 2 WHERE seq = 3", 3, "contents changed"),
        ("DELETE FROM auditevent WHERE seq = 4", 4, "row 4 is missing (next is 5)"),
        ("DELETE FROM auditevent WHERE seq >= 9", 9, "the chain head says 10 events; rows after 8 were removed"),
        ("UPDATE auditevent SET prev_hash = hash WHERE seq = 6", 6, "prev_hash does not match"),
        ("DELETE FROM audithead", 1, "stored after the chain head"),
    ],
    ids=["text", "actor", "action", "announcement", "deleted-row", "deleted-tail", "prev-hash", "head-gone"],
)
def test_verify_names_the_first_broken_row(log: Engine, tamper: str, broken_at: int, problem: str) -> None:
    execute(log, tamper)
    result = audit.verify(log)
    assert not result.ok
    assert result.broken_seq == broken_at, result.describe()
    assert problem in (result.problem or ""), result.describe()
    assert f"broken at seq {broken_at}" in result.describe()


def test_verify_catches_a_changed_time(log: Engine) -> None:
    execute(log, "UPDATE auditevent SET at = '2026-10-31 09:34:00.123456' WHERE seq = 5")
    result = audit.verify(log)
    assert (result.ok, result.broken_seq) == (False, 5), result.describe()


def test_verify_catches_reordered_rows(log: Engine) -> None:
    """Rows 3 and 4 swap places: the row now at 3 was chained after 3, not after 2."""
    execute(
        log,
        "UPDATE auditevent SET seq = 1000 WHERE seq = 3",
        "UPDATE auditevent SET seq = 3 WHERE seq = 4",
        "UPDATE auditevent SET seq = 4 WHERE seq = 1000",
    )
    result = audit.verify(log)
    assert (result.ok, result.broken_seq) == (False, 3), result.describe()
    assert "prev_hash does not match" in (result.problem or "")


def test_verify_catches_a_row_added_without_extending_the_chain(log: Engine) -> None:
    row = raw_rows(log)[-1]
    with log.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO auditevent (seq, at, actor, action, announcement_id, data, prev_hash, hash) "
                "VALUES (11, :at, 'U0X', 'approve', 1, '{}', :prev, :prev)"
            ),
            {"at": T0 + timedelta(hours=1), "prev": row[7]},
        )
    result = audit.verify(log)
    assert (result.ok, result.broken_seq) == (False, 11), result.describe()


def test_verify_with_worker_processes_gives_the_same_answers(log: Engine) -> None:
    assert audit.verify(log, workers=2, block_rows=3) == audit.verify(log)
    for tamper in (
        "UPDATE auditevent SET data = replace(data, 'pending', 'rejected') WHERE seq = 6",  # inside a block
        "UPDATE auditevent SET prev_hash = hash WHERE seq = 7",  # where two blocks meet
        "DELETE FROM auditevent WHERE seq IN (4, 5, 6)",  # a whole block gone
    ):
        execute(log, tamper)
        assert audit.verify(log, workers=2, block_rows=3) == audit.verify(log, block_rows=3) == audit.verify(log)
        assert not audit.verify(log).ok


def test_the_actor_name_goes_into_the_hashed_data(log: Engine) -> None:
    submit = json.loads(raw_rows(log)[0][5])
    assert submit["actor_name"] == "Ann"
    assert "actor_name" not in json.loads(raw_rows(log)[2][5]), "no name for the worker"


# Export content --------------------------------------------------------------------------------


def test_csv_is_rfc_4180_with_one_quoted_row_per_event(log: Engine) -> None:
    body, run = export(log, "csv")
    assert body.startswith(",".join(audit.EXPORT_FIELDS) + "\r\n")
    assert body.endswith("\r\n")
    rows = csv_rows(body)
    assert [int(r["seq"]) for r in rows] == list(range(1, 11)) and run.rows == 10
    first = rows[0]
    assert first["text"] == TEXT, "commas, quotes, a newline and an emoji survive quoting"
    assert first["at"] == "2026-11-01T09:30:00.123456Z"
    assert first["actor"] == "U0AUTHOR" and first["actor_name"] == "Ann" and first["action"] == "submit"
    assert first["announcement_id"] == "1" and first["to_state"] == "pending" and first["from_state"] == ""
    assert first["text_hash"] == "ab" * 32 and first["findings"] == "[]"
    assert json.loads(first["data"])["text"] == TEXT, "the hashed data, verbatim"
    assert rows[1]["actor_name"] == 'Alice, "QA"'
    assert rows[3]["remote_id"] == "1700.01" and rows[3]["url"] == "https://x.example/p1" and rows[3]["error"] == ""
    assert rows[4]["error"] == 'HTTP 503, "busy"'
    assert json.loads(rows[5]["findings"])[0]["message"] == 'm, "x"'
    assert rows[8]["remote_id"] == "12345" and rows[8]["url"] == '["a","b"]' and rows[8]["error"] == '{"e":1}'
    assert rows[9]["announcement_id"] == "" and rows[9]["text"] == "nul \x00 soh \x01 stx \x02 literal \\u0000 end"
    assert all(r["prev_hash"] and r["hash"] for r in rows)
    assert rows[-1]["hash"] == run.head_hash and run.head_seq == 10


def test_csv_neutralises_cells_that_start_like_a_formula(log: Engine) -> None:
    rows = csv_rows(export(log, "csv")[0])
    assert rows[5]["text"] == "'" + FORMULAS[0] and rows[5]["actor_name"] == "'@mallory"
    assert rows[6]["text"] == "'-2+3 minus" and rows[6]["actor_name"] == "'=cmd|' /C calc'!A0"
    assert rows[7]["actor_name"] == "'\tBob"
    assert rows[9]["error"] == "'@x"
    dangerous = tuple("=+-@\t\r")
    assert not [(r["seq"], k, v) for r in rows for k, v in r.items() if v.startswith(dangerous)]
    # The data column is JSON (it starts with "{") and keeps the text exactly as hashed.
    assert json.loads(rows[5]["data"])["text"] == FORMULAS[0]


@pytest.mark.parametrize("text_", FORMULAS)
def test_every_formula_start_is_neutralised(engine: Engine, text_: str) -> None:
    add(engine, T0, text_, text_, None, {"text": text_, "url": text_, "actor_name": text_})
    (row,) = csv_rows(export(engine, "csv")[0])
    assert row["text"] == row["url"] == row["actor_name"] == row["actor"] == row["action"] == "'" + text_


def test_jsonl_carries_the_same_fields_as_objects(log: Engine) -> None:
    body, run = export(log, "jsonl")
    lines = [json.loads(line) for line in body.splitlines()]
    assert len(lines) == run.rows == 10
    assert all(list(line) == list(audit.EXPORT_FIELDS) for line in lines)
    assert lines[0]["text"] == TEXT and lines[0]["data"]["text"] == TEXT and lines[0]["findings"] == []
    assert lines[0]["announcement_id"] == 1 and lines[9]["announcement_id"] is None
    assert lines[5]["text"] == FORMULAS[0], "JSON is not a spreadsheet: values stay as they are"
    # Lifted fields are text columns: a value of another type comes as its JSON text, as in the CSV.
    assert lines[8]["remote_id"] == "12345" and lines[8]["url"] == '["a","b"]' and lines[8]["error"] == '{"e":1}'
    # Same values as the CSV, cell for cell, apart from the neutralising quote.
    for obj, row in zip(lines, csv_rows(export(log, "csv")[0]), strict=True):
        for name in audit.EXPORT_FIELDS:
            value = obj[name]
            as_text = "" if value is None else value if isinstance(value, str) else audit.canonical_json(value)
            assert row[name] in (as_text, "'" + as_text), (obj["seq"], name)


def test_the_database_writes_what_the_reference_formatter_writes(log: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with log.connect() as conn:
        plain = conn.execute(text("SELECT seq FROM auditevent WHERE plain ORDER BY seq")).scalars().all()
        verbatim = conn.execute(text("SELECT seq FROM auditevent WHERE verbatim ORDER BY seq")).scalars().all()
        formula = conn.execute(text("SELECT seq FROM auditevent WHERE plain AND formula ORDER BY seq")).scalars().all()
    assert plain == [1, 2, 3, 4, 5, 6, 7, 8, 9], "the database writes these rows; the reference writes the NUL one"
    assert verbatim == [3, 4, 7], "JSON-escaping the free text of the plain rows that need it"
    assert formula == [6, 7, 8], "and neutralising the CSV of those with a cell that starts like a formula"
    rows = raw_rows(log)
    csv_body = audit.CSV_HEADER + "".join(audit._csv_line(r) for r in rows)
    jsonl_body = "".join(audit._jsonl_line(r) for r in rows)
    assert "".join(audit.export_csv(log)) == csv_body and "".join(audit.export_jsonl(log)) == jsonl_body
    # Batch by batch, including batches that mix plain and awkward rows and end on either.
    for size in (1, 2, 3, 7, 2_000):
        monkeypatch.setattr(audit, "EXPORT_BATCH", size)
        assert export(log, "csv")[0] == csv_body, size
        assert export(log, "jsonl")[0] == jsonl_body, size


def test_both_databases_write_the_same_bytes(engine: Engine) -> None:
    add(engine, T0, "U0AUTHOR", "submit", 7, {"text": 'Hi, "all"', "to_state": "pending"}, "Ann")
    (line,) = export(engine, "csv")[0].splitlines(keepends=True)[1:]
    digest = raw_rows(engine)[0][7]
    assert line == (
        '"1","2026-11-01T09:30:00.123456Z","U0AUTHOR","Ann","submit","7","","pending","","","","","Hi, ""all""",'
        f'"","","{audit.GENESIS}","{digest}",'
        '"{""actor_name"":""Ann"",""text"":""Hi, \\""all\\"""",""to_state"":""pending""}"\r\n'
    )


def test_a_damaged_row_is_exported_as_it_is_and_verify_flags_it(log: Engine) -> None:
    damage = "UPDATE auditevent SET data = 'not json, \"=x' WHERE seq = 2"
    if log.dialect.name == "postgresql":  # its generated export columns parse `data`: it refuses
        with pytest.raises(DataError, match="invalid input syntax for type json"):
            execute(log, damage)
        return
    execute(log, damage)
    rows = csv_rows(export(log, "csv")[0])
    assert rows[1]["data"] == 'not json, "=x' and rows[1]["from_state"] == ""
    line = json.loads(export(log, "jsonl")[0].splitlines()[1])
    assert line["data"] == 'not json, "=x'
    assert audit.verify(log).broken_seq == 2


# Filters and resumption ------------------------------------------------------------------------


def test_filters_by_time_and_announcement(log: Engine) -> None:
    def seqs(flt: audit.ExportFilter) -> list[int]:
        return [int(r["seq"]) for r in csv_rows(export(log, "csv", flt)[0])]

    assert seqs(audit.ExportFilter(since=T0 + timedelta(minutes=3))) == [4, 5, 6, 7, 8, 9, 10]
    assert seqs(audit.ExportFilter(until=T0 + timedelta(minutes=3))) == [1, 2, 3]
    assert seqs(audit.ExportFilter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))) == [3, 4]
    assert seqs(audit.ExportFilter(announcement_id=2)) == [6, 7, 8, 9]
    assert seqs(audit.ExportFilter(since=T0 + timedelta(days=1))) == []
    body, run = export(log, "jsonl", audit.ExportFilter(since=T0 + timedelta(days=1)))
    assert body == "" and run.rows == 0 and run.first_seq is None and run.head_seq == 10


def test_a_puller_resumes_after_the_head_it_was_given(log: Engine) -> None:
    first, run = export(log, "jsonl")
    assert run.head_seq == 10
    add(log, T0 + timedelta(hours=1), "U0ALICE", "cancel", 1, {"from_state": "cooling_off"})
    add(log, T0 + timedelta(hours=2), "U0BOB", "approve", 2, {})
    second, run2 = export(log, "jsonl", audit.ExportFilter(since_seq=run.head_seq))
    assert [json.loads(line)["seq"] for line in second.splitlines()] == [11, 12]
    assert run2.head_seq == 12 and run2.first_seq == 11 and run2.last_seq == 12
    assert first + second == export(log, "jsonl")[0], "the two pulls together are the whole log"
    assert json.loads(second.splitlines()[0])["prev_hash"] == run.head_hash, "and they chain"


def test_an_export_stops_at_the_head_it_read(log: Engine) -> None:
    run = audit.Export(log, "csv")
    add(log, T0 + timedelta(hours=1), "U0ALICE", "cancel", 1, {})  # appended while the export runs
    rows = csv_rows(b"".join(run.chunks()).decode())
    assert [r["seq"] for r in rows][-1] == "10" and run.head_seq == 10


def test_worker_processes_write_the_same_export(log: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "PARALLEL_MIN_ROWS", 1)
    for fmt in ("csv", "jsonl"):
        flt = audit.ExportFilter(since_seq=1)
        serial, one = export(log, fmt, flt)
        parallel, many = export(log, fmt, flt, workers=2, block_rows=3)
        assert parallel == serial
        assert (many.rows, many.first_seq, many.last_seq) == (one.rows, one.first_seq, one.last_seq) == (9, 2, 10)


def test_query_parameters() -> None:
    now = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    flt = export_filter({"since": "7d", "until": "2026-11-23", "announcement": "4"}, now=now)
    assert flt.since == now - timedelta(days=7)
    assert flt.until == datetime(2026, 11, 24, tzinfo=UTC), "a bare date as until includes that day"
    assert flt.announcement_id == 4 and flt.since_seq is None
    assert export_filter({"since": "1200"}, now=now).since_seq == 1200
    assert parse_moment("2026-11-01T14:00:00+01:00", now=now) == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert parse_moment("2026-11-01T14:00Z", now=now) == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    for bad in ({"since": "yesterday"}, {"announcement": "x"}, {"sinse": "7d"}, {"since": "1d", "until": "2d"}):
        with pytest.raises(BadQuery):
            export_filter(bad, now=now)


# Migration 0004: the export columns ------------------------------------------------------------


def alembic(engine: Engine, verb: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)


def test_migration_0004_lifts_the_rows_already_stored(engine: Engine, tmp_path: Path) -> None:
    alembic(engine, "downgrade", "0003")
    try:
        story(engine)  # written by a release without the export columns
        assert missing_migrations(engine) == ["0004"]
        config = tmp_path / "announce.toml"
        config.write_text('[approval]\nchannel = "C0123ABCD"\n[[destination]]\nname = "log"\ntype = "log"\n')
        env = {"DATABASE_URL": engine.url.render_as_string(hide_password=False), "ANNOUNCE_CONFIG": str(config)}
        out = tmp_path / "out.csv"
        assert app_module.main(["audit", "export", "--output", str(out)], env) == 2, "told to migrate, not a traceback"
    finally:
        migrate(engine)
    assert missing_migrations(engine) == []
    assert audit.verify(engine).ok, "the rebuilt table keeps every row and its hash"
    rows = raw_rows(engine)
    assert export(engine, "csv")[0] == audit.CSV_HEADER + "".join(audit._csv_line(r) for r in rows)
    assert export(engine, "jsonl")[0] == "".join(audit._jsonl_line(r) for r in rows)
    add(engine, T0 + timedelta(hours=1), "U0ALICE", "cancel", 1, {"from_state": "cooling_off"})
    assert csv_rows(export(engine, "csv")[0])[-1]["from_state"] == "cooling_off", "new rows lift their fields too"


def test_an_export_abandoned_half_way_leaves_the_database_usable(log: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A puller that hangs up mid-stream: the COPY (or the cursor) is stopped and the connection
    goes back to the pool in a state the next export can use."""
    monkeypatch.setattr(audit, "EXPORT_BATCH", 2)
    whole = export(log, "jsonl")[0]
    for _ in range(3):  # more than once: the pool hands the same connection back
        chunks = audit.Export(log, "jsonl").chunks()
        assert json.loads(next(chunks).splitlines()[0])["seq"] == 1
        chunks.close()
    assert export(log, "jsonl")[0] == whole
    assert audit.verify(log).ok


@pytest.mark.parametrize("char", ["\n", "\t", "\x01", "\x1f", '"', "\\", "\x7f", "é", "🚀", "\u2028"])
def test_free_text_that_needs_json_escaping_is_escaped(engine: Engine, char: str) -> None:
    add(engine, T0, "U0AUTHOR", "submit", 1, {"text": f"a{char}b", "error": f"e{char}", "to_state": "pending"}, "Ann")
    with engine.connect() as conn:
        verbatim = bool(conn.execute(text("SELECT verbatim FROM auditevent")).scalar())
    assert verbatim == (char in "\x7fé🚀\u2028"), "only characters JSON leaves alone are written verbatim"
    rows = raw_rows(engine)
    assert export(engine, "jsonl")[0] == "".join(audit._jsonl_line(r) for r in rows)
    assert json.loads(export(engine, "jsonl")[0])["text"] == f"a{char}b"
    assert export(engine, "csv")[0] == audit.CSV_HEADER + "".join(audit._csv_line(r) for r in rows)
