"""Post to a Slack channel with chat.postMessage.

The delivery key rides along as message metadata, so after a crash or a lost answer the
outbox can look in conversations.history and find the message instead of posting it twice.
"""

from __future__ import annotations

import socket
import urllib.error

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

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
from workflow.destinations.http import retry_after_seconds
from workflow.settings import DestinationSettings

EVENT_TYPE = "count_to_ten_delivery"
LIMIT = 4_000  # chat.postMessage: text beyond 4,000 characters is truncated (40,000 hard limit)
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def escape(text: str) -> str:
    """Slack's three control characters, so a draft cannot ping @channel or forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackDestination:
    type = "slack"
    redelivery = Redelivery.LOOKUP

    def __init__(self, settings: DestinationSettings, *, client: WebClient) -> None:
        self.name = settings.name
        self.channel = str(settings.options["channel"])
        self.client = client

    def length(self, post: Post) -> Length:
        return Length(len(self._text(post)), LIMIT)

    def check(self, post: Post) -> list[str]:
        return too_long(self.name, self.length(post))

    def _text(self, post: Post) -> str:
        body = escape(post.text)
        return f"*{escape(post.title)}*\n{body}" if post.title else body

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        # A follow-up goes into the thread of the first post (Slack threads are one level deep).
        thread_ts = (reply_to.extra.get("thread_ts") or reply_to.remote_id) if reply_to else None
        response = self._call(
            "chat.postMessage",
            channel=self.channel,
            text=self._text(post),
            unfurl_links=False,
            thread_ts=thread_ts,
            metadata={
                "event_type": EVENT_TYPE,
                "event_payload": {"key": key, "announcement": post.announcement_id or 0},
            },
        )
        ts = str(response["ts"])
        extra = {"channel": str(response["channel"]), "thread_ts": thread_ts or ts}
        return Receipt(remote_id=ts, url=self._permalink(ts), extra=extra)

    def find(self, post: Post, *, key: str) -> Receipt | None:
        oldest = f"{post.released_at.timestamp() - 60:.6f}" if post.released_at else None
        cursor = None
        for _ in range(10):  # at most 1,000 messages back: the post is minutes old
            response = self._call(
                "conversations.history",
                channel=self.channel,
                limit=100,
                include_all_metadata=True,
                oldest=oldest,
                cursor=cursor,
            )
            for message in response.get("messages", []):
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == EVENT_TYPE and (metadata.get("event_payload") or {}).get("key") == key:
                    ts = str(message["ts"])
                    return Receipt(remote_id=ts, url=self._permalink(ts), extra={"channel": self.channel})
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def retract(self, receipt: Receipt) -> None:
        self._call("chat.delete", channel=receipt.extra.get("channel", self.channel), ts=receipt.remote_id)

    def verify(self) -> str:
        response = self._call("auth.test")
        return f"{self.name}: posting as {response.get('user')} in {response.get('team')} to {self.channel}"

    def _permalink(self, ts: str) -> str | None:
        try:
            return str(self.client.chat_getPermalink(channel=self.channel, message_ts=ts)["permalink"])
        except (SlackApiError, urllib.error.URLError, TimeoutError):
            return None  # the post is out; a missing link is cosmetic

    def _call(self, method: str, **params: object) -> dict:  # type: ignore[type-arg]
        what = f"{self.name}: {method}"
        try:
            return self.client.api_call(method, json={k: v for k, v in params.items() if v is not None}).data  # type: ignore[return-value]
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if exc.response.status_code == 429 or error in TRANSIENT_ERRORS or exc.response.status_code >= 500:
                wait = retry_after_seconds(
                    exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                )
                raise TransientPublishError(f"{what}: {error}", retry_after=wait) from exc
            raise PermanentPublishError(f"{what}: {error}") from exc
        except TimeoutError as exc:
            raise UncertainPublishError(f"{what}: no answer in time; the message may have been posted") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise UncertainPublishError(f"{what}: no answer in time; the message may have been posted") from exc
            raise TransientPublishError(f"{what}: could not connect ({exc.reason})") from exc
