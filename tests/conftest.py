"""Shared fixtures: real databases (a SQLite file and PostgreSQL), a clock tests move by hand,
and settings files written the way a user writes them.

Every test that takes `engine` runs twice, once per database. PostgreSQL comes from
TEST_DATABASE_URL (`.ci/run` sets it); where it is unset or unreachable those runs are
skipped with the reason in pytest's summary, never passed silently.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from workflow.clock import ManualClock
from workflow.db import make_engine, migrate
from workflow.settings import normalise_database_url

TABLES = ("delivery", "approval", "auditevent", "audithead", "destinationstatus", "announcement")


def pg_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    return normalise_database_url(url) if url else None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test: migrating once keeps the suite fast."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_database(worker_id: str) -> Iterator[str]:
    """A database of our own on the test server, migrated once per test process."""
    url = pg_url()
    if not url:
        pytest.skip("PostgreSQL tests skipped: TEST_DATABASE_URL is not set (.ci/run sets it)")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"ctt_{worker_id}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server means: skip, and say why
        admin.dispose()
        pytest.skip(
            f"PostgreSQL tests skipped: cannot reach {make_url(url).render_as_string(hide_password=True)}: {exc}"
        )
    own = make_url(url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(own)
    migrate(engine)
    engine.dispose()
    yield own
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "announce.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """For adapter tests: a short read timeout, so a scripted slow answer becomes a lost answer quickly."""
    with httpx.Client(timeout=httpx.Timeout(2.0, read=0.25)) as client:
        yield client
