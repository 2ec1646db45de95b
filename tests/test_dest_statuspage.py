"""Statuspage adapter against a fake manage API that behaves as developer.statuspage.io says."""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

import httpx
import pytest

from tests.fakes.server import Response
from tests.fakes.statuspage import FakeStatuspage
from workflow.destinations.base import (
    Destination,
    PermanentPublishError,
    Post,
    Receipt,
    Redelivery,
    TransientPublishError,
    UncertainPublishError,
)
from workflow.destinations.statuspage import StatuspageDestination
from workflow.settings import DestinationSettings

KEY = "c0ffee00c0ffee00c0ffee00c0ffee00"
POST = Post("Checkout requests are failing for some customers.", title="Checkout errors", status="investigating")


@pytest.fixture
def fake() -> Iterator[FakeStatuspage]:
    with FakeStatuspage() as server:
        yield server  # type: ignore[misc]


def make(fake: FakeStatuspage, http: httpx.Client, **options: object) -> StatuspageDestination:
    values = {"base_url": fake.url, "page_id": fake.page_id, "api_key": fake.api_key, **options}
    return StatuspageDestination(
        DestinationSettings(name="statuspage", type="statuspage", options=MappingProxyType(values)), http=http
    )


def creates(fake: FakeStatuspage) -> list:
    return [r for r in fake.requests if r.method == "POST"]


