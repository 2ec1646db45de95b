"""Atlassian Statuspage: create an incident, follow-ups update it.

Facts this adapter relies on (developer.statuspage.io and its OpenAPI description):
- `Authorization: OAuth <api key>`; base https://api.statuspage.io/v1.
- POST /v1/pages/{page_id}/incidents {"incident": {name, status, body, component_ids,
  components, metadata, deliver_notifications}} → 201 incident with `id` and `shortlink`.
  Incident names are at most 255 characters; realtime statuses are investigating, identified,
  monitoring and resolved.
- `metadata` attaches a JSON object to the incident; every top-level value must be an object.
  The adapter writes `{"count_to_ten": {"delivery": <key>, "kind": "create" | "update"}}`, so after an uncertain create
  `find` looks through GET /v1/pages/{page_id}/incidents/unresolved (and the most recent
  incidents, for one resolved straight away) instead of creating the incident twice.
- PATCH /v1/pages/{page_id}/incidents/{id} with a new status and body adds an incident update:
  that is how a follow-up (reply) is sent.
- Rate limit: 1 request a second per key; "Error codes 420 or 429 indicate that you have
  exceeded the rate limit", with Retry-After.
- GET /v1/pages/{page_id} checks the key without posting; DELETE .../incidents/{id} deletes.
"""

from __future__ import annotations

from typing import Any

import httpx

from workflow.destinations.base import (
    Length,
    PermanentPublishError,
    Post,
    Receipt,
    Redelivery,
    UncertainPublishError,
    too_long,
)
from workflow.destinations.http import TRANSIENT_STATUSES, raise_for_status, send
from workflow.settings import DestinationSettings

DEFAULT_BASE_URL = "https://api.statuspage.io"
STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
BODY_LIMIT = 25_000
NAME_LIMIT = 255
MARKER = "count_to_ten"
RATE_LIMITED = TRANSIENT_STATUSES | {420}
PAGE_SIZE = 100


def marker_of(incident: dict[str, Any]) -> dict[str, Any]:
    """Our metadata marker on an incident: {"delivery": key, "kind": "create" | "update"}."""
    metadata = incident.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get(MARKER), dict):
        return metadata[MARKER]
    return {}


