"""Bluesky (AT Protocol): a session from an app password, then `com.atproto.repo.putRecord`.

Facts this adapter relies on (bluesky-social/atproto lexicons and PDS code; docs.bsky.app):
- `com.atproto.server.createSession` {identifier, password} → accessJwt, refreshJwt, handle,
  did. It is rate limited to 30 per 5 minutes and 300 a day per account
  (docs.bsky.app/docs/advanced-guides/rate-limits), so the session is cached and renewed with
  `com.atproto.server.refreshSession` (authorised with the *refresh* token).
- An expired or bad access token answers 400 `{"error": "ExpiredToken" | "InvalidToken"}`
  (packages/pds/src/auth-verifier.ts): refresh once, retry once, then give up (permanent).
- `putRecord` writes a record at a chosen key; when the record already there has the same CID
  the PDS does nothing ("no-op" in packages/pds/src/api/com/atproto/repo/putRecord.ts). So a
  deterministic record key (a TID made from the release time and the delivery key) and a fixed
  `createdAt` make a retry harmless. `createRecord` at an existing key fails with a 500, so it
  is never used.
- `app.bsky.feed.post`: text at most 300 graphemes and 3,000 UTF-8 bytes; links are
  `app.bsky.richtext.facet#link` facets whose `byteStart`/`byteEnd` count UTF-8 bytes.
- TID (atproto.com/specs/tid): 53 bits of microseconds since the epoch and 10 bits of clock id,
  in base32-sortable (`234567abcdefghijklmnopqrstuvwxyz`), 13 characters.
- 429 carries `Retry-After` (packages/xrpc-server/src/rate-limiter-http.ts).
- The web link of a post is https://bsky.app/profile/<handle>/post/<rkey>.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from workflow.destinations import textlength
from workflow.destinations.base import (
    Length,
    PermanentPublishError,
    Post,
    Receipt,
    Redelivery,
    UncertainPublishError,
    too_long,
)
from workflow.destinations.http import raise_for_status, send, short_body
from workflow.settings import DestinationSettings

DEFAULT_BASE_URL = "https://bsky.social"
COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
S32 = "234567abcdefghijklmnopqrstuvwxyz"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _s32(value: int, width: int) -> str:
    out = ""
    while value:
        value, digit = divmod(value, 32)
        out = S32[digit] + out
    return out.rjust(width, "2")


def record_key(released_at: datetime, key: str) -> str:
    """A TID that is the same for every attempt of one delivery.

    The timestamp is the release time (to the millisecond, plus up to 999 µs picked by the
    delivery key) and the clock id is picked by the delivery key, so two deliveries released in
    the same instant still get different keys.
    """
    digest = hashlib.sha256(key.encode()).digest()
    when = released_at if released_at.tzinfo else released_at.replace(tzinfo=UTC)
    delta = when.astimezone(UTC) - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    micros = micros - micros % 1000 + int.from_bytes(digest[:4], "big") % 1000
    clock_id = int.from_bytes(digest[4:6], "big") % 1024
    return _s32(micros, 11) + _s32(clock_id, 2)


def created_at(released_at: datetime) -> str:
    """The record's `createdAt`: fixed per delivery, so a retry writes the identical record."""
    when = released_at if released_at.tzinfo else released_at.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def link_facets(text: str) -> list[dict[str, Any]]:
    """`app.bsky.richtext.facet` link facets, indexed in UTF-8 bytes."""
    facets = []
    for span in textlength.urls(text, without_scheme=True):
        uri = span.text if "://" in span.text else f"https://{span.text}"
        facets.append(
            {
                "index": {
                    "byteStart": textlength.utf8_offset(text, span.start),
                    "byteEnd": textlength.utf8_offset(text, span.end),
                },
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
            }
        )
    return facets


@dataclass
class _Session:
    access: str
    refresh: str
    did: str
    handle: str


