"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received").

Facts this adapter relies on:
- Office 365 connectors in Teams are retired; the replacement is a Workflows (Power Automate)
  flow whose trigger URL takes a message with an Adaptive Card attachment:
  `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
  "contentUrl": null, "content": {AdaptiveCard}}]}` (learn.microsoft.com/microsoftteams/platform/
  webhooks-and-connectors/how-to/add-incoming-webhook; Teams connector known limits).
- The flow answers 202 Accepted with no id, so nothing can be looked up or deleted later.
- Teams posts are limited to about 28 KB ("Request entity too large" beyond; learn.microsoft.com
  /connectors/teams known issues and limitations): the whole JSON payload is counted.

The trigger URL carries its signature (`sig=`) in the query: it never appears in a message,
receipt or log line.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from workflow.destinations.base import (
    Length,
    PermanentPublishError,
    Post,
    Receipt,
    Redelivery,
    too_long,
)
from workflow.destinations.http import raise_for_status, send
from workflow.settings import DestinationSettings

LIMIT = 28 * 1024  # bytes of JSON payload
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


class TeamsDestination:
    type = "teams"
    redelivery = Redelivery.NONE

    def __init__(self, settings: DestinationSettings, *, http: httpx.Client) -> None:
        self.name = settings.name
        self._url = str(settings.options["webhook_url"])
        self.http = http

    @property
    def host(self) -> str:
        return urlsplit(self._url).netloc  # never the query: it holds the signature

    def payload(self, post: Post) -> dict[str, Any]:
        body: list[dict[str, Any]] = []
        if post.title:
            body.append({"type": "TextBlock", "text": post.title, "weight": "Bolder", "size": "Medium", "wrap": True})
        body.append({"type": "TextBlock", "text": post.text, "wrap": True})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        }
        return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}

    def body(self, post: Post) -> bytes:
        return json.dumps(self.payload(post), ensure_ascii=False, separators=(",", ":")).encode()

    def length(self, post: Post) -> Length:
        return Length(len(self.body(post)), LIMIT, "bytes")

    def check(self, post: Post) -> list[str]:
        problems = [f"{self.name}: the text is empty"] if not post.text.strip() else []
        return problems + too_long(self.name, self.length(post))

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        what = f"{self.name}: Workflows webhook on {self.host}"
        request = self.http.build_request(
            "POST", self._url, content=self.body(post), headers={"content-type": "application/json"}
        )
        response = send(self.http, request, what=what)
        if response.status_code in (401, 403, 404):
            raise PermanentPublishError(
                f"{what}: the flow refused the request or no longer exists (HTTP {response.status_code}); "
                "switched off until webhook_url is replaced",
                disable=True,
            )
        if response.status_code == 413:
            raise PermanentPublishError(f"{what}: the message is over the Teams size limit (HTTP 413)")
        raise_for_status(response, what=what)
        return Receipt(remote_id=key, extra={"note": "Teams answers 202 with no id; this is the delivery key"})

    def find(self, post: Post, *, key: str) -> Receipt | None:
        return None

    def retract(self, receipt: Receipt) -> None:
        raise PermanentPublishError(
            f"{self.name}: a message posted by a Workflows webhook cannot be deleted by the app; delete it in Teams"
        )

    def verify(self) -> str:
        return f"{self.name}: Workflows webhook on {self.host} (not contacted: any request would post a message)"
