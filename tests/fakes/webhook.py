"""A Standard Webhooks receiver on loopback.

Verifies every request with the reference `standardwebhooks` library (not our own signing
code), rejects bad signatures with 401 as a receiver should, and keeps what it accepted.
Receivers are expected to drop repeats of a `webhook-id` (standardwebhooks.com, "Idempotency"),
so `unique()` is what a real consumer would have acted on.
"""

from __future__ import annotations

from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.server import FakeServer, Request, Response

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class FakeWebhookReceiver(FakeServer):
    def __init__(self, secret: str = SECRET) -> None:
        super().__init__()
        self.verifier = Webhook(secret)
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # (webhook-id, payload) per 2xx answer
        self.rejected = 0

    def handle(self, request: Request) -> Response:
        try:
            payload = self.verifier.verify(request.body, request.headers)
        except WebhookVerificationError:
            self.rejected += 1
            return Response(401, {"error": "bad signature"})
        self.accepted.append((request.headers["webhook-id"], payload))
        return Response(200, {"ok": True})

    def unique(self) -> dict[str, dict[str, Any]]:
        return dict(self.accepted)

    def attempts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]
