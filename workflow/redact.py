"""Keep configured secrets out of logs, error messages and the audit log.

Adapters already write errors without credentials; this is the second line of defence for the
text we did not write ourselves (an error body that echoes a token, a library's log line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "[redacted]"


class Redactor(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = self(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True

    def install(self) -> None:
        """Filter every record that reaches the root logger's handlers."""
        for handler in logging.getLogger().handlers:
            handler.addFilter(self)
