"""A fake Discord webhook endpoint on loopback.

What it models, and where each fact comes from (discord.com/developers/docs, mirrored at
docs.discord.com/developers):
- Execute Webhook, POST /api/webhooks/{id}/{token} (resources/webhook#execute-webhook):
  with `?wait=true` the answer is 200 and the created message; without it, 204 and no body.
- `allowed_mentions` (resources/message#allowed-mentions-object): mentions in the content only
  ping when their type is listed in `parse`; the fake sets `mention_everyone` accordingly, so a
  test can see that `@everyone` did not ping.
- `content` up to 2,000 characters; longer is 400 `{"message": "Invalid Form Body", "code":
  50035, "errors": {...BASE_TYPE_MAX_LENGTH...}}`.
- An unknown webhook is 404 `{"message": "Unknown Webhook", "code": 10015}`, a wrong token 401
  `{"message": "Invalid Webhook Token", "code": 50027}` (topics/opcodes-and-status-codes#json).
- Rate limits (topics/rate-limits): 429 with the body `{"message": "You are being rate
  limited.", "retry_after": <seconds, float>, "global": false}` plus `Retry-After` and
  `X-RateLimit-*` headers.
- GET /api/webhooks/{id}/{token} → the webhook object (no `user`); DELETE
  /api/webhooks/{id}/{token}/messages/{message_id} → 204, or 404 `{"message": "Unknown
  Message", "code": 10008}`.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

UNKNOWN_WEBHOOK = {"message": "Unknown Webhook", "code": 10015}
INVALID_TOKEN = {"message": "Invalid Webhook Token", "code": 50027}


class FakeDiscord(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.webhook_id = "1200000000000000001"
        self.token = "Xyz-webhook-token_0123456789abcdefABCDEF"
        self.guild_id = "1100000000000000001"
        self.channel_id = "1100000000000000002"
        self.messages: dict[str, dict[str, Any]] = {}
        self.deleted = False
        self._ids = itertools.count(1300000000000000001)
        self._delays: list[float] = []

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/webhooks/{self.webhook_id}/{self.token}"

    def answer_slowly(self, seconds: float) -> None:
        """Process the next request fully, then hold the answer back (the answer is lost)."""
        self._delays.append(seconds)

    def rate_limited(self, retry_after: float = 0.75) -> Response:
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        headers = {
            "Retry-After": str(int(retry_after) + 1),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(retry_after),
            "X-RateLimit-Scope": "shared",
        }
        return Response(429, body, headers=headers)

    # --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        match = re.fullmatch(r"/api/webhooks/(\d+)/([^/]+)(?:/messages/(\d+))?", request.path)
        if not match or match.group(1) != self.webhook_id or self.deleted:
            return Response(404, UNKNOWN_WEBHOOK)
        if match.group(2) != self.token:
            return Response(401, INVALID_TOKEN)
        message_id = match.group(3)
        if message_id is not None:
            if request.method != "DELETE":
                return Response(405, {"message": "405: Method Not Allowed", "code": 0})
            if self.messages.pop(message_id, None) is None:
                return Response(404, {"message": "Unknown Message", "code": 10008})
            return Response(204)
        if request.method == "GET":
            return Response(200, self.webhook())
        if request.method != "POST":
            return Response(405, {"message": "405: Method Not Allowed", "code": 0})
        response = self.execute(request)
        if self._delays:
            response.delay = self._delays.pop(0)
        return response

    def execute(self, request: Request) -> Response:
        payload = request.json() or {}
        content = payload.get("content") or ""
        if not content and not payload.get("embeds"):
            return Response(400, {"message": "Cannot send an empty message", "code": 50006})
        if len(content) > 2000:
            errors = {
                "content": {
                    "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
                }
            }
            return Response(400, {"message": "Invalid Form Body", "code": 50035, "errors": errors})
        allowed = payload.get("allowed_mentions")
        parse = ["everyone", "users", "roles"] if allowed is None else list(allowed.get("parse") or [])
        message_id = str(next(self._ids))
        message = {
            "id": message_id,
            "type": 0,
            "content": content,
            "channel_id": self.channel_id,
            "author": {"id": self.webhook_id, "username": payload.get("username") or "Status", "bot": True},
            "webhook_id": self.webhook_id,
            "mention_everyone": "everyone" in parse and ("@everyone" in content or "@here" in content),
            "mentions": [],
            "timestamp": datetime.now(UTC).isoformat(),
            "allowed_mentions": allowed,
        }
        self.messages[message_id] = message
        if request.query.get("wait", ["false"])[0].lower() != "true":
            return Response(204)
        return Response(200, {k: v for k, v in message.items() if k != "allowed_mentions"})

    def webhook(self) -> dict[str, Any]:
        return {
            "type": 1,
            "id": self.webhook_id,
            "name": "Status updates",
            "avatar": None,
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "application_id": None,
            "token": self.token,
        }
