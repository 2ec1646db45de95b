"""The exception tree. Every refusal a person can meet is one of these, with a message written
for that person; `listeners.py` renders them in one place (an ephemeral message or modal
errors). Delivery failures are separate: see `destinations.base`.
"""

from __future__ import annotations


class CountToTenError(Exception):
    """Base of every error the app raises on purpose."""


class SettingsError(CountToTenError):
    """The environment or announce.toml is wrong; one line per problem, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Refusal(CountToTenError):
    """A person asked for something the rules do not allow. The message is shown to them."""


class NotFound(Refusal):
    """The announcement does not exist (any more)."""


class NotAllowed(Refusal):
    """This person may not do this (four eyes, not an approver, not the author)."""


class Conflict(Refusal):
    """Someone else changed the announcement first; the message says what happened."""


class InvalidDraft(Refusal):
    """The draft cannot be submitted. `fields` maps a modal field to its message."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(fields.values()))
        self.fields = fields
