"""Discord adapter against a fake webhook endpoint that behaves as Discord's docs say."""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

import httpx
import pytest

from tests.fakes.discord import FakeDiscord
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
from workflow.destinations.discord import DiscordDestination
from workflow.settings import DestinationSettings

KEY = "d15c0d15c0d15c0d15c0d15c0d15c0d1"


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server  # type: ignore[misc]


def make(fake: FakeDiscord, http: httpx.Client, **options: object) -> DiscordDestination:
    values = {"webhook_url": fake.webhook_url, **options}
    return DiscordDestination(
        DestinationSettings(name="discord", type="discord", options=MappingProxyType(values)), http=http
    )


def test_is_a_destination(fake: FakeDiscord, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert isinstance(dest, Destination)
    assert dest.redelivery is Redelivery.NONE
    assert dest.find(Post("x"), key=KEY) is None


def test_publish_waits_for_the_message(fake: FakeDiscord, http: httpx.Client) -> None:
    receipt = make(fake, http).publish(Post("Checkout is down."), key=KEY)
    assert receipt.remote_id in fake.messages
    sent = fake.requests[-1]
    assert sent.query == {"wait": ["true"]}
    assert sent.json() == {"content": "Checkout is down.", "allowed_mentions": {"parse": []}}


def test_thread_id_in_the_url_is_kept(fake: FakeDiscord, http: httpx.Client) -> None:
    dest = make(fake, http, webhook_url=f"{fake.webhook_url}?thread_id=42")
    receipt = dest.publish(Post("In a thread"), key=KEY)
    assert fake.requests[-1].query == {"thread_id": ["42"], "wait": ["true"]}
    dest.retract(receipt)
    assert fake.requests[-1].query == {"thread_id": ["42"]}


def test_everyone_never_pings(fake: FakeDiscord, http: httpx.Client) -> None:
    receipt = make(fake, http).publish(Post("@everyone the site is down @here"), key=KEY)
    assert fake.messages[receipt.remote_id]["mention_everyone"] is False


def test_username_from_config(fake: FakeDiscord, http: httpx.Client) -> None:
    make(fake, http, username="Status Bot").publish(Post("Hi"), key=KEY)
    assert fake.requests[-1].json()["username"] == "Status Bot"


def test_link_after_verify_knows_the_guild(fake: FakeDiscord, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert dest.publish(Post("one"), key=KEY).url is None  # the message alone does not name the guild
    dest.verify()
    receipt = dest.publish(Post("two"), key="k2")
    assert receipt.url == f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{receipt.remote_id}"


def test_429_uses_retry_after_from_the_body(fake: FakeDiscord, http: httpx.Client) -> None:
    fake.script(fake.rate_limited(0.75), when=lambda r: r.method == "POST")
    with pytest.raises(TransientPublishError) as caught:
        make(fake, http).publish(Post("Hi"), key=KEY)
    assert caught.value.retry_after == 0.75
    assert not fake.messages


def test_5xx_then_success_posts_once(fake: FakeDiscord, http: httpx.Client) -> None:
    fake.script(Response(502, "<html>502 Bad Gateway</html>"), when=lambda r: r.method == "POST")
    dest = make(fake, http)
    with pytest.raises(TransientPublishError):
        dest.publish(Post("Hi"), key=KEY)
    dest.publish(Post("Hi"), key=KEY)
    assert len(fake.messages) == 1


@pytest.mark.parametrize("broken", ["token", "deleted"])
def test_gone_webhook_is_permanent_and_switches_off(fake: FakeDiscord, http: httpx.Client, broken: str) -> None:
    if broken == "token":
        url = fake.webhook_url.replace(fake.token, "wrong-token-value")
        dest = DiscordDestination(DestinationSettings("discord", "discord", options={"webhook_url": url}), http=http)
    else:
        fake.deleted = True
        dest = make(fake, http)
    with pytest.raises(PermanentPublishError) as caught:
        dest.publish(Post("Hi"), key=KEY)
    assert caught.value.disable is True
    assert "gone" in str(caught.value)
    assert fake.token not in str(caught.value) and "wrong-token-value" not in str(caught.value)
    assert "/api/webhooks" not in str(caught.value)


def test_read_timeout_is_uncertain(fake: FakeDiscord, http: httpx.Client) -> None:
    fake.answer_slowly(0.5)
    with pytest.raises(UncertainPublishError) as caught:
        make(fake, http).publish(Post("Did it go?"), key=KEY)
    assert len(fake.messages) == 1
    assert fake.token not in str(caught.value)


def test_scripted_slow_answer_is_uncertain(fake: FakeDiscord, http: httpx.Client) -> None:
    fake.script(Response(200, {"id": "1", "channel_id": "2"}, delay=0.4))
    with pytest.raises(UncertainPublishError, match="may have been sent"):
        make(fake, http).publish(Post("Did it go?"), key=KEY)


def test_connect_error_is_transient_and_secret_free(http: httpx.Client) -> None:
    with FakeDiscord() as gone:
        url = gone.webhook_url
        token = gone.token
    dest = DiscordDestination(DestinationSettings("discord", "discord", options={"webhook_url": url}), http=http)
    with pytest.raises(TransientPublishError) as caught:
        dest.publish(Post("Hi"), key=KEY)
    assert token not in str(caught.value)


def test_length_and_check(fake: FakeDiscord, http: httpx.Client) -> None:
    dest = make(fake, http)
    assert dest.length(Post("x" * 2000)).fits
    assert dest.check(Post("x" * 2001)) == ["discord: 2001 characters, over the limit of 2000"]
    assert dest.check(Post("  ")) == ["discord: the text is empty"]


def test_verify(fake: FakeDiscord, http: httpx.Client) -> None:
    summary = make(fake, http).verify()
    assert summary == f"discord: webhook 'Status updates' posting to channel {fake.channel_id}"
    assert fake.token not in summary
    assert not fake.messages


def test_verify_gone(fake: FakeDiscord, http: httpx.Client) -> None:
    fake.deleted = True
    with pytest.raises(PermanentPublishError, match="gone"):
        make(fake, http).verify()


def test_retract(fake: FakeDiscord, http: httpx.Client) -> None:
    dest = make(fake, http)
    receipt = dest.publish(Post("Oops"), key=KEY)
    dest.retract(receipt)
    assert not fake.messages
    dest.retract(receipt)  # Unknown Message: already gone
    dest.retract(Receipt(remote_id="1"))
