"""Bluesky adapter against a fake PDS that behaves as the atproto lexicons and PDS code say."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import MappingProxyType

import httpx
import pytest

from tests.fakes.bluesky import TID, FakeBluesky
from tests.fakes.server import Response
from workflow.destinations.base import (
    Destination,
    PermanentPublishError,
    Post,
    Redelivery,
    TransientPublishError,
    UncertainPublishError,
)
from workflow.destinations.bluesky import BlueskyDestination, created_at, link_facets, record_key
from workflow.settings import DestinationSettings

KEY = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
RELEASED = datetime(2026, 11, 24, 14, 3, 10, 123456, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeBluesky]:
    with FakeBluesky() as server:
        yield server  # type: ignore[misc]


def make(fake: FakeBluesky, http: httpx.Client, **options: object) -> BlueskyDestination:
    values = {"base_url": fake.url, "handle": fake.user_handle, "app_password": fake.app_password, **options}
    return BlueskyDestination(
        DestinationSettings(name="bluesky", type="bluesky", options=MappingProxyType(values)), http=http
    )


def post(text: str = "Checkout is down. We are on it.") -> Post:
    return Post(text, released_at=RELEASED)


def puts(fake: FakeBluesky) -> list:
    return [r for r in fake.requests if r.path.endswith("putRecord")]


def test_is_a_destination(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert isinstance(dest, Destination)
    assert dest.redelivery is Redelivery.IDEMPOTENT


def test_default_base_url(http: httpx.Client) -> None:
    settings = DestinationSettings("bluesky", "bluesky", options={"handle": "a.example.com", "app_password": "x"})
    assert BlueskyDestination(settings, http=http).base_url == "https://bsky.social"


def test_publish_puts_a_post_record(fake: FakeBluesky, http: httpx.Client) -> None:
    receipt = make(fake, http).publish(post(), key=KEY)
    rkey = record_key(RELEASED, KEY)
    assert receipt.remote_id == f"at://{fake.did}/app.bsky.feed.post/{rkey}"
    assert receipt.url == f"https://bsky.app/profile/{fake.user_handle}/post/{rkey}"
    body = puts(fake)[0].json()
    assert body["collection"] == "app.bsky.feed.post" and body["rkey"] == rkey and body["repo"] == fake.did
    assert body["record"] == {
        "$type": "app.bsky.feed.post",
        "text": "Checkout is down. We are on it.",
        "createdAt": "2026-11-24T14:03:10.123Z",
    }
    assert puts(fake)[0].headers["authorization"].startswith("Bearer access-")
    assert fake.commits == [("create", rkey)]


def test_record_key_is_a_stable_tid() -> None:
    rkey = record_key(RELEASED, KEY)
    assert TID.match(rkey)
    assert rkey == record_key(RELEASED, KEY)
    assert rkey != record_key(RELEASED, "another-delivery")
    later = record_key(datetime(2026, 11, 24, 14, 3, 11, tzinfo=UTC), KEY)
    assert later > rkey  # TIDs sort by time


def test_record_key_encodes_the_release_time() -> None:
    rkey = record_key(RELEASED, KEY)
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    micros = 0
    for char in rkey[:11]:
        micros = micros * 32 + alphabet.index(char)
    assert abs(micros - int(RELEASED.timestamp() * 1_000_000)) < 1000


def test_created_at_is_fixed_milliseconds_utc() -> None:
    assert created_at(RELEASED) == "2026-11-24T14:03:10.123Z"


def test_retry_of_the_same_delivery_is_a_no_op(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    one = dest.publish(post(), key=KEY)
    two = dest.publish(post(), key=KEY)
    assert one == two
    assert len(fake.posts()) == 1
    assert len(fake.commits) == 1  # the second put wrote nothing


def test_fake_answers_500_to_a_duplicate_create_record(fake: FakeBluesky, http: httpx.Client) -> None:
    # Why the adapter uses putRecord: createRecord at an existing key is a server error.
    session = http.post(
        f"{fake.url}/xrpc/com.atproto.server.createSession",
        json={"identifier": fake.user_handle, "password": fake.app_password},
    ).json()
    body = {
        "repo": fake.did,
        "collection": "app.bsky.feed.post",
        "rkey": record_key(RELEASED, KEY),
        "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": created_at(RELEASED)},
    }
    headers = {"authorization": f"Bearer {session['accessJwt']}"}
    first = http.post(f"{fake.url}/xrpc/com.atproto.repo.createRecord", json=body, headers=headers)
    second = http.post(f"{fake.url}/xrpc/com.atproto.repo.createRecord", json=body, headers=headers)
    assert first.status_code == 200
    assert second.status_code == 500
    assert second.json() == {"error": "InternalServerError", "message": "Internal Server Error"}


def test_lost_answer_then_retry_gives_one_post(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.session()
    fake.answer_slowly(0.5)
    with pytest.raises(UncertainPublishError):
        dest.publish(post(), key=KEY)
    dest.publish(post(), key=KEY)
    assert len(fake.posts()) == 1


def test_session_is_created_once(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.publish(post("one"), key="k1")
    dest.publish(post("two"), key="k2")
    dest.publish(post("three"), key="k3")
    assert sum(1 for r in fake.requests if r.path.endswith("createSession")) == 1


def test_expired_token_is_refreshed_once(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.publish(post("one"), key="k1")
    fake.expire_access_tokens()
    dest.publish(post("two"), key="k2")
    paths = [r.path.rsplit(".", 1)[-1] for r in fake.requests]
    assert paths == ["createSession", "putRecord", "putRecord", "refreshSession", "putRecord"]
    assert len(fake.posts()) == 2


def test_dead_refresh_token_falls_back_to_a_new_session(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.session()
    fake.expire_access_tokens()
    fake.revoke_refresh_tokens()
    dest.publish(post(), key=KEY)
    paths = [r.path.rsplit(".", 1)[-1] for r in fake.requests]
    assert paths == ["createSession", "putRecord", "refreshSession", "createSession", "putRecord"]


def test_token_refused_after_renewal_is_permanent(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    dest.session()
    expired = Response(400, {"error": "ExpiredToken", "message": "Token has expired"})
    fake.script(expired, expired, when=lambda r: r.path.endswith("putRecord"))
    with pytest.raises(PermanentPublishError, match="refused again"):
        dest.publish(post(), key=KEY)
    assert not fake.posts()


def test_wrong_app_password_is_permanent(fake: FakeBluesky, http: httpx.Client) -> None:
    with pytest.raises(PermanentPublishError, match="401") as caught:
        make(fake, http, app_password="wrong-pass-word").publish(post(), key=KEY)
    assert "wrong-pass-word" not in str(caught.value)


def test_429_honours_retry_after(fake: FakeBluesky, http: httpx.Client) -> None:
    fake.script(fake.rate_limited(42), when=lambda r: r.path.endswith("putRecord"))
    with pytest.raises(TransientPublishError) as caught:
        make(fake, http).publish(post(), key=KEY)
    assert caught.value.retry_after == 42


def test_create_session_rate_limit(fake: FakeBluesky, http: httpx.Client) -> None:
    for _ in range(30):
        make(fake, http).verify()
    with pytest.raises(TransientPublishError) as caught:
        make(fake, http).verify()
    assert caught.value.retry_after is not None and caught.value.retry_after > 200


def test_5xx_then_success_posts_once(fake: FakeBluesky, http: httpx.Client) -> None:
    fake.script(Response(502, "Bad Gateway"), when=lambda r: r.path.endswith("putRecord"))
    dest = make(fake, http)
    with pytest.raises(TransientPublishError):
        dest.publish(post(), key=KEY)
    dest.publish(post(), key=KEY)
    assert len(fake.posts()) == 1


def test_link_facets_use_utf8_byte_offsets(fake: FakeBluesky, http: httpx.Client) -> None:
    text = "Störung 🔥 behoben: https://status.example.com/i/42 und example.org"
    make(fake, http).publish(post(text), key=KEY)
    record = fake.posts()[0]
    encoded = text.encode()
    spans = [(f["index"]["byteStart"], f["index"]["byteEnd"], f["features"][0]["uri"]) for f in record["facets"]]
    assert [encoded[start:end].decode() for start, end, _ in spans] == [
        "https://status.example.com/i/42",
        "example.org",
    ]
    assert [uri for _, _, uri in spans] == ["https://status.example.com/i/42", "https://example.org"]
    assert spans[0][0] == len("Störung 🔥 behoben: ".encode())  # 24 bytes, 19 characters
    assert record["facets"][0]["features"][0]["$type"] == "app.bsky.richtext.facet#link"


def test_no_facets_without_links() -> None:
    assert link_facets("nothing to see") == []


def test_reply_refers_to_root_and_parent(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    first = dest.publish(post("Investigating."), key="k1")
    second = dest.publish(post("Identified."), key="k2", reply_to=first)
    third = dest.publish(post("Resolved."), key="k3", reply_to=second)
    records = fake.posts()
    assert records[1]["reply"] == {
        "root": {"uri": first.extra["uri"], "cid": first.extra["cid"]},
        "parent": {"uri": first.extra["uri"], "cid": first.extra["cid"]},
    }
    assert records[2]["reply"]["root"] == {"uri": first.extra["uri"], "cid": first.extra["cid"]}
    assert records[2]["reply"]["parent"] == {"uri": second.extra["uri"], "cid": second.extra["cid"]}
    assert third.extra["root_uri"] == first.extra["uri"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", (5, "graphemes", True)),
        ("a" * 300, (300, "graphemes", True)),
        ("a" * 301, (301, "graphemes", False)),
        ("👨‍👩‍👧‍👦" * 120, (120, "graphemes", True)),  # 3,000 bytes exactly: fits
        ("👨‍👩‍👧‍👦" * 121, (3025, "bytes", False)),  # 121 graphemes, 25 bytes each
    ],
)
def test_length(fake: FakeBluesky, http: httpx.Client, text: str, expected: tuple[int, str, bool]) -> None:
    length = make(fake, http).length(Post(text))
    assert (length.used, length.unit, length.fits) == expected


def test_check_agrees_with_the_server(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    too_long = post("👨‍👩‍👧‍👦" * 121)
    assert dest.check(too_long) == ["bluesky: 3025 bytes, over the limit of 3000"]
    with pytest.raises(PermanentPublishError, match="400"):
        dest.publish(too_long, key=KEY)


def test_verify(fake: FakeBluesky, http: httpx.Client) -> None:
    assert make(fake, http).verify() == f"bluesky: @{fake.user_handle} ({fake.did})"
    assert not fake.posts()


def test_retract(fake: FakeBluesky, http: httpx.Client) -> None:
    dest = make(fake, http)
    receipt = dest.publish(post(), key=KEY)
    dest.retract(receipt)
    assert not fake.posts()
    dest.retract(receipt)  # already gone is fine


def test_publish_needs_a_release_time(fake: FakeBluesky, http: httpx.Client) -> None:
    with pytest.raises(PermanentPublishError, match="release time"):
        make(fake, http).publish(Post("no time"), key=KEY)
