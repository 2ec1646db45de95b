"""Alembic environment: runs on the connection `app.migrate` hands over (or DATABASE_URL)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

import workflow.models  # noqa: F401 - registers the tables on SQLModel.metadata
from workflow.settings import DEFAULT_DATABASE_URL, normalise_database_url

target_metadata = SQLModel.metadata


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Autogenerate leaves alone the audit table's generated export columns (migration 0004),
    which the models leave out on purpose."""
    table = getattr(getattr(obj, "table", None), "name", None)
    return not (type_ == "column" and reflected and compare_to is None and table == "auditevent")


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, include_object=include_object
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:  # handed over by `workflow.db.migrate`, which commits
        run_on(connection)
        return
    url = normalise_database_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    with create_engine(url).connect() as conn:  # the alembic command line
        run_on(conn)
        conn.commit()


run()
