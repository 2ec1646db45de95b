"""A fake Mastodon instance on loopback.

What it models, and where each fact comes from:
- POST /api/v1/statuses (https://docs.joinmastodon.org/methods/statuses/#create): form or
  JSON parameters `status`, `visibility`, `in_reply_to_id`; `Authorization: Bearer <token>`;
  200 with a Status entity; 401 `{"error": "The access token is invalid"}`; 422
  `{"error": "Validation failed: Text can't be blank"}` and, over the limit,
  `{"error": "Validation failed: Text character limit of 500 exceeded"}`.
- `Idempotency-Key`: "stored for up to 1 hour" (same page). Mastodon's PostStatusService keeps
  `idempotency:status:<account id>:<key>` in Redis for 3,600 s and answers a repeat with the
  status it already made (mastodon/mastodon app/services/post_status_service.rb).
- The length rule of StatusLengthValidator (mastodon/mastodon app/validators): grapheme
  clusters, each http(s) URL as `characters_reserved_per_url`, `@user@domain` as `@user`.
- GET /api/v2/instance (https://docs.joinmastodon.org/methods/instance/#v2), public:
  `configuration.statuses.max_characters` and `characters_reserved_per_url`.
- GET /api/v1/accounts/verify_credentials (https://docs.joinmastodon.org/methods/accounts/).
- DELETE /api/v1/statuses/:id, 404 `{"error": "Record not found"}`.
- Rate limit headers `X-RateLimit-Limit`, `-Remaining`, `-Reset` (an ISO 8601 timestamp) on
  authenticated answers (https://docs.joinmastodon.org/api/rate-limits/); `rate_limited()`
  builds the 429 the instance sends when the 300 per 5 minutes are used up.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import grapheme
import twitter_text

from tests.fakes.server import FakeServer, Request, Response

IDEMPOTENCY_TTL = 3600.0
_MENTION = re.compile(r"(?<![=/\w])@(([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@[\w.-]+\w+)?)", re.IGNORECASE)


def countable_length(text: str, url_chars: int) -> int:
    """The server's own count (written apart from the adapter's, so a mistake shows)."""
    for item in sorted(twitter_text.extract_urls_with_indices(text, False), key=lambda u: -u["indices"][0]):
        start, end = item["indices"]
        text = text[:start] + "x" * url_chars + text[end:]
    text = _MENTION.sub(lambda m: "@" + m.group(2), text)
    return grapheme.length(text)


class FakeMastodon(FakeServer):
    domain = "mastodon.example"

    def __init__(
        self,
        *,
        token: str = "mastodon-token-0123456789",
        username: str = "status",
        max_characters: int = 500,
        characters_reserved_per_url: int = 23,
    ) -> None:
        super().__init__()
        self.token = token
        self.username = username
        self.account_id = "109000000000000001"
        self.max_characters = max_characters
        self.characters_reserved_per_url = characters_reserved_per_url
        self.statuses: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, float]] = {}
        self.clock = time.monotonic  # replace to age idempotency keys
        self._ids = itertools.count(110000000000000001)
        self._delays: list[float] = []

    def answer_slowly(self, seconds: float) -> None:
        """Process the next request fully, then hold the answer back (the answer is lost)."""
        self._delays.append(seconds)

    def _delay(self) -> float:
        return self._delays.pop(0) if self._delays else 0.0

    def rate_limit_headers(self, remaining: int = 299, reset_in: float = 300.0) -> dict[str, str]:
        reset = datetime.now(UTC) + timedelta(seconds=reset_in)
        return {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }

    def rate_limited(self, reset_in: float = 120.0) -> Response:
        return Response(429, {"error": "Too many requests"}, headers=self.rate_limit_headers(0, reset_in))

    # --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/api/v2/instance":
            return Response(200, self.instance())
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, {"error": "The access token is invalid"})
        delay = self._delay()
        response = self._route(request)
        response.delay = delay
        response.headers = {**self.rate_limit_headers(), **response.headers}
        return response

    def _route(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/api/v1/accounts/verify_credentials":
            return Response(200, self.account())
        if request.method == "POST" and request.path == "/api/v1/statuses":
            return self.create(request)
        match = re.fullmatch(r"/api/v1/statuses/(\d+)", request.path)
        if match and request.method == "DELETE":
            status = self.statuses.pop(match.group(1), None)
            if status is None:
                return Response(404, {"error": "Record not found"})
            return Response(200, {**status, "text": status["text"]})
        return Response(404, {"error": "Record not found"})

    def create(self, request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("application/json"):
            params = {k: str(v) for k, v in (request.json() or {}).items()}
        else:
            params = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        key = request.headers.get("idempotency-key")
        if key:
            seen = self.idempotency.get((self.account_id, key))
            if seen and self.clock() - seen[1] < IDEMPOTENCY_TTL and seen[0] in self.statuses:
                return Response(200, self.statuses[seen[0]])
        text = params.get("status", "")
        if not text.strip():
            return Response(422, {"error": "Validation failed: Text can't be blank"})
        if countable_length(text, self.characters_reserved_per_url) > self.max_characters:
            return Response(
                422, {"error": f"Validation failed: Text character limit of {self.max_characters} exceeded"}
            )
        reply_to = params.get("in_reply_to_id") or None
        if reply_to and reply_to not in self.statuses:
            return Response(404, {"error": "Record not found"})
        visibility = params.get("visibility", "public")
        if visibility not in {"public", "unlisted", "private", "direct"}:
            return Response(422, {"error": "Validation failed: Visibility is not included in the list"})
        status_id = str(next(self._ids))
        status = {
            "id": status_id,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "in_reply_to_id": reply_to,
            "visibility": visibility,
            "uri": f"https://{self.domain}/users/{self.username}/statuses/{status_id}",
            "url": f"https://{self.domain}/@{self.username}/{status_id}",
            "content": f"<p>{text}</p>",
            "text": text,
            "account": self.account(),
        }
        self.statuses[status_id] = status
        if key:
            self.idempotency[(self.account_id, key)] = (status_id, self.clock())
        return Response(200, status)

    def account(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "username": self.username,
            "acct": self.username,
            "display_name": "Status",
            "url": f"https://{self.domain}/@{self.username}",
        }

    def instance(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "title": "Mastodon",
            "version": "4.3.0",
            "configuration": {
                "statuses": {
                    "max_characters": self.max_characters,
                    "max_media_attachments": 4,
                    "characters_reserved_per_url": self.characters_reserved_per_url,
                }
            },
        }
