"""A signed JSON POST following Standard Webhooks (standardwebhooks.com).

`webhook-id` is derived from the delivery key, so it stays the same across retries and the
receiver can drop duplicates; the timestamp and signature are fresh on every attempt. A 410
Gone means the receiver wants no more: the destination is switched off until its
configuration changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import httpx

from workflow.clock import Clock, SystemClock, iso
from workflow.destinations.base import Length, PermanentPublishError, Post, Receipt, Redelivery, too_long
from workflow.destinations.http import raise_for_status, send
from workflow.settings import DestinationSettings

LIMIT = 20 * 1024  # bytes of JSON body


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


class WebhookDestination:
    type = "webhook"
    redelivery = Redelivery.IDEMPOTENT  # receivers dedupe on webhook-id

    def __init__(self, settings: DestinationSettings, *, http: httpx.Client, clock: Clock | None = None) -> None:
        self.name = settings.name
        self.url = str(settings.options["url"])
        self.secret = str(settings.options["secret"])
        self.http = http
        self.clock = clock or SystemClock()

    def body(self, post: Post) -> bytes:
        payload = {
            "type": "announcement.published",
            "timestamp": iso(post.released_at) if post.released_at else None,
            "data": {"id": post.announcement_id, "title": post.title, "status": post.status, "text": post.text},
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def length(self, post: Post) -> Length:
        return Length(len(self.body(post)), LIMIT, "bytes")

    def check(self, post: Post) -> list[str]:
        return too_long(self.name, self.length(post))

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        body = self.body(post)
        msg_id = f"msg_{key}"
        timestamp = int(self.clock.now().timestamp())
        request = self.http.build_request(
            "POST",
            self.url,
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(self.secret, msg_id=msg_id, timestamp=timestamp, body=body),
            },
        )
        what = f"{self.name} ({self.host})"
        response = send(self.http, request, what=what)
        if response.status_code == 410:
            raise PermanentPublishError(f"{what}: HTTP 410 Gone; switched off until its url changes", disable=True)
        raise_for_status(response, what=what)
        return Receipt(remote_id=msg_id)

    def find(self, post: Post, *, key: str) -> Receipt | None:
        return None

    def retract(self, receipt: Receipt) -> None:
        raise PermanentPublishError(f"{self.name}: a webhook cannot be taken back")

    def verify(self) -> str:
        return f"{self.name}: webhook to {self.host} (not contacted: any request would be a delivery)"

    @property
    def host(self) -> str:
        # Never the whole URL: its path or query may carry a token.
        return urlsplit(self.url).netloc
