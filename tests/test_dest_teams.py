"""Teams adapter against a fake Workflows webhook."""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

import httpx
import pytest

from tests.fakes.server import Response
from tests.fakes.teams import FakeTeams
from workflow.destinations.base import (
    Destination,
    PermanentPublishError,
    Post,
    Redelivery,
    TransientPublishError,
    UncertainPublishError,
)
from workflow.destinations.teams import TeamsDestination
from workflow.settings import DestinationSettings

KEY = "7ea4567ea4567ea4567ea4567ea4567e"


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    with FakeTeams() as server:
        yield server  # type: ignore[misc]


def make(fake: FakeTeams, http: httpx.Client, url: str | None = None) -> TeamsDestination:
    values = {"webhook_url": url or fake.webhook_url}
    return TeamsDestination(
        DestinationSettings(name="teams", type="teams", options=MappingProxyType(values)), http=http
    )


def test_is_a_destination(fake: FakeTeams, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert isinstance(dest, Destination)
    assert dest.redelivery is Redelivery.NONE
    assert dest.find(Post("x"), key=KEY) is None


def test_publish_sends_an_adaptive_card(fake: FakeTeams, http: httpx.Client) -> None:
    receipt = make(fake, http).publish(Post("Checkout is down.", title="Checkout errors"), key=KEY)
    assert receipt.remote_id == KEY and receipt.url is None
    sent = fake.requests[-1].json()
    assert sent["type"] == "message"
    assert sent["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert [block["text"] for block in fake.cards[0]["body"]] == ["Checkout errors", "Checkout is down."]
    assert fake.requests[-1].headers["content-type"] == "application/json"


def test_bad_signature_is_permanent_and_secret_free(fake: FakeTeams, http: httpx.Client) -> None:
    dest = make(fake, http, fake.webhook_url.replace(fake.sig, "forged-signature-value"))
    with pytest.raises(PermanentPublishError) as caught:
        dest.publish(Post("Hi"), key=KEY)
    assert caught.value.disable is True
    assert "forged-signature-value" not in str(caught.value) and fake.sig not in str(caught.value)
    assert not fake.cards


def test_429_honours_retry_after(fake: FakeTeams, http: httpx.Client) -> None:
    fake.script(Response(429, {"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "7"}))
    with pytest.raises(TransientPublishError) as caught:
        make(fake, http).publish(Post("Hi"), key=KEY)
    assert caught.value.retry_after == 7


def test_5xx_then_success_posts_once(fake: FakeTeams, http: httpx.Client) -> None:
    fake.script(Response(502, {"error": {"code": "BadGateway"}}))
    dest = make(fake, http)
    with pytest.raises(TransientPublishError):
        dest.publish(Post("Hi"), key=KEY)
    dest.publish(Post("Hi"), key=KEY)
    assert len(fake.cards) == 1


def test_read_timeout_is_uncertain(fake: FakeTeams, http: httpx.Client) -> None:
    fake.answer_slowly(0.5)
    with pytest.raises(UncertainPublishError) as caught:
        make(fake, http).publish(Post("Did it go?"), key=KEY)
    assert len(fake.cards) == 1
    assert fake.sig not in str(caught.value)


def test_scripted_slow_answer_is_uncertain(fake: FakeTeams, http: httpx.Client) -> None:
    fake.script(Response(202, delay=0.4))
    with pytest.raises(UncertainPublishError, match="may have been sent"):
        make(fake, http).publish(Post("Did it go?"), key=KEY)


def test_length_counts_the_payload_bytes(fake: FakeTeams, http: httpx.Client) -> None:
    dest = make(fake, http)
    small = dest.length(Post("hi"))
    assert small.unit == "bytes" and small.limit == 28 * 1024 and small.fits
    overhead = small.used - 2
    fits = Post("é" * ((28 * 1024 - overhead) // 2))
    assert dest.check(fits) == []
    dest.publish(fits, key=KEY)  # the fake takes it
    too_big = Post("é" * ((28 * 1024 - overhead) // 2 + 1))
    assert dest.check(too_big)[0].startswith("teams: ")
    with pytest.raises(PermanentPublishError, match="413"):
        dest.publish(too_big, key=KEY)


def test_verify_does_not_post(fake: FakeTeams, http: httpx.Client) -> None:
    summary = make(fake, http).verify()
    assert "not contacted" in summary and fake.sig not in summary
    assert not fake.requests


def test_retract_is_impossible(fake: FakeTeams, http: httpx.Client) -> None:
    dest = make(fake, http)
    receipt = dest.publish(Post("Oops"), key=KEY)
    with pytest.raises(PermanentPublishError, match="cannot be deleted"):
        dest.retract(receipt)
