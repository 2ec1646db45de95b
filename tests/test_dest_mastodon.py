"""Mastodon adapter against a fake instance that behaves as docs.joinmastodon.org describes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import httpx
import pytest

from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import Response
from workflow.destinations.base import (
    Destination,
    PermanentPublishError,
    Post,
    Receipt,
    Redelivery,
    TransientPublishError,
    UncertainPublishError,
)
from workflow.destinations.mastodon import MastodonDestination, reset_after
from workflow.settings import DestinationSettings

KEY = "5f0c6b1e2d3a4b5c6d7e8f9012345678"


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with FakeMastodon() as server:
        yield server  # type: ignore[misc]


def make(fake: FakeMastodon, http: httpx.Client, **options: object) -> MastodonDestination:
    values = {"base_url": fake.url, "access_token": fake.token, **options}
    return MastodonDestination(
        DestinationSettings(name="mastodon", type="mastodon", options=MappingProxyType(values)), http=http
    )


def test_is_a_destination(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert isinstance(dest, Destination)
    assert dest.redelivery is Redelivery.IDEMPOTENT
    assert dest.name == "mastodon" and dest.type == "mastodon"


def test_publish_sends_status_with_idempotency_key(fake: FakeMastodon, http: httpx.Client) -> None:
    receipt = make(fake, http, visibility="unlisted").publish(Post("Checkout is down. We are on it."), key=KEY)
    assert receipt.remote_id in fake.statuses
    assert receipt.url == f"https://{fake.domain}/@status/{receipt.remote_id}"
    sent = next(r for r in fake.requests if r.path == "/api/v1/statuses")
    assert sent.headers["idempotency-key"] == KEY
    assert sent.headers["authorization"] == f"Bearer {fake.token}"
    assert sent.form() == {"status": "Checkout is down. We are on it.", "visibility": "unlisted"}


def test_reply_sets_in_reply_to_id(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http)
    first = dest.publish(Post("Investigating."), key=KEY)
    second = dest.publish(Post("Fixed."), key="another-key", reply_to=first)
    assert fake.statuses[second.remote_id]["in_reply_to_id"] == first.remote_id


def test_retry_with_the_same_key_is_replayed_not_posted_twice(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http)
    one = dest.publish(Post("Once only"), key=KEY)
    two = dest.publish(Post("Once only"), key=KEY)
    assert one == two
    assert len(fake.statuses) == 1


def test_idempotency_key_expires_after_an_hour(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.publish(Post("Once only"), key=KEY)
    start = fake.clock()
    fake.clock = lambda: start + 3601
    dest.publish(Post("Once only"), key=KEY)
    assert len(fake.statuses) == 2  # the platform's documented limit, not ours


def test_lost_answer_then_retry_gives_one_status(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http)
    fake.answer_slowly(0.5)  # the status is made, the answer misses the 0.25 s read timeout
    with pytest.raises(UncertainPublishError):
        dest.publish(Post("Uncertain"), key=KEY)
    receipt = dest.publish(Post("Uncertain"), key=KEY)
    assert list(fake.statuses) == [receipt.remote_id]


def test_429_waits_until_the_iso_reset_time(fake: FakeMastodon, http: httpx.Client) -> None:
    fake.script(fake.rate_limited(reset_in=120), when=lambda r: r.path == "/api/v1/statuses")
    with pytest.raises(TransientPublishError) as caught:
        make(fake, http).publish(Post("Hello"), key=KEY)
    assert caught.value.retry_after is not None
    assert 110 < caught.value.retry_after <= 120
    assert not fake.statuses


def test_reset_after_parses_iso_not_epoch() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    response = httpx.Response(429, headers={"X-RateLimit-Reset": "2026-01-01T12:05:00.000000Z"})
    assert reset_after(response, now=now) == 300
    past = httpx.Response(429, headers={"X-RateLimit-Reset": (now - timedelta(seconds=5)).isoformat()})
    assert reset_after(past, now=now) == 0


def test_5xx_then_success_posts_once(fake: FakeMastodon, http: httpx.Client) -> None:
    fake.script(Response(503, "<html>Service Unavailable</html>"), when=lambda r: r.path == "/api/v1/statuses")
    dest = make(fake, http)
    with pytest.raises(TransientPublishError):
        dest.publish(Post("Hello"), key=KEY)
    dest.publish(Post("Hello"), key=KEY)
    assert len(fake.statuses) == 1


def test_401_is_permanent_and_keeps_the_token_out(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http, access_token="wrong-token-abcdef")
    with pytest.raises(PermanentPublishError) as caught:
        dest.publish(Post("Hello"), key=KEY)
    assert "401" in str(caught.value)
    assert "wrong-token-abcdef" not in str(caught.value)


def test_422_is_permanent(fake: FakeMastodon, http: httpx.Client) -> None:
    fake.max_characters = 5  # the instance lowered its limit after the modal counted
    with pytest.raises(PermanentPublishError, match="422"):
        make(fake, http).publish(Post("Far too long"), key=KEY)


def test_connect_error_is_transient(http: httpx.Client) -> None:
    with FakeMastodon() as gone:
        url = gone.url
    dest = MastodonDestination(
        DestinationSettings("mastodon", "mastodon", options={"base_url": url, "access_token": "t"}), http=http
    )
    with pytest.raises(TransientPublishError):
        dest.publish(Post("Hello"), key=KEY)


def test_limit_is_the_instances_own_and_cached(fake: FakeMastodon, http: httpx.Client) -> None:
    fake.max_characters = 1000
    fake.characters_reserved_per_url = 30
    dest = make(fake, http)
    length = dest.length(Post("see https://example.com/a/very/long/path/that/is/long"))
    assert (length.used, length.limit) == (4 + 30, 1000)
    dest.length(Post("again"))
    assert sum(1 for r in fake.requests if r.path == "/api/v2/instance") == 1


def test_limit_falls_back_to_500_and_23(http: httpx.Client) -> None:
    with FakeMastodon() as fake:
        fake.script(Response(500, "oops"), when=lambda r: r.path == "/api/v2/instance")
        length = make(fake, http).length(Post("x https://example.com/" + "y" * 40))
    assert length.limit == 500
    assert length.used == 2 + 23


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("👨‍👩‍👧‍👦🇩🇪", 2),  # grapheme clusters, not code points
        ("cc @alice@very.long.example.social", 3 + 6),  # @user@domain counts as @user
        ("mail me@example.com", 19),  # not a mention
        ("https://a.example.com/x and http://b.example.org/y", 23 + 5 + 23),
        ("example.com has no scheme", 25),  # only http(s) URLs are discounted
    ],
)
def test_counting(fake: FakeMastodon, http: httpx.Client, text: str, expected: int) -> None:
    assert make(fake, http).length(Post(text)).used == expected


def test_check_reports_the_count(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert dest.check(Post("fine")) == []
    problems = dest.check(Post("x" * 501))
    assert problems == ["mastodon: 501 characters, over the limit of 500"]


def test_check_matches_the_servers_verdict(fake: FakeMastodon, http: httpx.Client) -> None:
    text = "@ops@status.example.com " + "é" * 450 + " https://example.com/" + "p" * 100
    dest = make(fake, http)
    assert dest.check(Post(text)) == []
    dest.publish(Post(text), key=KEY)  # the fake counts independently and accepts it


def test_verify(fake: FakeMastodon, http: httpx.Client) -> None:
    host = httpx.URL(fake.url).host
    assert make(fake, http).verify() == f"mastodon: @status@{host} (500 characters a post)"
    assert not fake.statuses


def test_verify_with_bad_token(fake: FakeMastodon, http: httpx.Client) -> None:
    with pytest.raises(PermanentPublishError, match="refused") as caught:
        make(fake, http, access_token="nope-nope-nope").verify()
    assert "nope-nope-nope" not in str(caught.value)


def test_retract_deletes_and_tolerates_already_gone(fake: FakeMastodon, http: httpx.Client) -> None:
    dest = make(fake, http)
    receipt = dest.publish(Post("Oops"), key=KEY)
    dest.retract(receipt)
    assert not fake.statuses
    dest.retract(receipt)
    dest.retract(Receipt(remote_id="12345"))


def test_find_is_not_needed(fake: FakeMastodon, http: httpx.Client) -> None:
    assert make(fake, http).find(Post("x"), key=KEY) is None
