"""A fake Microsoft Teams Workflows webhook (Power Automate "When a Teams webhook request is
received" trigger) on loopback.

What it models, and where each fact comes from:
- The trigger URL looks like `/powerautomate/automations/direct/workflows/<id>/triggers/manual/
  paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=<signature>`; the `sig`
  query parameter is the credential (reshmeeauckloo.com/posts/powerautomate-invoke-from-
  anotherapp; argo-cd docs, notifications/services/teams-workflows). A missing or wrong
  signature is 401 with an `{"error": {"code", "message"}}` body (the code name here is
  illustrative; the shape is Power Automate's error envelope).
- The body must be a message with an Adaptive Card attachment, `{"type": "message",
  "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content":
  {"type": "AdaptiveCard", ...}}]}` (learn.microsoft.com/microsoftteams/platform/webhooks-and-
  connectors/how-to/add-incoming-webhook and the Workflows template); otherwise 400.
- Over about 28 KB is "Request entity too large" (learn.microsoft.com/connectors/teams, known
  issues and limitations): 413 here.
- Success is 202 Accepted with an empty body: the flow runs later and returns no message id.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

LIMIT = 28 * 1024


class FakeTeams(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.workflow_id = "86ffea6392fe4f3f9555f5e8f9b1f06e"
        self.sig = "Zk3pQv9sJ0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV"
        self.cards: list[dict[str, Any]] = []
        self._delays: list[float] = []

    @property
    def path(self) -> str:
        return f"/powerautomate/automations/direct/workflows/{self.workflow_id}/triggers/manual/paths/invoke"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{self.path}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}"

    def answer_slowly(self, seconds: float) -> None:
        """Accept the next message, then hold the answer back (the answer is lost)."""
        self._delays.append(seconds)

    def handle(self, request: Request) -> Response:
        if request.path != self.path or request.method != "POST":
            return Response(404, {"error": {"code": "TriggerNotFound", "message": "The workflow was not found."}})
        if request.query.get("sig", [""])[0] != self.sig:
            return Response(
                401,
                {"error": {"code": "DirectApiAuthorizationRequired", "message": "The request signature is not valid."}},
            )
        if len(request.body) > LIMIT:
            return Response(413, {"error": {"code": "RequestEntityTooLarge", "message": "Request entity too large"}})
        try:
            payload = json.loads(request.body)
            attachment = payload["attachments"][0]
            card = attachment["content"]
            ok = (
                payload.get("type") == "message"
                and attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
                and card.get("type") == "AdaptiveCard"
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            ok = False
        if not ok:
            return Response(
                400, {"error": {"code": "InvalidRequestContent", "message": "The request content is not valid."}}
            )
        self.cards.append(card)
        return Response(202, delay=self._delays.pop(0) if self._delays else 0.0)
