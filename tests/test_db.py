"""The database layer: SQLite reads never wait for a writer; writes serialise cleanly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlmodel import Session, select

from workflow.db import make_engine, migrate, transaction
from workflow.models import AuditHead


def test_sqlite_reads_do_not_queue_behind_a_write(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    writing = threading.Event()
    done = threading.Event()

    def writer() -> None:
        with transaction(engine) as session:
            session.add(AuditHead(id=1, seq=0))
            session.flush()
            writing.set()
            done.wait(5)  # hold the write lock

    thread = threading.Thread(target=writer)
    thread.start()
    assert writing.wait(5)
    started = time.monotonic()
    with Session(engine) as session:
        assert session.exec(select(AuditHead)).all() == []  # the snapshot before the write
    assert time.monotonic() - started < 1.0
    done.set()
    thread.join()
    with Session(engine) as session:
        assert len(session.exec(select(AuditHead)).all()) == 1
