"""A fake Atlassian Statuspage manage API on loopback.

What it models, and where each fact comes from (developer.statuspage.io, whose OpenAPI
description the generated SDKs reproduce, e.g. github.com/alissonlinneker/statuspage-php-sdk
docs/Model/Incident.md, Page.md, ErrorEntity.md, PatchPagesPageIdIncidentsIncident.md):
- Authentication: `Authorization: OAuth <api key>`; anything else is 401. Errors are the
  OpenAPI `ErrorEntity`, `{"message": "…"}`.
- POST /v1/pages/{page_id}/incidents {"incident": {name, status, body, component_ids,
  components, metadata, deliver_notifications}} → 201 Incident (`id`, `name`, `status`,
  `shortlink`, `metadata`, `incident_updates`, `components`, …). The name is required and at
  most 255 characters; realtime statuses are investigating, identified, monitoring, resolved;
  metadata "top level values must be objects" (otherwise 422).
- PATCH /v1/pages/{page_id}/incidents/{id}: a new status and body add an incident update.
- GET /v1/pages/{page_id}/incidents/unresolved and GET /v1/pages/{page_id}/incidents, newest
  first, `page` and `per_page` query parameters.
- DELETE /v1/pages/{page_id}/incidents/{id} → the deleted incident; GET /v1/pages/{page_id}.
- Rate limit "1 request / second as measured on a 60 second rolling window … Error codes 420 or
  429 indicate that you have exceeded the rate limit" (the API overview). Off by default so
  tests run fast; `enforce_rate_limit=True` turns it on and answers 420 with `Retry-After`.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

STATUSES = {"investigating", "identified", "monitoring", "resolved"}
COMPONENT_STATUSES = {"operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _new_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


class FakeStatuspage(FakeServer):
    def __init__(
        self,
        *,
        api_key: str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        page_id: str = "kctbh9vrtdwd",
        components: tuple[str, ...] = ("cmp1aaaaaaaa", "cmp2bbbbbbbb"),
        enforce_rate_limit: bool = False,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.page_id = page_id
        self.page_name = "Example Status"
        self.components = {cid: "operational" for cid in components}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.enforce_rate_limit = enforce_rate_limit
        self._last_request: float | None = None
        self._order = itertools.count()
        self._delays: list[float] = []

    def answer_slowly(self, seconds: float) -> None:
        """Process the next request fully, then hold the answer back (the answer is lost)."""
        self._delays.append(seconds)

    @staticmethod
    def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response(status, {"message": message}, headers=headers or {})

    def rate_limited(self, status: int = 420, retry_after: int = 1) -> Response:
        return self.error(status, "Rate limit exceeded", headers={"Retry-After": str(retry_after)})

    # --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"OAuth {self.api_key}":
            return self.error(401, "Could not authenticate")
        now = time.monotonic()
        if self.enforce_rate_limit and self._last_request is not None and now - self._last_request < 1.0:
            return self.rate_limited()
        self._last_request = now
        prefix = f"/v1/pages/{self.page_id}"
        if not request.path.startswith(prefix):
            return self.error(404, "The requested resource could not be found.")
        path = request.path[len(prefix) :]
        response = self._route(request, path)
        if self._delays:
            response.delay = self._delays.pop(0)
        return response

    def _route(self, request: Request, path: str) -> Response:
        if path == "" and request.method == "GET":
            return Response(200, {"id": self.page_id, "name": self.page_name, "subdomain": "example"})
        if path == "/incidents" and request.method == "POST":
            return self.create((request.json() or {}).get("incident") or {})
        if path in ("/incidents", "/incidents/unresolved") and request.method == "GET":
            incidents = sorted(self.incidents.values(), key=lambda i: -i["_order"])
            if path.endswith("unresolved"):
                incidents = [i for i in incidents if i["status"] != "resolved"]
            page = int(request.query.get("page", ["1"])[0])
            per_page = int(request.query.get("per_page", ["100"])[0])
            chosen = incidents[(page - 1) * per_page : page * per_page]
            return Response(200, [self.public(i) for i in chosen])
        match = re.fullmatch(r"/incidents/([a-z0-9]+)", path)
        if match:
            incident = self.incidents.get(match.group(1))
            if incident is None:
                return self.error(404, "The requested resource could not be found.")
            if request.method == "GET":
                return Response(200, self.public(incident))
            if request.method == "PATCH":
                return self.update(incident, (request.json() or {}).get("incident") or {})
            if request.method == "DELETE":
                del self.incidents[incident["id"]]
                return Response(200, self.public(incident))
        return self.error(404, "The requested resource could not be found.")

    def _validate(self, fields: dict[str, Any], *, creating: bool) -> Response | None:
        name = fields.get("name")
        if creating and not (isinstance(name, str) and name.strip()):
            return self.error(422, "Name can't be blank")
        if isinstance(name, str) and len(name) > 255:
            return self.error(422, "Name is too long (maximum is 255 characters)")
        if "status" in fields and fields["status"] not in STATUSES:
            return self.error(422, "Status is not included in the list")
        metadata = fields.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict) or not all(isinstance(v, dict) for v in metadata.values())
        ):
            return self.error(422, "Metadata top level values must be objects")
        for cid in fields.get("component_ids") or []:
            if cid not in self.components:
                return self.error(422, f"Component {cid} does not exist")
        for cid, status in (fields.get("components") or {}).items():
            if cid not in self.components or status not in COMPONENT_STATUSES:
                return self.error(422, "Components are invalid")
        return None

    def create(self, fields: dict[str, Any]) -> Response:
        invalid = self._validate(fields, creating=True)
        if invalid:
            return invalid
        incident_id = _new_id()
        status = fields.get("status", "investigating")
        for cid, component_status in (fields.get("components") or {}).items():
            self.components[cid] = component_status
        incident = {
            "_order": next(self._order),
            "id": incident_id,
            "page_id": self.page_id,
            "name": fields["name"],
            "status": status,
            "impact": "minor",
            "shortlink": f"https://stspg.io/{incident_id[:6]}",
            "created_at": _now(),
            "metadata": fields.get("metadata") or {},
            "components": [{"id": cid, "status": self.components[cid]} for cid in fields.get("component_ids") or []],
            "incident_updates": [
                {"id": _new_id(), "status": status, "body": fields.get("body", ""), "created_at": _now()}
            ],
            "deliver_notifications": fields.get("deliver_notifications", True),
        }
        self.incidents[incident_id] = incident
        return Response(201, self.public(incident))

    def update(self, incident: dict[str, Any], fields: dict[str, Any]) -> Response:
        invalid = self._validate(fields, creating=False)
        if invalid:
            return invalid
        if "status" in fields:
            incident["status"] = fields["status"]
        if "metadata" in fields:
            incident["metadata"] = {**incident["metadata"], **fields["metadata"]}
        if "body" in fields or "status" in fields:
            update = {
                "id": _new_id(),
                "status": incident["status"],
                "body": fields.get("body", ""),
                "created_at": _now(),
            }
            incident["incident_updates"].insert(0, update)
        return Response(200, self.public(incident))

    @staticmethod
    def public(incident: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in incident.items() if not k.startswith("_")}
