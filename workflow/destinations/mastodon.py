"""Mastodon: POST /api/v1/statuses with an `Idempotency-Key`.

Facts this adapter relies on (docs.joinmastodon.org, mastodon/documentation):
- `Idempotency-Key` on POST /api/v1/statuses: "Idempotency keys are stored for up to 1 hour"
  (methods/statuses). The server keeps them per account, so a retry of the same delivery with
  the same key within the hour returns the status the first attempt made instead of a second
  one. The key is the delivery key, which is stable across retries. Past the hour a retry could
  post again; the outbox's retry window is far shorter.
- The limit is the instance's own: GET /api/v2/instance → `configuration.statuses`
  `max_characters` and `characters_reserved_per_url` (methods/instance). Cached for an hour;
  500 and 23 when the instance cannot be asked.
- Counting (StatusLengthValidator): grapheme clusters; every http(s) URL counts as
  `characters_reserved_per_url`; `@user@domain` counts as `@user`.
- Rate limits (api/rate-limits): `X-RateLimit-Reset` is a timestamp (ISO 8601), not seconds.
- 401 `{"error": "The access token is invalid"}` and 422 `{"error": "Validation failed: …"}`
  are permanent.
- GET /api/v1/accounts/verify_credentials checks the token without posting.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from workflow.destinations import textlength
from workflow.destinations.base import (
    Length,
    PermanentPublishError,
    Post,
    PublishError,
    Receipt,
    Redelivery,
    UncertainPublishError,
    too_long,
)
from workflow.destinations.http import raise_for_status, retry_after_seconds, send
from workflow.settings import DestinationSettings

DEFAULT_MAX_CHARACTERS = 500
DEFAULT_URL_CHARACTERS = 23
INSTANCE_TTL = 3600.0  # seconds to trust the instance's limits
INSTANCE_RETRY = 60.0  # seconds before asking again after the instance could not be reached
INSTANCE_TIMEOUT = httpx.Timeout(2.0)  # a modal submission waits on this (Slack allows 3 s)
VISIBILITIES = ("public", "unlisted", "private", "direct")


def reset_after(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """Seconds until Mastodon's `X-RateLimit-Reset` (an ISO 8601 time), else Retry-After."""
    value = response.headers.get("x-ratelimit-reset")
    if value:
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    return retry_after_seconds(response.headers.get("retry-after"), now=now)


class MastodonDestination:
    type = "mastodon"
    redelivery = Redelivery.IDEMPOTENT

    def __init__(self, settings: DestinationSettings, *, http: httpx.Client) -> None:
        options = settings.options
        self.name = settings.name
        self.base_url = str(options["base_url"]).rstrip("/")
        self._token = str(options["access_token"])
        self.visibility = str(options.get("visibility") or "public")
        self.http = http
        self._limits: tuple[int, int] | None = None
        self._limits_until = 0.0
        self._lock = threading.Lock()

    # Counting ---------------------------------------------------------------------------

    def limits(self) -> tuple[int, int]:
        """(max_characters, characters_reserved_per_url) of this instance, cached."""
        with self._lock:
            if self._limits is not None and time.monotonic() < self._limits_until:
                return self._limits
        limits, ttl = self._fetch_limits()
        with self._lock:
            self._limits = limits
            self._limits_until = time.monotonic() + ttl
        return limits

    def _fetch_limits(self) -> tuple[tuple[int, int], float]:
        fallback = (DEFAULT_MAX_CHARACTERS, DEFAULT_URL_CHARACTERS)
        try:
            response = self.http.get(f"{self.base_url}/api/v2/instance", timeout=INSTANCE_TIMEOUT)
        except httpx.HTTPError:
            return fallback, INSTANCE_RETRY
        if not response.is_success:
            return fallback, INSTANCE_RETRY
        try:
            statuses = response.json()["configuration"]["statuses"]
            max_chars = int(statuses.get("max_characters") or DEFAULT_MAX_CHARACTERS)
            url_chars = int(statuses.get("characters_reserved_per_url") or DEFAULT_URL_CHARACTERS)
        except (ValueError, KeyError, TypeError, AttributeError):
            return fallback, INSTANCE_RETRY
        return (max_chars, url_chars), INSTANCE_TTL

    def length(self, post: Post) -> Length:
        max_chars, url_chars = self.limits()
        return Length(textlength.mastodon_length(post.text, url_chars=url_chars), max_chars)

    def check(self, post: Post) -> list[str]:
        problems = []
        if not post.text.strip():
            problems.append(f"{self.name}: the text is empty")
        if self.visibility not in VISIBILITIES:
            problems.append(f"{self.name}: visibility {self.visibility!r} is not one of {', '.join(VISIBILITIES)}")
        return problems + too_long(self.name, self.length(post))

    # Sending ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._token}"}

    def _raise(self, response: httpx.Response, what: str) -> None:
        raise_for_status(response, what=what, retry_after=reset_after)

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        form = {"status": post.text, "visibility": self.visibility}
        if reply_to is not None:
            form["in_reply_to_id"] = reply_to.remote_id
        request = self.http.build_request(
            "POST",
            f"{self.base_url}/api/v1/statuses",
            data=form,
            headers={**self._headers(), "idempotency-key": key},
        )
        what = f"{self.name}: post status"
        response = send(self.http, request, what=what)
        self._raise(response, what)
        status = _json(response, what, error=UncertainPublishError)
        status_id = status.get("id")
        if not status_id:
            raise UncertainPublishError(f"{what}: HTTP {response.status_code} but no status id in the answer")
        return Receipt(remote_id=str(status_id), url=status.get("url") or status.get("uri"))

    def find(self, post: Post, *, key: str) -> Receipt | None:
        return None  # IDEMPOTENT: sending again with the same key is the lookup

    def retract(self, receipt: Receipt) -> None:
        what = f"{self.name}: delete status {receipt.remote_id}"
        request = self.http.build_request(
            "DELETE", f"{self.base_url}/api/v1/statuses/{receipt.remote_id}", headers=self._headers()
        )
        response = send(self.http, request, what=what)
        if response.status_code == 404:
            return  # already gone
        self._raise(response, what)

    def verify(self) -> str:
        what = f"{self.name}: verify credentials"
        request = self.http.build_request(
            "GET", f"{self.base_url}/api/v1/accounts/verify_credentials", headers=self._headers()
        )
        response = send(self.http, request, what=what)
        if response.status_code == 401:
            raise PermanentPublishError(f"{what}: the access token was refused (HTTP 401)")
        self._raise(response, what)
        account = _json(response, what)
        host = urlsplit(self.base_url).hostname or self.base_url
        max_chars, _ = self.limits()  # warms the cache the compose modal counts with
        return f"{self.name}: @{account.get('username') or account.get('acct')}@{host} ({max_chars} characters a post)"


def _json(response: httpx.Response, what: str, *, error: type[PublishError] = PermanentPublishError) -> dict:
    """The JSON object of a 2xx answer; a 2xx that cannot be read after a send is uncertain."""
    try:
        data = response.json()
    except ValueError as exc:
        raise error(f"{what}: HTTP {response.status_code} but the answer was not JSON") from exc
    if not isinstance(data, dict):
        raise error(f"{what}: HTTP {response.status_code} but the answer was not a JSON object")
    return data
