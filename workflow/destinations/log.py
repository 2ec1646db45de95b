"""Append each post as one JSON line to a file, or to standard output.

For trying the app out and for staging: the whole flow runs with nothing public at the end.
With a file, a retry first looks for its key, so a post is never written twice.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from workflow.clock import iso
from workflow.destinations.base import Length, PermanentPublishError, Post, Receipt, Redelivery
from workflow.settings import DestinationSettings

_LOCK = threading.Lock()


class LogDestination:
    type = "log"

    def __init__(self, settings: DestinationSettings) -> None:
        self.name = settings.name
        path = settings.options.get("path")
        self.path = Path(str(path)) if path else None
        self.redelivery = Redelivery.LOOKUP if self.path else Redelivery.IDEMPOTENT

    def length(self, post: Post) -> Length:
        return Length(len(post.text), None)

    def check(self, post: Post) -> list[str]:
        return []

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        line = json.dumps(
            {
                "key": key,
                "announcement": post.announcement_id,
                "released_at": iso(post.released_at) if post.released_at else None,
                "title": post.title,
                "status": post.status,
                "text": post.text,
                "reply_to": reply_to.remote_id if reply_to else None,
            },
            ensure_ascii=False,
        )
        with _LOCK:
            if self.path is None:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            else:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with self.path.open("a", encoding="utf-8") as handle:
                        handle.write(line + "\n")
                except OSError as exc:
                    raise PermanentPublishError(f"{self.name}: cannot write {self.path}: {exc.strerror}") from exc
        return Receipt(remote_id=key)

    def find(self, post: Post, *, key: str) -> Receipt | None:
        if self.path is None or not self.path.exists():
            return None
        needle = json.dumps(key)
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                if f'"key": {needle}' in line:
                    return Receipt(remote_id=key)
        return None

    def retract(self, receipt: Receipt) -> None:
        raise PermanentPublishError(f"{self.name}: a log line is not taken back")

    def verify(self) -> str:
        return f"{self.name}: appending to {self.path or 'standard output'}"