def test_is_a_destination(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert isinstance(dest, Destination)
    assert dest.redelivery is Redelivery.LOOKUP


def test_default_base_url(http: httpx.Client) -> None:
    settings = DestinationSettings("statuspage", "statuspage", options={"page_id": "p", "api_key": "k"})
    assert StatuspageDestination(settings, http=http).base_url == "https://api.statuspage.io"


def test_publish_creates_an_incident_with_the_marker(fake: FakeStatuspage, http: httpx.Client) -> None:
    receipt = make(fake, http).publish(POST, key=KEY)
    incident = fake.incidents[receipt.remote_id]
    assert receipt.url == incident["shortlink"]
    assert incident["name"] == "Checkout errors"
    assert incident["status"] == "investigating"
    assert incident["incident_updates"][0]["body"] == POST.text
    assert incident["metadata"] == {"count_to_ten": {"delivery": KEY, "kind": "create"}}
    sent = creates(fake)[0]
    assert sent.headers["authorization"] == f"OAuth {fake.api_key}"
    assert sent.path == f"/v1/pages/{fake.page_id}/incidents"


def test_components_from_config(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http, component_ids=["cmp1aaaaaaaa"], component_status="partial_outage")
    dest.publish(POST, key=KEY)
    body = creates(fake)[0].json()["incident"]
    assert body["component_ids"] == ["cmp1aaaaaaaa"]
    assert body["components"] == {"cmp1aaaaaaaa": "partial_outage"}
    assert fake.components["cmp1aaaaaaaa"] == "partial_outage"


def test_status_defaults_to_investigating(fake: FakeStatuspage, http: httpx.Client) -> None:
    receipt = make(fake, http).publish(Post("text", title="Title"), key=KEY)
    assert fake.incidents[receipt.remote_id]["status"] == "investigating"


def test_follow_up_updates_the_same_incident(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    first = dest.publish(POST, key=KEY)
    follow = dest.publish(Post("Fixed and monitoring.", status="monitoring"), key="k2", reply_to=first)
    assert follow.remote_id == first.remote_id and follow.extra["kind"] == "update"
    incident = fake.incidents[first.remote_id]
    assert incident["status"] == "monitoring"
    assert [u["body"] for u in incident["incident_updates"]] == ["Fixed and monitoring.", POST.text]
    assert len(fake.incidents) == 1


def test_find_after_an_uncertain_create(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    fake.answer_slowly(0.5)  # the incident is created, the answer misses the read timeout
    with pytest.raises(UncertainPublishError):
        dest.publish(POST, key=KEY)
    found = dest.find(POST, key=KEY)
    assert found is not None and found.remote_id in fake.incidents
    assert found.url == fake.incidents[found.remote_id]["shortlink"]
    assert "kind" not in found.extra
    assert len(fake.incidents) == 1
    assert any(r.path.endswith("/incidents/unresolved") for r in fake.requests)


def test_lost_request_then_lookup_then_create_once(fake: FakeStatuspage, http: httpx.Client) -> None:
    fake.script(Response(201, {"id": "abc"}, delay=0.4), when=lambda r: r.method == "POST")
    dest = make(fake, http)
    with pytest.raises(UncertainPublishError):
        dest.publish(POST, key=KEY)
    assert dest.find(POST, key=KEY) is None  # it never landed: safe to send again
    dest.publish(POST, key=KEY)
    assert len(fake.incidents) == 1


def test_find_nothing(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.publish(POST, key="someone-else")
    assert dest.find(POST, key=KEY) is None


def test_find_a_resolved_incident_too(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.publish(Post("All good again.", title="Blip", status="resolved"), key=KEY)
    found = dest.find(POST, key=KEY)
    assert found is not None


def test_find_a_follow_up(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    first = dest.publish(POST, key=KEY)
    dest.publish(Post("Identified.", status="identified"), key="follow-up", reply_to=first)
    found = dest.find(Post("Identified."), key="follow-up")
    assert found is not None and found.remote_id == first.remote_id and found.extra["kind"] == "update"


@pytest.mark.parametrize("status", [420, 429])
def test_rate_limited_is_transient_with_retry_after(fake: FakeStatuspage, http: httpx.Client, status: int) -> None:
    fake.script(fake.rate_limited(status, retry_after=3), when=lambda r: r.method == "POST")
    with pytest.raises(TransientPublishError) as caught:
        make(fake, http).publish(POST, key=KEY)
    assert caught.value.retry_after == 3
    assert not fake.incidents


def test_one_request_a_second(http: httpx.Client) -> None:
    with FakeStatuspage(enforce_rate_limit=True) as fake:
        dest = make(fake, http)
        dest.publish(POST, key=KEY)
        with pytest.raises(TransientPublishError, match="420") as caught:
            dest.find(POST, key=KEY)
    assert caught.value.retry_after == 1


def test_5xx_then_success_creates_once(fake: FakeStatuspage, http: httpx.Client) -> None:
    fake.script(Response(500, {"message": "Internal Server Error"}), when=lambda r: r.method == "POST")
    dest = make(fake, http)
    with pytest.raises(TransientPublishError):
        dest.publish(POST, key=KEY)
    assert dest.find(POST, key=KEY) is None
    dest.publish(POST, key=KEY)
    assert len(fake.incidents) == 1


def test_401_is_permanent_and_key_free(fake: FakeStatuspage, http: httpx.Client) -> None:
    with pytest.raises(PermanentPublishError, match="401") as caught:
        make(fake, http, api_key="wrong-api-key-123").publish(POST, key=KEY)
    assert "wrong-api-key-123" not in str(caught.value)


def test_422_is_permanent(fake: FakeStatuspage, http: httpx.Client) -> None:
    with pytest.raises(PermanentPublishError, match="422"):
        make(fake, http).publish(Post("no title"), key=KEY)


def test_check(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert dest.check(POST) == []
    assert dest.check(Post("text")) == ["statuspage: a title is required (it becomes the incident name)"]
    assert "255" in dest.check(Post("text", title="t" * 256))[0]
    assert "status must be one of" in dest.check(Post("text", title="t", status="fixed"))[0]
    assert dest.check(Post("x" * 25_001, title="t")) == ["statuspage: 25001 characters, over the limit of 25000"]
    bad = make(fake, http, component_ids=["cmp1aaaaaaaa"], component_status="on_fire")
    assert "component_status" in bad.check(POST)[0]


def test_length(fake: FakeStatuspage, http: httpx.Client) -> None:
    length = make(fake, http).length(POST)
    assert (length.used, length.limit) == (len(POST.text), 25_000)


def test_verify(fake: FakeStatuspage, http: httpx.Client) -> None:
    assert make(fake, http).verify() == f"statuspage: page 'Example Status' ({fake.page_id})"
    assert not fake.incidents


def test_verify_failures(fake: FakeStatuspage, http: httpx.Client) -> None:
    with pytest.raises(PermanentPublishError, match="refused"):
        make(fake, http, api_key="nope").verify()
    with pytest.raises(PermanentPublishError, match="no such page"):
        make(fake, http, page_id="otherpage123").verify()


def test_retract(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    receipt = dest.publish(POST, key=KEY)
    dest.retract(receipt)
    assert not fake.incidents
    dest.retract(receipt)  # already gone


def test_retract_of_a_follow_up_is_refused(fake: FakeStatuspage, http: httpx.Client) -> None:
    dest = make(fake, http)
    first = dest.publish(POST, key=KEY)
    follow = dest.publish(Post("Resolved.", status="resolved"), key="k2", reply_to=first)
    with pytest.raises(PermanentPublishError, match="cannot remove"):
        dest.retract(follow)
    assert first.remote_id in fake.incidents
    dest.retract(Receipt(remote_id=first.remote_id))
