"""Discord: execute a channel webhook.

Facts this adapter relies on (discord.com/developers/docs, resources/webhook and topics/…):
- POST /webhooks/{id}/{token}?wait=true "waits for server confirmation of message send before
  response, and returns the created message body"; without `wait` nothing comes back (204).
- `allowed_mentions: {"parse": []}` stops the message from pinging @everyone, roles or users,
  whatever the text says.
- `content` is at most 2,000 characters.
- 429 (topics/rate-limits): a JSON body `{"message", "retry_after" (seconds, float), "global"}`.
- 401 `{"message": "Invalid Webhook Token", "code": 50027}` / 404 `{"message": "Unknown
  Webhook", "code": 10015}` (topics/opcodes-and-status-codes): the webhook is gone, so the
  destination is switched off at once.
- GET /webhooks/{id}/{token} returns the webhook without posting; DELETE
  /webhooks/{id}/{token}/messages/{message_id} deletes a message it sent.

The webhook URL embeds its token: it never appears in a message, receipt or log line.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import httpx

from workflow.destinations.base import (
    Length,
    PermanentPublishError,
    Post,
    Receipt,
    Redelivery,
    TransientPublishError,
    UncertainPublishError,
    too_long,
)
from workflow.destinations.http import raise_for_status, retry_after_seconds, send
from workflow.settings import DestinationSettings

LIMIT = 2000


def retry_after(response: httpx.Response) -> float | None:
    """Discord's `retry_after` from the 429 body (seconds), else the Retry-After header."""
    try:
        value = response.json().get("retry_after")
        if value is not None:
            return max(0.0, float(value))
    except (ValueError, AttributeError, TypeError):
        pass
    return retry_after_seconds(response.headers.get("retry-after"))


class DiscordDestination:
    type = "discord"
    redelivery = Redelivery.NONE

    def __init__(self, settings: DestinationSettings, *, http: httpx.Client) -> None:
        options = settings.options
        self.name = settings.name
        url = httpx.URL(str(options["webhook_url"]))
        self._url = str(url.copy_with(query=None)).rstrip("/")
        self._params = dict(url.params)  # e.g. thread_id, for a webhook posting into a thread
        self.username = str(options["username"]) if options.get("username") else None
        self.http = http
        self._guild_id: str | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return urlsplit(self._url).netloc  # never the path: it holds the token

    # Counting ---------------------------------------------------------------------------

    def length(self, post: Post) -> Length:
        return Length(len(self.content(post)), LIMIT)

    def check(self, post: Post) -> list[str]:
        problems = [f"{self.name}: the text is empty"] if not post.text.strip() else []
        return problems + too_long(self.name, self.length(post))

    def content(self, post: Post) -> str:
        return post.text

    # Sending ----------------------------------------------------------------------------

    def _raise(self, response: httpx.Response, what: str) -> None:
        if response.status_code in (401, 404):
            raise PermanentPublishError(
                f"{what}: the webhook is gone (HTTP {response.status_code}); switched off until "
                "webhook_url is replaced",
                disable=True,
            )
        if response.status_code == 429:
            raise TransientPublishError(f"{what}: rate limited (HTTP 429)", retry_after=retry_after(response))
        raise_for_status(response, what=what, retry_after=retry_after)

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        payload: dict[str, object] = {"content": self.content(post), "allowed_mentions": {"parse": []}}
        if self.username:
            payload["username"] = self.username
        what = f"{self.name}: execute webhook on {self.host}"
        request = self.http.build_request("POST", self._url, params={**self._params, "wait": "true"}, json=payload)
        response = send(self.http, request, what=what)
        self._raise(response, what)
        try:
            message = response.json()
            message_id = str(message["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UncertainPublishError(f"{what}: HTTP {response.status_code} but no message in the answer") from exc
        channel_id = str(message.get("channel_id") or "")
        guild_id = str(message.get("guild_id") or "") or self._guild_id
        url = f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}" if guild_id and channel_id else None
        return Receipt(remote_id=message_id, url=url, extra={"channel_id": channel_id})

    def find(self, post: Post, *, key: str) -> Receipt | None:
        return None  # a webhook cannot search; a person decides

    def retract(self, receipt: Receipt) -> None:
        what = f"{self.name}: delete message {receipt.remote_id}"
        request = self.http.build_request("DELETE", f"{self._url}/messages/{receipt.remote_id}", params=self._params)
        response = send(self.http, request, what=what)
        if response.status_code == 404 and _code(response) == 10008:
            return  # Unknown Message: already gone
        self._raise(response, what)

    def verify(self) -> str:
        what = f"{self.name}: look up webhook on {self.host}"
        response = send(self.http, self.http.build_request("GET", self._url, params=self._params), what=what)
        self._raise(response, what)
        try:
            webhook = response.json()
            name, channel = webhook.get("name"), webhook.get("channel_id")
        except (ValueError, AttributeError) as exc:
            raise PermanentPublishError(f"{what}: unexpected answer") from exc
        with self._lock:
            self._guild_id = str(webhook.get("guild_id") or "") or None
        return f"{self.name}: webhook {name!r} posting to channel {channel}"


def _code(response: httpx.Response) -> int | None:
    try:
        return int(response.json().get("code"))
    except (ValueError, AttributeError, TypeError):
        return None
