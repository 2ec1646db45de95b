"""Shared HTTP plumbing for destinations: one place that turns httpx outcomes into the three
failure classes, so every adapter classifies a timeout or a 503 the same way.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import httpx

from workflow.destinations.base import (
    PermanentPublishError,
    TransientPublishError,
    UncertainPublishError,
)

# Statuses that mean "nothing happened, try later" (DESIGN §3).
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)


def send(client: httpx.Client, request: httpx.Request, *, what: str) -> httpx.Response:
    """Send `request`, mapping transport failures to the failure classes.

    A connect error or connect timeout means the request never left: transient. A read or
    write timeout, or a connection dropped mid-answer, means it may have arrived: uncertain.
    """
    try:
        return client.send(request)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientPublishError(f"{what}: could not connect ({type(exc).__name__})") from exc
    except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
        raise UncertainPublishError(f"{what}: no answer in time; the post may have been sent") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise UncertainPublishError(f"{what}: connection lost mid-request ({type(exc).__name__})") from exc


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def short_body(response: httpx.Response, limit: int = 200) -> str:
    """A bounded excerpt of an error body for the card and the audit log."""
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def raise_for_status(
    response: httpx.Response,
    *,
    what: str,
    retry_after: Callable[[httpx.Response], float | None] | None = None,
    transient: Iterable[int] = TRANSIENT_STATUSES,
) -> None:
    """Raise the right failure class for a non-2xx answer.

    `retry_after` lets an adapter read its platform's own reset header; by default the
    standard Retry-After header is honoured.
    """
    if response.is_success:
        return
    status = response.status_code
    detail = f"{what}: HTTP {status} {short_body(response)}".rstrip()
    if status in set(transient) or status >= 500:
        wait = retry_after(response) if retry_after else retry_after_seconds(response.headers.get("retry-after"))
        raise TransientPublishError(detail, retry_after=wait)
    raise PermanentPublishError(detail)
