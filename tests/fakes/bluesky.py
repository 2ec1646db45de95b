"""A fake Bluesky PDS (AT Protocol XRPC) on loopback.

What it models, and where each fact comes from (bluesky-social/atproto at HEAD):
- `com.atproto.server.createSession` {identifier, password} → {accessJwt, refreshJwt, handle,
  did} (lexicons/com/atproto/server/createSession.json). A wrong password is 401
  `{"error": "AuthenticationRequired", "message": "Invalid identifier or password"}`. Rate
  limit 30 per 5 minutes per account (packages/pds/src/api/com/atproto/server/createSession.ts;
  docs.bsky.app/docs/advanced-guides/rate-limits): past it, 429
  `{"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}` with `Retry-After` and the
  `RateLimit-Limit/-Remaining/-Reset/-Policy` headers (packages/xrpc-server/src/rate-limiter-http.ts).
- `com.atproto.server.refreshSession` is authorised with the refresh token and rotates both
  tokens (lexicons/com/atproto/server/refreshSession.json).
- Tokens are opaque here (the real ones are JWTs). An expired one is 400
  `{"error": "ExpiredToken", "message": "Token has expired"}`, an unknown one 400
  `{"error": "InvalidToken", "message": "Token could not be verified"}`, none at all 401
  `{"error": "AuthenticationRequired", ...}` (packages/pds/src/auth-verifier.ts).
- `com.atproto.repo.putRecord` creates or updates a record; when the stored record has the same
  CID nothing is written and no `commit` is returned (packages/pds/src/api/com/atproto/repo/
  putRecord.ts, the "no-op" branch). The CID here is a SHA-256 of canonical JSON standing in for
  the DAG-CBOR CID: equal records, equal CIDs.
- `com.atproto.repo.createRecord` at an rkey that already exists fails with 500
  `{"error": "InternalServerError", "message": "Internal Server Error"}` (the PDS hits the
  unique constraint; XRPCError hides the details of a 500).
- `app.bsky.feed.post` records: `text` at most 300 graphemes / 3,000 bytes, `createdAt`
  required, rkey a TID (lexicons/app/bsky/feed/post.json; atproto.com/specs/tid); a bad record is
  400 `{"error": "InvalidRequest", ...}`.
- `com.atproto.repo.deleteRecord` succeeds whether or not the record exists.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
from typing import Any

import grapheme

from tests.fakes.server import FakeServer, Request, Response

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
SESSION_LIMIT = 30
SESSION_WINDOW = 300.0


def cid_of(record: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")


class FakeBluesky(FakeServer):
    def __init__(self, *, user_handle: str = "status.example.com", app_password: str = "abcd-efgh-ijkl-mnop") -> None:
        super().__init__()
        self.user_handle = user_handle  # `handle` is FakeServer's request handler
        self.app_password = app_password
        self.did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        self.access_tokens: dict[str, bool] = {}  # token -> still valid (False: expired)
        self.refresh_tokens: set[str] = set()
        self.records: dict[tuple[str, str, str], tuple[dict[str, Any], str]] = {}
        self.commits: list[tuple[str, str]] = []  # (action, rkey) of every write that changed the repo
        self.session_times: list[float] = []
        self._tokens = itertools.count(1)
        self._delays: list[float] = []

    def answer_slowly(self, seconds: float) -> None:
        """Process the next record write fully, then hold the answer back (the answer is lost)."""
        self._delays.append(seconds)

    def expire_access_tokens(self) -> None:
        for token in self.access_tokens:
            self.access_tokens[token] = False

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()

    @staticmethod
    def error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response(status, {"error": name, "message": message}, headers=headers or {})

    def rate_limited(self, retry_after: int = 42) -> Response:
        reset = int(time.time()) + retry_after
        return self.error(
            429,
            "RateLimitExceeded",
            "Rate Limit Exceeded",
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Limit": "30",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset),
                "RateLimit-Policy": "30;w=300",
            },
        )

    # --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        nsid = request.path.removeprefix("/xrpc/")
        if nsid == "com.atproto.server.createSession":
            return self.create_session(request)
        if nsid == "com.atproto.server.refreshSession":
            return self.refresh_session(request)
        routes = {
            "com.atproto.repo.putRecord": self.put_record,
            "com.atproto.repo.createRecord": self.create_record,
            "com.atproto.repo.deleteRecord": self.delete_record,
        }
        if nsid not in routes:
            return self.error(501, "MethodNotImplemented", "Method Not Implemented")
        refused = self.check_access(request)
        if refused:
            return refused
        response = routes[nsid](request.json() or {})
        if self._delays:
            response.delay = self._delays.pop(0)
        return response

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header.removeprefix("Bearer ") if header.startswith("Bearer ") else None

    def check_access(self, request: Request) -> Response | None:
        token = self._bearer(request)
        if token is None:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        if token not in self.access_tokens:
            return self.error(400, "InvalidToken", "Token could not be verified")
        if not self.access_tokens[token]:
            return self.error(400, "ExpiredToken", "Token has expired")
        return None

    def _new_session(self) -> dict[str, Any]:
        access, refresh = f"access-{next(self._tokens)}", f"refresh-{next(self._tokens)}"
        self.access_tokens[access] = True
        self.refresh_tokens.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "handle": self.user_handle, "did": self.did, "active": True}

    def create_session(self, request: Request) -> Response:
        now = time.monotonic()
        self.session_times = [t for t in self.session_times if now - t < SESSION_WINDOW]
        if len(self.session_times) >= SESSION_LIMIT:
            return self.rate_limited(int(SESSION_WINDOW - (now - self.session_times[0])) + 1)
        self.session_times.append(now)
        body = request.json() or {}
        if body.get("identifier") not in {self.user_handle, self.did} or body.get("password") != self.app_password:
            return self.error(401, "AuthenticationRequired", "Invalid identifier or password")
        return Response(200, self._new_session())

    def refresh_session(self, request: Request) -> Response:
        token = self._bearer(request)
        if token is None:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        if token in self.access_tokens:
            return self.error(400, "InvalidToken", "Bad token scope")
        if token not in self.refresh_tokens:
            return self.error(400, "ExpiredToken", "Token has been revoked")
        self.refresh_tokens.discard(token)
        return Response(200, self._new_session())

    # Records ------------------------------------------------------------------------------

    def _validate(self, body: dict[str, Any], *, rkey_required: bool) -> Response | None:
        if body.get("repo") not in {self.did, self.user_handle}:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        collection, rkey, record = body.get("collection"), body.get("rkey"), body.get("record")
        if (rkey_required or rkey is not None) and not (isinstance(rkey, str) and TID.match(rkey)):
            return self.error(400, "InvalidRequest", "Invalid record key: must be a TID")
        if collection == "app.bsky.feed.post":
            if not isinstance(record, dict) or record.get("$type") != "app.bsky.feed.post":
                return self.error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: $type mismatch")
            text = record.get("text", "")
            if "createdAt" not in record:
                return self.error(400, "InvalidRequest", 'Invalid app.bsky.feed.post record: must have "createdAt"')
            if len(text.encode()) > 3000:
                return self.error(400, "InvalidRequest", "Record/text must not be longer than 3000 characters")
            if grapheme.length(text) > 300:
                return self.error(400, "InvalidRequest", "Record/text must not be longer than 300 graphemes")
        return None

    def _result(self, rkey: str, cid: str, *, commit: bool) -> Response:
        body: dict[str, Any] = {"uri": f"at://{self.did}/app.bsky.feed.post/{rkey}", "cid": cid}
        if commit:
            body["commit"] = {"cid": cid_of({"commit": len(self.commits)}), "rev": f"rev{len(self.commits)}"}
        body["validationStatus"] = "valid"
        return Response(200, body)

    def put_record(self, body: dict[str, Any]) -> Response:
        invalid = self._validate(body, rkey_required=True)
        if invalid:
            return invalid
        key = (self.did, body["collection"], body["rkey"])
        cid = cid_of(body["record"])
        current = self.records.get(key)
        if current and current[1] == cid:
            return self._result(body["rkey"], cid, commit=False)  # the documented no-op
        self.records[key] = (body["record"], cid)
        self.commits.append(("update" if current else "create", body["rkey"]))
        return self._result(body["rkey"], cid, commit=True)

    def create_record(self, body: dict[str, Any]) -> Response:
        invalid = self._validate(body, rkey_required=False)
        if invalid:
            return invalid
        rkey = body.get("rkey") or f"3l{next(self._tokens):011d}"[:13].replace("0", "2").replace("1", "3")
        key = (self.did, body["collection"], rkey)
        if key in self.records:
            return self.error(500, "InternalServerError", "Internal Server Error")
        cid = cid_of(body["record"])
        self.records[key] = (body["record"], cid)
        self.commits.append(("create", rkey))
        return self._result(rkey, cid, commit=True)

    def delete_record(self, body: dict[str, Any]) -> Response:
        if body.get("repo") not in {self.did, self.user_handle}:
            return self.error(401, "AuthenticationRequired", "Authentication Required")
        key = (self.did, body.get("collection", ""), body.get("rkey", ""))
        if self.records.pop(key, None) is not None:
            self.commits.append(("delete", key[2]))
        return Response(200, {"commit": {"cid": cid_of({"commit": len(self.commits)}), "rev": "rev"}})

    def posts(self) -> list[dict[str, Any]]:
        return [
            record for (_, collection, _), (record, _) in self.records.items() if collection == "app.bsky.feed.post"
        ]