class StatuspageDestination:
    type = "statuspage"
    redelivery = Redelivery.LOOKUP

    def __init__(self, settings: DestinationSettings, *, http: httpx.Client) -> None:
        options = settings.options
        self.name = settings.name
        self.base_url = str(options.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.page_id = str(options["page_id"])
        self._key = str(options["api_key"])
        self.component_ids = [str(c) for c in options.get("component_ids") or []]
        self.component_status = str(options["component_status"]) if options.get("component_status") else None
        self.http = http

    # Counting ---------------------------------------------------------------------------

    def length(self, post: Post) -> Length:
        return Length(len(post.text), BODY_LIMIT)

    def check(self, post: Post) -> list[str]:
        problems = []
        title = (post.title or "").strip()
        if not title:
            problems.append(f"{self.name}: a title is required (it becomes the incident name)")
        elif len(title) > NAME_LIMIT:
            problems.append(f"{self.name}: the title has {len(title)} characters, over the limit of {NAME_LIMIT}")
        if post.status and post.status not in STATUSES:
            problems.append(f"{self.name}: status must be one of {', '.join(STATUSES)}, not {post.status!r}")
        if not post.text.strip():
            problems.append(f"{self.name}: the text is empty")
        if self.component_status and self.component_status not in COMPONENT_STATUSES:
            problems.append(
                f"{self.name}: component_status {self.component_status!r} in announce.toml is not one of "
                + ", ".join(COMPONENT_STATUSES)
            )
        return problems + too_long(self.name, self.length(post))

    # Sending ----------------------------------------------------------------------------

    def _url(self, path: str = "") -> str:
        return f"{self.base_url}/v1/pages/{self.page_id}{path}"

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        request = self.http.build_request(
            method, self._url(path), headers={"authorization": f"OAuth {self._key}"}, **kwargs
        )
        return send(self.http, request, what=what)

    def _raise(self, response: httpx.Response, what: str) -> None:
        raise_for_status(response, what=what, transient=RATE_LIMITED)

    def _incident(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            incident = response.json()
            if not isinstance(incident, dict) or not incident.get("id"):
                raise ValueError("no id")
        except ValueError as exc:
            raise UncertainPublishError(f"{what}: HTTP {response.status_code} but no incident in the answer") from exc
        return incident

    def _receipt(self, incident: dict[str, Any], *, update_of: str | None = None) -> Receipt:
        incident_id = str(incident["id"])
        extra = {"page_id": self.page_id, "incident_id": incident_id}
        if update_of is not None:
            extra["kind"] = "update"
        return Receipt(remote_id=incident_id, url=incident.get("shortlink") or None, extra=extra)

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        status = post.status or "investigating"
        if reply_to is not None:
            marker = {MARKER: {"delivery": key, "kind": "update"}}
            incident_id = reply_to.extra.get("incident_id", reply_to.remote_id)
            what = f"{self.name}: update incident {incident_id}"
            body = {"incident": {"status": status, "body": post.text, "metadata": marker}}
            response = self._send("PATCH", f"/incidents/{incident_id}", what, json=body)
            self._raise(response, what)
            return self._receipt(self._incident(response, what), update_of=incident_id)
        incident: dict[str, Any] = {
            "name": (post.title or "").strip(),
            "status": status,
            "body": post.text,
            "metadata": {MARKER: {"delivery": key, "kind": "create"}},
            "deliver_notifications": True,
        }
        if self.component_ids:
            incident["component_ids"] = self.component_ids
            if self.component_status:
                incident["components"] = {cid: self.component_status for cid in self.component_ids}
        what = f"{self.name}: create incident"
        response = self._send("POST", "/incidents", what, json={"incident": incident})
        self._raise(response, what)
        return self._receipt(self._incident(response, what))

    def find(self, post: Post, *, key: str) -> Receipt | None:
        """The incident an earlier attempt of this delivery made or updated, if any."""
        what = f"{self.name}: look for delivery {key}"
        for path in ("/incidents/unresolved", "/incidents"):
            response = self._send("GET", path, what, params={"per_page": PAGE_SIZE, "page": 1})
            self._raise(response, what)
            try:
                incidents = response.json()
            except ValueError as exc:
                raise UncertainPublishError(f"{what}: the incident list was not JSON") from exc
            for incident in incidents if isinstance(incidents, list) else []:
                if not isinstance(incident, dict):
                    continue
                marker = marker_of(incident)
                if marker.get("delivery") == key:
                    update = marker.get("kind") == "update"
                    return self._receipt(incident, update_of=str(incident["id"]) if update else None)
        return None

    def retract(self, receipt: Receipt) -> None:
        if receipt.extra.get("kind") == "update":
            raise PermanentPublishError(
                f"{self.name}: a follow-up is an update inside incident {receipt.remote_id}; "
                "Statuspage cannot remove it on its own (edit or delete the incident by hand)"
            )
        what = f"{self.name}: delete incident {receipt.remote_id}"
        response = self._send("DELETE", f"/incidents/{receipt.remote_id}", what)
        if response.status_code == 404:
            return  # already gone
        self._raise(response, what)

    def verify(self) -> str:
        what = f"{self.name}: check page {self.page_id}"
        response = self._send("GET", "", what)
        if response.status_code == 401:
            raise PermanentPublishError(f"{what}: the API key was refused (HTTP 401)")
        if response.status_code == 404:
            raise PermanentPublishError(f"{what}: no such page for this API key (HTTP 404)")
        self._raise(response, what)
        try:
            page = response.json()
            name = page.get("name") or page.get("subdomain") or self.page_id
        except (ValueError, AttributeError) as exc:
            raise PermanentPublishError(f"{what}: unexpected answer") from exc
        return f"{self.name}: page {name!r} ({self.page_id})"
