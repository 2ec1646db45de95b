"""A fake X API v2 on loopback that checks OAuth 1.0a signatures the way X does.

What it models, and where each fact comes from:
- Every request must carry `Authorization: OAuth …` signed with HMAC-SHA1 over the method, the
  URL and the parameters, keyed with consumer secret & token secret
  (https://docs.x.com/fundamentals/authentication/oauth-1-0a/creating-a-signature and
  .../authorizing-a-request). The fake recomputes the signature with oauthlib's server-side
  signature helpers, and also rejects an unknown consumer key or token, a timestamp more than
  5 minutes off and a reused nonce. Failure: 401 with X's problem document
  `{"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}`.
- POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}} → 201
  `{"data": {"id": "…", "text": "…", "edit_history_tweet_ids": ["…"]}}`
  (https://docs.x.com/x-api/posts/manage-tweets/quickstart, /x-api/posts/create-post).
- The same text twice → 403 `{"detail": "You are not allowed to create a Tweet with duplicate
  content.", "type": "about:blank", "title": "Forbidden", "status": 403}` (as reported against
  the live API, e.g. github.com/akrherz/iembot/issues/163).
- Over 280 weighted characters (twitter-text v3) → 400 invalid-request problem document.
- GET /2/users/me → `{"data": {"id", "name", "username"}}`; DELETE /2/tweets/:id →
  `{"data": {"deleted": true}}`.
- Rate limit headers `x-rate-limit-limit`, `x-rate-limit-remaining`, `x-rate-limit-reset` (Unix
  seconds) on every answer; `rate_limited()` is the 429 (https://docs.x.com/fundamentals/rate-limits).
"""

from __future__ import annotations

import hmac
import itertools
import re
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import twitter_text
from oauthlib.oauth1.rfc5849 import signature, utils

from tests.fakes.server import FakeServer, Request, Response

UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
TIMESTAMP_WINDOW = 300


class FakeX(FakeServer):
    def __init__(
        self,
        *,
        consumer_key: str = "xvz1evFS4wEEPTGEFPHBog",
        consumer_secret: str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        access_token: str = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        access_token_secret: str = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        username: str = "StatusExample",
    ) -> None:
        super().__init__()
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.access_token = access_token
        self.access_token_secret = access_token_secret
        self.username = username
        self.user_id = "370773112"
        self.tweets: dict[str, dict[str, Any]] = {}
        self.nonces: set[str] = set()
        self.auth_failures: list[str] = []
        self._ids = itertools.count(1860000000000000001)
        self._delays: list[float] = []

    def answer_slowly(self, seconds: float) -> None:
        """Process the next request fully, then hold the answer back (the answer is lost)."""
        self._delays.append(seconds)

    def rate_headers(self, remaining: int = 99, reset_in: int = 900) -> dict[str, str]:
        return {
            "x-rate-limit-limit": "100",
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(time.time()) + reset_in),
        }

    def rate_limited(self, reset_in: int = 600) -> Response:
        body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
        return Response(429, body, headers=self.rate_headers(0, reset_in))

    # OAuth 1.0a ---------------------------------------------------------------------------

    def verify_oauth(self, request: Request) -> str | None:
        """None when the signature is good, else why not (kept for the tests to read)."""
        header = request.headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return "no OAuth header"
        oauth = {name: utils.unescape(value) for name, value in utils.parse_authorization_header(header)}
        if oauth.get("oauth_consumer_key") != self.consumer_key:
            return "unknown consumer key"
        if oauth.get("oauth_token") != self.access_token:
            return "unknown token"
        if oauth.get("oauth_signature_method") != "HMAC-SHA1":
            return "unsupported signature method"
        try:
            timestamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            return "bad timestamp"
        if abs(time.time() - timestamp) > TIMESTAMP_WINDOW:
            return "timestamp out of window"
        nonce = oauth.get("oauth_nonce", "")
        if not nonce or nonce in self.nonces:
            return "nonce reused"
        host = request.headers.get("host", "")
        query = urlencode([(k, v) for k, values in request.query.items() for v in values])
        form = ""
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = request.body.decode()
        params = signature.collect_parameters(
            uri_query=query, body=form, headers={"Authorization": header}, exclude_oauth_signature=True
        )
        base = signature.signature_base_string(
            request.method,
            signature.base_string_uri(f"http://{host}{request.path}"),
            signature.normalize_parameters(params),
        )
        keys = SimpleNamespace(client_secret=self.consumer_secret, resource_owner_secret=self.access_token_secret)
        expected = signature.sign_hmac_sha1_with_client(base, keys)
        if not hmac.compare_digest(expected, oauth.get("oauth_signature", "")):
            return "signature mismatch"
        self.nonces.add(nonce)
        return None

    # --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        problem = self.verify_oauth(request)
        if problem:
            self.auth_failures.append(problem)
            return Response(401, UNAUTHORIZED)
        response = self._route(request)
        if self._delays:
            response.delay = self._delays.pop(0)
        response.headers = {**self.rate_headers(), **response.headers}
        return response

    def _route(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/2/users/me":
            return Response(200, {"data": {"id": self.user_id, "name": "Status", "username": self.username}})
        if request.method == "POST" and request.path == "/2/tweets":
            return self.create(request.json() or {})
        match = re.fullmatch(r"/2/tweets/(\d+)", request.path)
        if match and request.method == "DELETE":
            if self.tweets.pop(match.group(1), None) is None:
                return Response(
                    404,
                    {
                        "title": "Not Found Error",
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                        "status": 404,
                        "detail": f"Could not find tweet with id: [{match.group(1)}].",
                    },
                )
            return Response(200, {"data": {"deleted": True}})
        return Response(404, {"title": "Not Found", "type": "about:blank", "status": 404, "detail": "Not Found"})

    def create(self, body: dict[str, Any]) -> Response:
        text = body.get("text", "")
        parsed = twitter_text.parse_tweet(text)
        if not text or not parsed.valid:
            return Response(
                400,
                {
                    "errors": [{"parameters": {"text": [text]}, "message": "Your Tweet text is too long."}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request",
                },
            )
        if any(tweet["text"] == text for tweet in self.tweets.values()):
            return Response(403, DUPLICATE)
        reply = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        tweet_id = str(next(self._ids))
        self.tweets[tweet_id] = {"id": tweet_id, "text": text, "in_reply_to_tweet_id": reply}
        return Response(201, {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}})
