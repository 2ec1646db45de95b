"""X: POST /2/tweets signed with OAuth 1.0a user context.

Facts this adapter relies on (docs.x.com):
- Requests are signed with OAuth 1.0a HMAC-SHA1 (fundamentals/authentication/oauth-1-0a/
  creating-a-signature); oauthlib does the signing, and the page's worked example is a test
  vector. A JSON body is not part of the signature base string (only form bodies are).
- POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}} → 201 {"data": {"id", "text"}}.
  GET /2/users/me checks the credentials without posting; DELETE /2/tweets/:id deletes.
- Rate limits (fundamentals/rate-limits): `x-rate-limit-reset` is a Unix time in seconds.
- Errors are problem documents: 401 `{"title": "Unauthorized", ...}`; a repeated text is 403
  `{"detail": "You are not allowed to create a Tweet with duplicate content.", ...}`.
- Length is twitter-text v3's weighted length: 280, URLs 23 with or without a scheme, CJK and
  emoji 2, after NFC normalisation.

X has no idempotency key. A lost answer is uncertain and goes to a person on the card (Mark as
sent / Send again); so does a 403 "duplicate content", which almost always means an earlier
attempt did get through.
"""

from __future__ import annotations

import time

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, Client

from workflow.destinations import textlength
from workflow.destinations.base import (
    Length,
    PermanentPublishError,
    Post,
    Receipt,
    Redelivery,
    UncertainPublishError,
    too_long,
)
from workflow.destinations.http import raise_for_status, retry_after_seconds, send
from workflow.settings import DestinationSettings

DEFAULT_BASE_URL = "https://api.x.com"


def authorization(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    form: str | None = None,
    nonce: str | None = None,
    timestamp: str | None = None,
) -> str:
    """The `Authorization: OAuth …` header for one request (a fresh nonce unless given).

    `form` is an application/x-www-form-urlencoded body, which is signed; JSON bodies are not.
    """
    client = Client(
        consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=token,
        resource_owner_secret=token_secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        nonce=nonce,
        timestamp=timestamp,
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else None
    _, signed, _ = client.sign(url, http_method=method, body=form, headers=headers)
    return signed["Authorization"]


def reset_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds until `x-rate-limit-reset` (epoch seconds), else Retry-After."""
    value = response.headers.get("x-rate-limit-reset")
    if value:
        try:
            return max(0.0, float(value) - (time.time() if now is None else now))
        except ValueError:
            pass
    return retry_after_seconds(response.headers.get("retry-after"))


def is_duplicate(response: httpx.Response) -> bool:
    return response.status_code == 403 and "duplicate content" in response.text.lower()


class XDestination:
    type = "x"
    redelivery = Redelivery.NONE

    def __init__(self, settings: DestinationSettings, *, http: httpx.Client) -> None:
        options = settings.options
        self.name = settings.name
        self.base_url = str(options.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self._consumer_key = str(options["consumer_key"])
        self._consumer_secret = str(options["consumer_secret"])
        self._token = str(options["access_token"])
        self._token_secret = str(options["access_token_secret"])
        self.http = http

    # Counting ---------------------------------------------------------------------------

    def length(self, post: Post) -> Length:
        weighted = textlength.x_weighted(post.text)
        return Length(weighted.length, weighted.limit)

    def check(self, post: Post) -> list[str]:
        problems = [f"{self.name}: the text is empty"] if not post.text.strip() else []
        weighted = textlength.x_weighted(post.text)
        if not weighted.valid_characters:
            problems.append(f"{self.name}: the text has characters X does not accept (such as U+FFFF)")
        return problems + too_long(self.name, Length(weighted.length, weighted.limit))

    # Sending ----------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: object) -> httpx.Request:
        url = f"{self.base_url}{path}"
        auth = authorization(
            method,
            url,
            consumer_key=self._consumer_key,
            consumer_secret=self._consumer_secret,
            token=self._token,
            token_secret=self._token_secret,
        )
        return self.http.build_request(method, url, headers={"authorization": auth}, **kwargs)  # type: ignore[arg-type]

    def _raise(self, response: httpx.Response, what: str) -> None:
        raise_for_status(response, what=what, retry_after=reset_after)

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        body: dict[str, object] = {"text": post.text}
        if reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": reply_to.remote_id}
        what = f"{self.name}: post"
        response = send(self.http, self._request("POST", "/2/tweets", json=body), what=what)
        if is_duplicate(response):
            raise UncertainPublishError(
                f"{what}: X refused the text as a duplicate of a recent post (HTTP 403), so an earlier "
                "attempt probably got through; check the account, then Mark as sent or Send again"
            )
        self._raise(response, what)
        try:
            tweet_id = str(response.json()["data"]["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UncertainPublishError(f"{what}: HTTP {response.status_code} but no post id in the answer") from exc
        return Receipt(remote_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")

    def find(self, post: Post, *, key: str) -> Receipt | None:
        return None  # X offers no lookup by a key of ours: a person decides

    def retract(self, receipt: Receipt) -> None:
        what = f"{self.name}: delete post {receipt.remote_id}"
        response = send(self.http, self._request("DELETE", f"/2/tweets/{receipt.remote_id}"), what=what)
        if response.status_code == 404:
            return  # already gone
        self._raise(response, what)

    def verify(self) -> str:
        what = f"{self.name}: verify credentials"
        response = send(self.http, self._request("GET", "/2/users/me"), what=what)
        if response.status_code == 401:
            raise PermanentPublishError(f"{what}: the keys or tokens were refused (HTTP 401)")
        self._raise(response, what)
        try:
            username = response.json()["data"]["username"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentPublishError(f"{what}: unexpected answer") from exc
        return f"{self.name}: @{username}"
