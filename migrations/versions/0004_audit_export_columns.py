"""audit export columns: the fields an export lifts out of `data`, computed by the database

The export's columns from_state ... error live inside each event's `data` JSON. Parsing that
JSON per row in Python was most of an export's cost, so the database now keeps them as STORED
generated columns, computed once when a row is written and always equal to what `data` says:
they cannot be set on their own, and changing `data` recomputes them. `plain` marks the
ordinary rows the export templates may take (`data` is JSON, the fixed-format cells hold no
odd characters); everything else is exported by the reference formatter in Python. `verbatim`
marks the plain rows whose free-text cells need no JSON escaping, `formula` the rows with a
cell that starts like a spreadsheet formula (their CSV is neutralised), and on PostgreSQL
`at_iso` keeps `at` as the text the hash covers. The hash chain still covers only the
original columns.

Lifted values are text (a non-string value appears as its JSON text); `findings` is JSON text.

SQLite cannot add a STORED column to an existing table, so the table is rebuilt (rows copied
in seq order). PostgreSQL adds the columns in place; it refuses, as it always will from now
on, a `data` that is not JSON.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must keep meaning what it meant when it shipped.
TEXT_FIELDS = (
    "actor_name",
    "from_state",
    "to_state",
    "destination",
    "remote_id",
    "url",
    "text_hash",
    "text",
    "error",
)
# Cells the fast templates write without JSON escaping: they must be printable ASCII without " or \.
FIXED_FORMAT = ("actor", "action", "from_state", "to_state", "text_hash", "prev_hash", "hash")
# Cells anyone can fill: `verbatim` says none of them needs escaping in JSON (no ", \ or control character).
FREE_TEXT = ("actor_name", "destination", "remote_id", "url", "text", "error")
FORMULA = "('=', '+', '-', '@', char(9), char(13))"
PG_FORMULA = "('=', '+', '-', '@', E'\\t', E'\\r')"


def _sqlite_text(key: str) -> str:
    path = f"'$.{key}'"
    return (
        f"CASE WHEN json_valid(data) THEN CASE json_type(data, {path}) WHEN 'true' THEN 'true' "
        f"WHEN 'false' THEN 'false' ELSE json_extract(data, {path}) END END"
    )


SQLITE_FINDINGS = (
    "CASE WHEN json_valid(data) THEN CASE json_type(data, '$.findings') WHEN 'null' THEN NULL "
    "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'text' THEN json_quote(json_extract(data, '$.findings')) "
    "ELSE json_extract(data, '$.findings') END END"
)


# Every text cell of a CSV row, to look for a start like a formula.
SQLITE_CELLS = ("actor", "action", *TEXT_FIELDS, "findings", "prev_hash", "hash", "data")


def _sqlite_formula() -> str:
    return " OR ".join(f"coalesce(substr({c}, 1, 1) IN {FORMULA}, 0)" for c in SQLITE_CELLS)


def _sqlite_plain() -> str:
    # SQLite lets a generated column read the others, so this reads the lifted columns.
    checks = [
        "json_valid(data)",
        "length(at) = 26 AND substr(at, 11, 1) = ' '",  # SQLAlchemy's 'YYYY-MM-DD HH:MM:SS.ffffff'
        "coalesce(announcement_id >= 0, 1)",  # "-1" would start like a formula
        # A lifted NUL (\\u0000 in `data`) would end printf's output early: such rows go to the
        # reference formatter. (A literal backslash-u0000 in a text is sent there too, harmlessly.)
        "instr(data, '\\u0000') = 0",
        *(f"coalesce(NOT ({c} GLOB '*[^ -~]*' OR {c} GLOB '*[\"\\]*'), 1)" for c in FIXED_FORMAT),
    ]
    return " AND ".join(checks)


# A GLOB that matches text holding ", \ or a control character (U+0001..U+001F).
SQLITE_NEEDS_ESCAPE = r"""'*[' || char(1) || '-' || char(31) || '"\]*'"""


def _sqlite_verbatim() -> str:
    return "plain AND " + " AND ".join(f"coalesce(NOT ({c} GLOB {SQLITE_NEEDS_ESCAPE}), 1)" for c in FREE_TEXT)


def _pg_text(key: str) -> str:
    return f"CASE WHEN {PG_NO_NUL} THEN data::json ->> '{key}' END"


# Text cannot hold NUL, and PostgreSQL's JSON operators fail on a document with \u0000 anywhere:
# such a row lifts nothing, is not plain, and goes to the reference formatter.
PG_NO_NUL = "strpos(data, '\\u0000') = 0"
PG_FINDINGS = f"CASE WHEN {PG_NO_NUL} THEN NULLIF((data::json -> 'findings')::text, 'null') END"


def _pg_values() -> dict[str, str]:
    # PostgreSQL's generated columns cannot read each other: each check reads `data` again.
    values = {c: c for c in ("actor", "action", "prev_hash", "hash", "data")} | {"findings": PG_FINDINGS}
    return values | {key: _pg_text(key) for key in TEXT_FIELDS}


def _pg_formula() -> str:
    return " OR ".join(f"coalesce(left({v}, 1) IN {PG_FORMULA}, false)" for v in _pg_values().values())


def _pg_plain() -> str:
    values = _pg_values()
    checks = [
        PG_NO_NUL,
        "coalesce(announcement_id >= 0, true)",  # "-1" would start like a formula
        *(f"coalesce({values[c]} !~ '[^ -~]|[\"\\\\]', true)" for c in FIXED_FORMAT),
    ]
    return " AND ".join(f"({check})" for check in checks)


PG_NEEDS_ESCAPE = r"""'["\\\x01-\x1f]'"""  # a regular expression: ", \ or a control character


def _pg_verbatim() -> str:
    checks = (f"coalesce({_pg_text(c)} !~ {PG_NEEDS_ESCAPE}, true)" for c in FREE_TEXT)
    return f"({_pg_plain()}) AND " + " AND ".join(f"({check})" for check in checks)


def _pg_at_iso() -> str:
    """`at` as the text the hash covers ('2026-11-24T09:30:00.123456Z'). to_char() would do, but it
    is only STABLE and costs the export more than any other cell; extract() on a timestamp is
    IMMUTABLE, so the database can keep the text."""
    t = "(at AT TIME ZONE 'UTC')"

    def part(field: str, width: int) -> str:
        return f"lpad(extract({field} FROM {t})::int::text, {width}, '0')"

    micro = f"extract(microseconds FROM {t})::bigint"  # seconds and their fraction, in microseconds
    return (
        f"{part('year', 4)} || '-' || {part('month', 2)} || '-' || {part('day', 2)} || 'T' || "
        f"{part('hour', 2)} || ':' || {part('minute', 2)} || ':' || lpad(({micro} / 1000000)::text, 2, '0') || "
        f"'.' || lpad(({micro} % 1000000)::text, 6, '0') || 'Z'"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        columns = [f"ADD COLUMN {key} text GENERATED ALWAYS AS ({_pg_text(key)}) STORED" for key in TEXT_FIELDS]
        columns.append(f"ADD COLUMN findings text GENERATED ALWAYS AS ({PG_FINDINGS}) STORED")
        columns.append(f"ADD COLUMN plain boolean GENERATED ALWAYS AS ({_pg_plain()}) STORED")
        columns.append(f"ADD COLUMN verbatim boolean GENERATED ALWAYS AS ({_pg_verbatim()}) STORED")
        columns.append(f"ADD COLUMN formula boolean GENERATED ALWAYS AS ({_pg_formula()}) STORED")
        columns.append(f"ADD COLUMN at_iso text GENERATED ALWAYS AS ({_pg_at_iso()}) STORED")
        op.execute(f"ALTER TABLE auditevent {', '.join(columns)}")
        return
    generated = [f"{key} TEXT GENERATED ALWAYS AS ({_sqlite_text(key)}) STORED" for key in TEXT_FIELDS]
    generated.append(f"findings TEXT GENERATED ALWAYS AS ({SQLITE_FINDINGS}) STORED")
    generated.append(f"plain INTEGER GENERATED ALWAYS AS ({_sqlite_plain()}) STORED")
    generated.append(f"verbatim INTEGER GENERATED ALWAYS AS ({_sqlite_verbatim()}) STORED")
    generated.append(f"formula INTEGER GENERATED ALWAYS AS ({_sqlite_formula()}) STORED")
    base = "seq, at, actor, action, announcement_id, data, prev_hash, hash"
    op.execute(
        "CREATE TABLE auditevent_new (seq INTEGER NOT NULL, at DATETIME NOT NULL, actor VARCHAR(64) NOT NULL, "
        "action VARCHAR(40) NOT NULL, announcement_id INTEGER, data VARCHAR NOT NULL, "
        "prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL, "
        f"{', '.join(generated)}, PRIMARY KEY (seq))"
    )
    op.execute(f"INSERT INTO auditevent_new ({base}) SELECT {base} FROM auditevent ORDER BY seq")  # noqa: S608
    op.execute("DROP TABLE auditevent")
    op.execute("ALTER TABLE auditevent_new RENAME TO auditevent")
    op.execute("CREATE INDEX ix_auditevent_announcement_id ON auditevent (announcement_id)")
    op.execute("CREATE INDEX ix_auditevent_at ON auditevent (at)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drops = ", ".join(
            f"DROP COLUMN {key}" for key in (*TEXT_FIELDS, "findings", "plain", "verbatim", "formula", "at_iso")
        )
        op.execute(f"ALTER TABLE auditevent {drops}")
        return
    with op.batch_alter_table("auditevent") as batch_op:
        for key in (*TEXT_FIELDS, "findings", "plain", "verbatim", "formula"):
            batch_op.drop_column(key)