class BlueskyDestination:
    type = "bluesky"
    redelivery = Redelivery.IDEMPOTENT

    def __init__(self, settings: DestinationSettings, *, http: httpx.Client) -> None:
        options = settings.options
        self.name = settings.name
        self.base_url = str(options.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.handle = str(options["handle"]).removeprefix("@")
        self._password = str(options["app_password"])
        self.http = http
        self._session: _Session | None = None
        self._lock = threading.Lock()

    # Counting ---------------------------------------------------------------------------

    def length(self, post: Post) -> Length:
        used = textlength.graphemes(post.text)
        size = textlength.utf8_bytes(post.text)
        if used <= MAX_GRAPHEMES and size > MAX_BYTES:
            return Length(size, MAX_BYTES, "bytes")  # few graphemes, many bytes (long emoji sequences)
        return Length(used, MAX_GRAPHEMES, "graphemes")

    def check(self, post: Post) -> list[str]:
        problems = [f"{self.name}: the text is empty"] if not post.text.strip() else []
        return problems + too_long(self.name, self.length(post))

    # Session ----------------------------------------------------------------------------

    def _xrpc(self, method: str, nsid: str, *, token: str | None = None, **kwargs: Any) -> httpx.Request:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.http.build_request(method, f"{self.base_url}/xrpc/{nsid}", headers=headers, **kwargs)

    def _create_session(self) -> _Session:
        what = f"{self.name}: sign in as {self.handle}"
        request = self._xrpc(
            "POST",
            "com.atproto.server.createSession",
            json={"identifier": self.handle, "password": self._password},
        )
        response = send(self.http, request, what=what)
        if response.status_code == 401:
            raise PermanentPublishError(f"{what}: handle or app password refused (HTTP 401 {_error(response)})")
        raise_for_status(response, what=what)
        return _session_from(response, what)

    def _refresh(self, session: _Session) -> _Session | None:
        """A renewed session, or None when the refresh token is no longer accepted."""
        what = f"{self.name}: refresh session"
        response = send(
            self.http, self._xrpc("POST", "com.atproto.server.refreshSession", token=session.refresh), what=what
        )
        if response.status_code in (400, 401) and (response.status_code == 401 or _error(response) in TOKEN_ERRORS):
            return None
        raise_for_status(response, what=what)
        return _session_from(response, what)

    def session(self) -> _Session:
        with self._lock:
            if self._session is None:
                self._session = self._create_session()
            return self._session

    def _renew(self, stale: _Session) -> _Session:
        with self._lock:
            if self._session is not None and self._session.access != stale.access:
                return self._session  # another thread renewed it already
            renewed = self._refresh(stale) or self._create_session()
            self._session = renewed
            return renewed

    def _call(self, build: Callable[[_Session], httpx.Request], what: str) -> tuple[httpx.Response, _Session]:
        """Send `build(session)`; on a refused token renew the session once and send again."""
        session = self.session()
        response = send(self.http, build(session), what=what)
        if _token_refused(response):
            session = self._renew(session)
            response = send(self.http, build(session), what=what)
            if _token_refused(response):
                raise PermanentPublishError(
                    f"{what}: the session token was refused again after renewing it "
                    f"(HTTP {response.status_code} {_error(response)})"
                )
        return response, session

    # Sending ----------------------------------------------------------------------------

    def record(self, post: Post, reply_to: Receipt | None = None) -> dict[str, Any]:
        if post.released_at is None:
            raise PermanentPublishError(f"{self.name}: the post has no release time to make its record key from")
        record: dict[str, Any] = {"$type": COLLECTION, "text": post.text, "createdAt": created_at(post.released_at)}
        facets = link_facets(post.text)
        if facets:
            record["facets"] = facets
        if reply_to is not None:
            parent = {"uri": reply_to.extra.get("uri", reply_to.remote_id), "cid": reply_to.extra.get("cid", "")}
            root = {
                "uri": reply_to.extra.get("root_uri", parent["uri"]),
                "cid": reply_to.extra.get("root_cid", parent["cid"]),
            }
            if not parent["cid"]:
                raise PermanentPublishError(f"{self.name}: the post being replied to has no CID on record")
            record["reply"] = {"root": root, "parent": parent}
        return record

    def publish(self, post: Post, *, key: str, reply_to: Receipt | None = None) -> Receipt:
        if post.released_at is None:
            raise PermanentPublishError(f"{self.name}: the post has no release time to make its record key from")
        rkey = record_key(post.released_at, key)
        record = self.record(post, reply_to)
        what = f"{self.name}: put post {rkey}"

        def build(session: _Session) -> httpx.Request:
            body = {"repo": session.did, "collection": COLLECTION, "rkey": rkey, "record": record, "validate": True}
            return self._xrpc("POST", "com.atproto.repo.putRecord", token=session.access, json=body)

        response, session = self._call(build, what)
        raise_for_status(response, what=what)
        try:
            data = response.json()
            uri, cid = str(data["uri"]), str(data["cid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UncertainPublishError(f"{what}: HTTP {response.status_code} but no uri/cid in the answer") from exc
        extra = {"uri": uri, "cid": cid, "rkey": rkey, "did": session.did}
        if reply_to is not None:
            extra["root_uri"] = record["reply"]["root"]["uri"]
            extra["root_cid"] = record["reply"]["root"]["cid"]
        else:
            extra["root_uri"], extra["root_cid"] = uri, cid
        return Receipt(remote_id=uri, url=f"https://bsky.app/profile/{session.handle}/post/{rkey}", extra=extra)

    def find(self, post: Post, *, key: str) -> Receipt | None:
        return None  # IDEMPOTENT: putting the same record again is the lookup

    def retract(self, receipt: Receipt) -> None:
        rkey = receipt.extra.get("rkey") or receipt.remote_id.rsplit("/", 1)[-1]
        what = f"{self.name}: delete post {rkey}"

        def build(session: _Session) -> httpx.Request:
            repo = receipt.extra.get("did") or session.did
            body = {"repo": repo, "collection": COLLECTION, "rkey": rkey}
            return self._xrpc("POST", "com.atproto.repo.deleteRecord", token=session.access, json=body)

        response, _ = self._call(build, what)
        raise_for_status(response, what=what)  # deleting a record that is not there succeeds

    def verify(self) -> str:
        session = self._create_session()
        with self._lock:
            self._session = session
        return f"{self.name}: @{session.handle} ({session.did})"


def _error(response: httpx.Response) -> str:
    """The XRPC error name (`{"error": "ExpiredToken", "message": ...}`), or a short body."""
    try:
        data = response.json()
    except ValueError:
        return short_body(response, 80)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    return short_body(response, 80)


def _token_refused(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code == 400 and _error(response) in TOKEN_ERRORS


def _session_from(response: httpx.Response, what: str) -> _Session:
    try:
        data = response.json()
        return _Session(
            access=str(data["accessJwt"]),
            refresh=str(data["refreshJwt"]),
            did=str(data["did"]),
            handle=str(data["handle"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PermanentPublishError(f"{what}: unexpected answer") from exc
