"""A fake Slack Web API that speaks Slack's wire protocol, for tests.

Point slack_sdk at it with ``WebClient(token=fake.bot_token, base_url=fake.url + "/api/")`` (or an
``httpx.Client`` at ``fake.url + "/api/<method>"``) and assert on what crossed the wire with
`FakeSlack.calls`, `FakeSlack.messages`, `FakeSlack.uploaded_files` and `FakeSlack.ephemerals`.

Facts modelled, and where they come from:

- Transport (docs.slack.dev/apis/web-api): every method is ``POST https://slack.com/api/<method>``;
  arguments arrive as ``application/x-www-form-urlencoded`` or ``application/json`` (or in the query
  string). In a form body, structured arguments (``blocks``, ``attachments``, ``metadata``, ``view``,
  ``files``) are JSON documents *encoded as strings*; in a JSON body they are real JSON. The fake
  decodes them, so `calls` shows the same dicts whichever encoding the client chose. slack_sdk 3.47
  sends JSON for chat.postMessage/update/postEphemeral and views.*, and form bodies for everything
  else (slack_sdk/web/client.py), and sends booleans in a form as "1"/"0".
- Authentication: ``Authorization: Bearer <token>``, or a ``token`` POST parameter in a form body
  (each method page: "Tokens should be passed as an HTTP Authorization header or alternatively, as
  a POST parameter"). A token inside a JSON body does not count (changelog
  2017-10-keeping-up-with-the-jsons: JSON bodies need the header). No token -> ``not_authed``, a wrong
  one -> ``invalid_auth``.
- Answers are HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": "<code>"}``; only rate
  limiting changes the status: HTTP 429, a ``Retry-After`` header in seconds and
  ``{"ok": false, "error": "ratelimited"}`` (docs.slack.dev/apis/web-api/rate-limits). An unknown method
  answers ``unknown_method``.
- Messages: ``ts`` ("1700000000.000100": epoch seconds, six decimals) is the message's id within its
  channel. chat.postMessage needs ``text``, ``blocks`` or ``attachments`` (``no_text``), takes at most
  50 blocks (``invalid_blocks``), truncates text after 40,000 characters (changelog
  2018-04-truncating-really-long-messages), accepts a user id as ``channel`` and then posts in the
  app's DM with that user (the answer names the ``D…`` channel), and answers ``channel``, ``ts`` and
  ``message``. ``metadata`` is ``{"event_type", "event_payload"}`` (docs.slack.dev/messaging/message-metadata).
- chat.update (docs.slack.dev/reference/methods/chat.update): needs the ``D…`` id for a DM, not a user
  id; unknown ``ts`` -> ``message_not_found``; only the app's own messages -> ``cant_update_message``.
  Omitted ``blocks`` are kept only if ``text`` is omitted too; passing ``text`` alone drops the blocks.
  Answers ``channel``, ``ts``, ``text``, ``message``.
- chat.postEphemeral answers ``message_ts`` only; ephemeral messages never appear in history.
- chat.getPermalink: ``https://<domain>.slack.com/archives/<channel>/p<ts without the dot>``.
- conversations.history (docs.slack.dev/reference/methods/conversations.history): newest first;
  ``limit`` defaults to 100 (max 999); ``oldest``/``latest`` are exclusive unless ``inclusive``; thread
  replies are left out (their parent carries ``reply_count``/``latest_reply``); ``metadata`` is only
  included with ``include_all_metadata``; ``has_more`` plus ``response_metadata.next_cursor`` page on.
- conversations.open ``users=U…`` answers ``{"channel": {"id": "D…"}}``, the same id every time
  (``already_open``/``no_op`` after the first), several users give a ``G…`` group DM.
- usergroups.users.list ``usergroup=S…`` -> ``users`` or ``no_such_subteam``; users.info ``user=U…`` ->
  ``user`` with ``profile.display_name``/``real_name`` or ``user_not_found``.
- views.open / views.push need a ``trigger_id``; trigger ids are single use (``exchanged_trigger_id``)
  and die after 3 seconds (``expired_trigger_id``; docs.slack.dev/interactivity/handling-user-interaction).
  Ids minted by tests/slack_requests.py carry their issue time, so the fake can tell; other strings
  never expire. views.update by ``view_id`` or ``external_id``; a stale ``hash`` -> ``hash_conflict``;
  unknown view -> ``not_found``. views.publish stores each user's App Home.
- Files (docs.slack.dev/reference/methods/files.getUploadURLExternal and
  files.completeUploadExternal): ``getUploadURLExternal(filename, length)`` answers ``upload_url`` and
  ``file_id``; the bytes are POSTed to that URL raw or multipart-encoded, without a token, and a 200
  means success; ``completeUploadExternal(files=[{"id", "title"}], channel_id | channels,
  initial_comment, thread_ts)`` shares the files (a message with ``files`` in that channel) and
  answers ``files``.
- A ``response_url`` (``/commands/…`` or ``/actions/…`` on this server, see
  `SlackRequests(response_url_base=fake.url)`) accepts POSTed JSON and answers ``{"ok": true}``.

Choices of the fake itself (not Slack facts): ids are synthetic (``D…``, ``F…``, ``V…``); the
upload URL answers ``OK - <length>``; completing an upload whose bytes never arrived, or an unknown
file id, answers ``file_not_found``; chat.update keeps ``metadata`` unless a new one is given; with
``channels=None`` every channel id exists.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

Args = dict[str, Any]
Result = dict[str, Any]

API_PREFIX = "/api/"
UPLOAD_PREFIX = "/upload/v1/"
UPLOAD = "upload"
"""Pseudo method name for the upload URL, for `FakeSlack.fail` / `FakeSlack.hang` / `FakeSlack.calls`."""

RESPONSE_URL_PREFIXES = ("/commands/", "/actions/")
JSON_ARGUMENTS = frozenset({"blocks", "attachments", "metadata", "view", "files", "unfurled_attachments"})
MAX_BLOCKS = 50
MAX_TEXT = 40_000
HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 999
TRIGGER_TTL_SECONDS = 3.0
_TRIGGER_ISSUED_MS = re.compile(r"^(\d{13})\.")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


class SlackError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": code}``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Fault:
    status: int
    error: str | None
    headers: dict[str, str]
    body: Any


@dataclass
class _File:
    id: str
    filename: str
    length: int
    upload_token: str
    alt_txt: str | None = None
    title: str | None = None
    data: bytes | None = None
    channel: str | None = None
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class ParsedCall:
    """One Web API call as the fake understood it."""

    method: str
    args: Args
    token: str | None
    bad_json: bool = False


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _multipart(body: bytes, content_type: str) -> list[tuple[str | None, str | None, bytes]]:
    """(name, filename, payload) for each part of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts: list[tuple[str | None, str | None, bytes]] = []
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        parts.append((str(name) if name is not None else None, part.get_filename(), data))
    return parts


def parse_call(request: Request) -> ParsedCall:
    """Decode a Web API request the way Slack does: query + (form | JSON | multipart) arguments."""
    method = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX) else request.path
    args: Args = {key: values[-1] for key, values in request.query.items()}
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    form_token: str | None = None
    bad_json = False
    if media_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body, bad_json = {}, True
        if isinstance(body, dict):
            body.pop("token", None)  # not honoured in a JSON body: the header is required
            args.update(body)
        else:
            bad_json = True
    elif media_type == "multipart/form-data":
        for name, filename, payload in _multipart(request.body, content_type):
            if name is not None:
                args[name] = payload if filename else payload.decode("utf-8", "replace")
        form_token = args.pop("token", None)
    elif request.body:
        args.update(request.form())
        form_token = args.pop("token", None)
    args = {key: value for key, value in args.items() if value is not None}
    for key in JSON_ARGUMENTS & args.keys():
        if isinstance(args[key], str) and args[key].strip():
            with contextlib.suppress(ValueError):  # else left a string: the method answers *_format errors
                args[key] = json.loads(args[key])
    authorization = request.headers.get("authorization", "")
    token = authorization[len("Bearer ") :].strip() if authorization.startswith("Bearer ") else None
    return ParsedCall(method=method, args=args, token=token or form_token, bad_json=bad_json)


class FakeSlack(FakeServer):
    """A thread-safe fake of the Slack Web API methods Count to Ten uses (see the module docstring)."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-fake-bot-token",
        team_id: str = "T0TEAM",
        team_domain: str = "example",
        team_name: str = "Example",
        app_id: str = "A0APP",
        bot_id: str = "B0BOT",
        bot_user_id: str = "U0BOT",
        bot_name: str = "count-to-ten",
        scopes: Iterable[str] = ("chat:write", "commands", "files:write", "im:write", "usergroups:read", "users:read"),
        users: Mapping[str, Mapping[str, Any]] | None = None,
        usergroups: Mapping[str, Iterable[str]] | None = None,
        channels: Iterable[str] | None = None,
        start_ts: float | None = None,
        trigger_ttl: float | None = TRIGGER_TTL_SECONDS,
    ) -> None:
        """`users` maps user id -> `add_user` keyword arguments; `channels=None` means any id exists;
        `start_ts` makes message timestamps deterministic (start_ts + 0.0001 s per message) instead of
        following the wall clock; `trigger_ttl=None` disables trigger id expiry."""
        super().__init__()
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.app_id = app_id
        self.bot_id = bot_id
        self.bot_user_id = bot_user_id
        self.scopes = ",".join(scopes)
        self.trigger_ttl = trigger_ttl
        self._state = threading.RLock()
        self._channels: set[str] | None = set(channels) if channels is not None else None
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._dms: dict[tuple[str, ...], str] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._home_views: dict[str, dict[str, Any]] = {}
        self._used_triggers: set[str] = set()
        self._files: dict[str, _File] = {}
        self._upload_tokens: dict[str, str] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._hangs: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._last_ts_us = int(start_ts * 1_000_000) if start_ts is not None else 0
        self._deterministic_ts = start_ts is not None
        self.add_user(bot_user_id, name=bot_name, real_name=bot_name, display_name=bot_name, is_bot=True)
        for user_id, profile in (users or {}).items():
            self.add_user(user_id, **profile)
        for group_id, members in (usergroups or {}).items():
            self.set_usergroup(group_id, members)
        self._methods: dict[str, Callable[[Args], Result]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.history": self._conversations_history,
            "conversations.open": self._conversations_open,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    def start(self) -> FakeSlack:
        super().start()
        return self

    def __enter__(self) -> FakeSlack:
        return self.start()

    # ------------------------------------------------------------------ configuration

    @property
    def api_url(self) -> str:
        """The ``base_url`` for slack_sdk's WebClient (it must end with a slash)."""
        return self.url + API_PREFIX

    def add_user(
        self,
        user_id: str,
        *,
        display_name: str = "",
        real_name: str | None = None,
        name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/London",
        email: str | None = None,
    ) -> dict[str, Any]:
        """Register (or replace) a user for users.info, shaped like Slack's user object."""
        real = real_name if real_name is not None else (display_name or user_id)
        profile: dict[str, Any] = {
            "display_name": display_name,
            "display_name_normalized": display_name,
            "real_name": real,
            "real_name_normalized": real,
            "team": self.team_id,
        }
        if email is not None:
            profile["email"] = email
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name or (display_name or user_id).lower().replace(" ", "."),
            "deleted": deleted,
            "real_name": real,
            "tz": tz,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": profile,
        }
        with self._state:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def set_usergroup(self, usergroup_id: str, users: Iterable[str]) -> None:
        """Define (or replace) the members of a user group (``S…``) for usergroups.users.list."""
        with self._state:
            self._usergroups[usergroup_id] = list(users)

    def add_channel(self, channel_id: str) -> None:
        """Make a channel exist when the fake was built with an explicit `channels` list."""
        with self._state:
            if self._channels is not None:
                self._channels.add(channel_id)

    def add_message(
        self,
        channel: str,
        *,
        text: str = "",
        user: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """Put a message in a channel as if someone (by default a human, not the app) had posted it."""
        with self._state:
            channel = self._resolve_channel(channel)
            if self._channels is not None:
                self._channels.add(channel)
            message: dict[str, Any] = {
                "type": "message",
                "user": user or "U0HUMAN",
                "text": text,
                "ts": self._next_ts(),
            }
            if blocks is not None:
                message["blocks"] = blocks
            if metadata is not None:
                message["metadata"] = metadata
            self._store(channel, message, thread_ts)
            return copy.deepcopy(message)

    def fail(
        self,
        method: str,
        error: str | None = "ratelimited",
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        body: Any = None,
    ) -> None:
        """Make the next `times` calls of `method` fail without doing anything.

        Defaults model a rate limit: HTTP 429, ``Retry-After: 1``, ``{"ok": false, "error": "ratelimited"}``.
        ``fail(m, "channel_not_found")`` gives Slack's usual HTTP 200 error; ``fail(m, None, status=503,
        body="upstream connect error")`` a raw HTTP failure. Use ``UPLOAD`` for the upload URL.
        """
        if status is None:
            status = 429 if error == "ratelimited" else 200
        if headers is None:
            headers = {"Retry-After": "1"} if status == 429 else {}
        if body is None and error is not None:
            body = error if method == UPLOAD else {"ok": False, "error": error}
        fault = _Fault(status=status, error=error, headers=dict(headers), body=body)
        with self._state:
            self._faults.setdefault(method, deque()).extend(fault for _ in range(times))

    def hang(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` only after `seconds`. The call still takes effect
        at once (a posted message is stored and can be looked up), like a slow network on the way back."""
        with self._state:
            self._hangs.setdefault(method, deque()).extend(seconds for _ in range(times))

    # ------------------------------------------------------------------ accessors for tests

    def calls(self, method: str) -> list[Args]:
        """The decoded arguments of every call of `method` that reached the server, in order (the
        token is left out). ``calls(UPLOAD)`` gives ``{"file_id", "bytes"}`` for each upload POST."""
        with self._lock:
            requests = list(self.requests)
        if method == UPLOAD:
            with self._state:
                tokens = dict(self._upload_tokens)
            return [
                {"file_id": tokens.get(r.path[len(UPLOAD_PREFIX) :]), "bytes": r.body}
                for r in requests
                if r.path.startswith(UPLOAD_PREFIX)
            ]
        return [parse_call(r).args for r in requests if r.path == API_PREFIX + method]

    def wait_for_calls(self, method: str, count: int = 1, *, timeout: float = 10.0) -> list[Args]:
        """Wait until `method` was called at least `count` times (work done on other threads)."""
        path = UPLOAD_PREFIX if method == UPLOAD else API_PREFIX + method

        def enough(requests: list[Request]) -> bool:
            matching = [r for r in requests if (r.path.startswith(path) if method == UPLOAD else r.path == path)]
            return len(matching) >= count

        self.wait_for(enough, timeout=timeout)
        return self.calls(method)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Current state of the messages in `channel` (a ``D…`` id for DMs), oldest first, replies included."""
        with self._state:
            return copy.deepcopy(self._messages.get(self._resolve_channel(channel), []))

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One message by channel and ts, or None."""
        with self._state:
            found = self._find(self._resolve_channel(channel), ts)
            return copy.deepcopy(found) if found is not None else None

    def dm_channel(self, user_id: str) -> str:
        """The ``D…`` id of the app's DM with `user_id` (the one conversations.open answers)."""
        with self._state:
            return self._dm_for((user_id,))

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages sent with chat.postEphemeral (optionally only those shown to `user`)."""
        with self._state:
            return [copy.deepcopy(e) for e in self._ephemerals if user is None or e["user"] == user]

    def uploaded_files(self) -> list[dict[str, Any]]:
        """Files whose bytes were uploaded: id, filename, title, length, bytes, channel,
        initial_comment, thread_ts and completed (shared with files.completeUploadExternal)."""
        with self._state:
            return [
                {
                    "id": f.id,
                    "filename": f.filename,
                    "title": f.title,
                    "length": f.length,
                    "bytes": f.data,
                    "channel": f.channel,
                    "initial_comment": f.initial_comment,
                    "thread_ts": f.thread_ts,
                    "completed": f.completed,
                }
                for f in self._files.values()
                if f.data is not None
            ]

    def views(self) -> list[dict[str, Any]]:
        """Modals opened, pushed or updated, in their current state, in the order they were opened."""
        with self._state:
            return copy.deepcopy(list(self._views.values()))

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home last published for `user_id` with views.publish, or None."""
        with self._state:
            view = self._home_views.get(user_id)
            return copy.deepcopy(view) if view is not None else None

    def responses(self) -> list[dict[str, Any]]:
        """Bodies POSTed to response URLs on this server, each as ``{"path", "body"}``, in order."""
        with self._lock:
            requests = list(self.requests)
        return [
            {"path": r.path, "body": r.json() if r.body else None}
            for r in requests
            if r.path.startswith(RESPONSE_URL_PREFIXES)
        ]

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: Request) -> Response:
        if request.path.startswith(UPLOAD_PREFIX):
            return self._delayed(UPLOAD, self._take_fault(UPLOAD) or self._upload(request))
        if request.path.startswith(RESPONSE_URL_PREFIXES):
            return Response(200, {"ok": True})
        if not request.path.startswith(API_PREFIX):
            return Response(404, "Not Found")
        call = parse_call(request)
        fault = self._take_fault(call.method)
        if fault is not None:
            return self._delayed(call.method, fault)
        return self._delayed(call.method, Response(200, self._answer(call), headers={"x-oauth-scopes": self.scopes}))

    def _answer(self, call: ParsedCall) -> Result:
        handler = self._methods.get(call.method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": call.method}
        if call.bad_json:
            return {"ok": False, "error": "invalid_json"}
        if not call.token:
            return {"ok": False, "error": "not_authed"}
        if call.token != self.bot_token:
            return {"ok": False, "error": "invalid_auth"}
        try:
            with self._state:
                return {"ok": True, **handler(call.args)}
        except SlackError as error:
            return {"ok": False, "error": error.code}

    def _take_fault(self, method: str) -> Response | None:
        with self._state:
            queue = self._faults.get(method)
            if not queue:
                return None
            fault = queue.popleft()
        return Response(fault.status, fault.body, headers=fault.headers)

    def _delayed(self, method: str, response: Response) -> Response:
        with self._state:
            queue = self._hangs.get(method)
            if queue:
                response.delay = queue.popleft()
        return response

    # ------------------------------------------------------------------ helpers (call with _state held)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}0{next(self._ids):08X}"

    def _next_ts(self) -> str:
        step = 100  # microseconds: "1700000000.000100", "1700000000.000200", ...
        wall = self._last_ts_us + step if self._deterministic_ts else int(time.time() * 1_000_000)
        self._last_ts_us = max(wall, self._last_ts_us + step)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _dm_for(self, users: tuple[str, ...]) -> str:
        key = tuple(sorted(users))
        if key not in self._dms:
            self._dms[key] = self._next_id("D" if len(key) == 1 else "G")
        return self._dms[key]

    def _resolve_channel(self, channel: str) -> str:
        """For accessors: a user id names the app's DM with that user."""
        if _USER_ID.fullmatch(channel):
            return self._dm_for((channel,))
        return channel

    def _require_channel(self, args: Args, key: str = "channel", *, users_allowed: bool = False) -> str:
        """The channel argument as an existing conversation id. Where Slack allows it (chat.postMessage,
        chat.postEphemeral, files.completeUploadExternal) a user id stands for the app's DM with them;
        elsewhere (chat.update, chat.delete, ...) a user id is ``channel_not_found``."""
        channel = args.get(key)
        if not isinstance(channel, str) or not channel:
            raise SlackError("channel_not_found")
        if _USER_ID.fullmatch(channel):
            if not users_allowed or channel not in self._users:
                raise SlackError("channel_not_found")
            return self._dm_for((channel,))
        if self._channels is not None and channel not in self._channels and channel not in self._dms.values():
            raise SlackError("channel_not_found")
        return channel

    def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self._messages.get(channel, []) if m["ts"] == ts), None)

    def _store(self, channel: str, message: dict[str, Any], thread_ts: str | None) -> None:
        if thread_ts:
            message["thread_ts"] = thread_ts
            parent = self._find(channel, thread_ts)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
                parent.setdefault("reply_users", [])
                if message.get("user") and message["user"] not in parent["reply_users"]:
                    parent["reply_users"].append(message["user"])
                parent["reply_users_count"] = len(parent["reply_users"])
        self._messages.setdefault(channel, []).append(message)

    def _content(self, args: Args, *, require: bool) -> dict[str, Any]:
        """Validated text / blocks / attachments / metadata from a chat.* call."""
        content: dict[str, Any] = {}
        if "text" in args:
            content["text"] = str(args["text"])[:MAX_TEXT]
        if "blocks" in args:
            blocks = args["blocks"]
            if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
                raise SlackError("invalid_blocks_format")
            if len(blocks) > MAX_BLOCKS or not all(isinstance(b.get("type"), str) for b in blocks):
                raise SlackError("invalid_blocks")
            content["blocks"] = blocks
        if "attachments" in args:
            if not isinstance(args["attachments"], list):
                raise SlackError("invalid_attachments")
            content["attachments"] = args["attachments"]
        if "metadata" in args:
            metadata = args["metadata"]
            if (
                not isinstance(metadata, dict)
                or not isinstance(metadata.get("event_type"), str)
                or not isinstance(metadata.get("event_payload"), dict)
            ):
                raise SlackError("invalid_metadata_format")
            content["metadata"] = {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}
        if require and not (content.get("text") or content.get("blocks") or content.get("attachments")):
            raise SlackError("no_text")
        return content

    def _bot_message(self) -> dict[str, Any]:
        return {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": "",
        }

    def _permalink(self, channel: str, ts: str) -> str:
        return f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"

    def _use_trigger(self, args: Args) -> None:
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not isinstance(trigger_id, str) or not trigger_id:
            raise SlackError("invalid_arguments")
        if trigger_id in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        issued = _TRIGGER_ISSUED_MS.match(trigger_id)
        if self.trigger_ttl is not None and issued and time.time() - int(issued.group(1)) / 1000 > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        self._used_triggers.add(trigger_id)

    def _view_object(
        self, view: Any, *, view_id: str, kind: str = "modal", previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not isinstance(view, dict) or view.get("type") != kind:
            raise SlackError("invalid_arguments")
        blocks = view.get("blocks", [])
        if not isinstance(blocks, list) or len(blocks) > 100:
            raise SlackError("invalid_arguments")
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous.get("previous_view_id") if previous else None,
            "root_view_id": previous.get("root_view_id", view_id) if previous else view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    # ------------------------------------------------------------------ methods

    def _auth_test(self, args: Args) -> Result:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self._users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: Args) -> Result:
        channel = self._require_channel(args, users_allowed=True)
        message = {**self._bot_message(), **self._content(args, require=True), "ts": self._next_ts()}
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        self._store(channel, message, thread_ts)
        return {"channel": channel, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _chat_update(self, args: Args) -> Result:
        channel = self._require_channel(args)
        message = self._find(channel, str(args.get("ts", "")))
        if message is None:
            raise SlackError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        content = self._content(args, require=False)
        if "text" in content and "blocks" not in content:
            message.pop("blocks", None)
        message.update(content)
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": copy.deepcopy(message),
        }

    def _chat_delete(self, args: Args) -> Result:
        channel = self._require_channel(args)
        message = self._find(channel, str(args.get("ts", "")))
        if message is None:
            raise SlackError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        self._messages[channel].remove(message)
        return {"channel": channel, "ts": message["ts"]}

    def _chat_post_ephemeral(self, args: Args) -> Result:
        channel = self._require_channel(args, users_allowed=True)
        user = args.get("user")
        if not isinstance(user, str) or not user:
            raise SlackError("user_not_in_channel")
        content = self._content(args, require=True)
        message_ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": content.get("text", ""),
                "blocks": content.get("blocks"),
                "thread_ts": args.get("thread_ts"),
                "message_ts": message_ts,
            }
        )
        return {"message_ts": message_ts}

    def _chat_get_permalink(self, args: Args) -> Result:
        channel = self._require_channel(args)
        message = self._find(channel, str(args.get("message_ts", "")))
        if message is None:
            raise SlackError("message_not_found")
        permalink = self._permalink(channel, message["ts"])
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            permalink += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": permalink}

    def _conversations_history(self, args: Args) -> Result:
        channel = self._require_channel(args)
        try:
            limit = int(args.get("limit") or HISTORY_DEFAULT_LIMIT)
            oldest = float(args.get("oldest") or 0)
            latest = float(args["latest"]) if args.get("latest") else float("inf")
        except (TypeError, ValueError) as error:
            raise SlackError("invalid_arguments") from error
        limit = max(1, min(limit, HISTORY_MAX_LIMIT))
        inclusive = _truthy(args.get("inclusive", False))
        with_metadata = _truthy(args.get("include_all_metadata", False))
        cursor = args.get("cursor")
        if cursor:
            try:
                latest = float(base64.b64decode(cursor).decode().removeprefix("next_ts:"))
                inclusive = False
            except ValueError as error:
                raise SlackError("invalid_cursor") from error

        def in_range(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        visible = [
            m
            for m in reversed(self._messages.get(channel, []))
            if m.get("thread_ts") in (None, m["ts"]) and in_range(float(m["ts"]))
        ]
        page, has_more = visible[:limit], len(visible) > limit
        out = []
        for message in page:
            shown = copy.deepcopy(message)
            if not with_metadata:
                shown.pop("metadata", None)
            out.append(shown)
        result: Result = {"messages": out, "has_more": has_more, "pin_count": 0}
        if has_more:
            result["response_metadata"] = {
                "next_cursor": base64.b64encode(f"next_ts:{page[-1]['ts']}".encode()).decode()
            }
        return result

    def _conversations_open(self, args: Args) -> Result:
        if args.get("channel"):
            return {"channel": {"id": self._require_channel(args)}, "no_op": True, "already_open": True}
        users = args.get("users")
        user_ids = users if isinstance(users, list) else str(users or "").split(",")
        user_ids = [u.strip() for u in user_ids if u.strip()]
        if not user_ids:
            raise SlackError("users_list_not_supplied")
        if any(u not in self._users for u in user_ids):
            raise SlackError("user_not_found")
        key = tuple(sorted(user_ids))
        existed = key in self._dms
        result: Result = {"channel": {"id": self._dm_for(key)}}
        if existed:
            result |= {"no_op": True, "already_open": True}
        return result

    def _usergroups_users_list(self, args: Args) -> Result:
        group = self._usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group)}

    def _users_info(self, args: Args) -> Result:
        user = self._users.get(str(args.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _views_open(self, args: Args) -> Result:
        self._use_trigger(args)
        view_id = self._next_id("V")
        view = self._view_object(args.get("view"), view_id=view_id)
        self._views[view_id] = view
        return {"view": copy.deepcopy(view)}

    def _views_push(self, args: Args) -> Result:
        self._use_trigger(args)
        view_id = self._next_id("V")
        view = self._view_object(args.get("view"), view_id=view_id)
        self._views[view_id] = view
        return {"view": copy.deepcopy(view)}

    def _views_update(self, args: Args) -> Result:
        current: dict[str, Any] | None = None
        if args.get("view_id"):
            current = self._views.get(str(args["view_id"]))
        elif args.get("external_id"):
            current = next((v for v in self._views.values() if v["external_id"] == args["external_id"]), None)
        else:
            raise SlackError("invalid_arguments")
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._view_object(args.get("view"), view_id=current["id"], previous=current)
        self._views[current["id"]] = view
        return {"view": copy.deepcopy(view)}

    def _views_publish(self, args: Args) -> Result:
        user_id = str(args.get("user_id", ""))
        if user_id not in self._users:
            raise SlackError("user_not_found")
        current = self._home_views.get(user_id)
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view_id = current["id"] if current else self._next_id("V")
        view = self._view_object(args.get("view"), view_id=view_id, kind="home")
        self._home_views[user_id] = view
        return {"view": copy.deepcopy(view)}

    def _files_get_upload_url_external(self, args: Args) -> Result:
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except (TypeError, ValueError) as error:
            raise SlackError("invalid_arguments") from error
        if not isinstance(filename, str) or not filename or length <= 0:
            raise SlackError("invalid_arguments")
        file_id = self._next_id("F")
        upload_token = secrets.token_urlsafe(24)
        self._files[file_id] = _File(
            id=file_id, filename=filename, length=length, upload_token=upload_token, alt_txt=args.get("alt_txt")
        )
        self._upload_tokens[upload_token] = file_id
        return {"upload_url": f"{self.url}{UPLOAD_PREFIX}{upload_token}", "file_id": file_id}

    def _upload(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, "Method Not Allowed")
        content_type = request.headers.get("content-type", "")
        data = request.body
        if content_type.split(";")[0].strip().lower() == "multipart/form-data":
            parts = _multipart(request.body, content_type)
            with_file = [payload for _, filename, payload in parts if filename]
            named = [payload for name, _, payload in parts if name in {"file", "filename"}]
            data = (with_file or named or [b""])[0]
        with self._state:
            file_id = self._upload_tokens.get(request.path[len(UPLOAD_PREFIX) :])
            if file_id is None:
                return Response(404, "Not Found")
            self._files[file_id].data = data
        return Response(200, f"OK - {len(data)}")

    def _files_complete_upload_external(self, args: Args) -> Result:
        files = args.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) and f.get("id") for f in files):
            raise SlackError("invalid_arguments")
        pending: list[tuple[_File, str | None]] = []
        for item in files:
            found = self._files.get(str(item["id"]))
            if found is None or found.data is None:
                raise SlackError("file_not_found")
            pending.append((found, item.get("title")))
        if args.get("channel_id"):
            targets = [self._require_channel(args, "channel_id", users_allowed=True)]
        else:
            raw = args.get("channels") or ""
            targets = [
                self._require_channel({"channel": c.strip()}, users_allowed=True)
                for c in str(raw).split(",")
                if c.strip()
            ]
        comment = args.get("initial_comment")
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        shown: list[dict[str, Any]] = []
        for stored, title in pending:
            stored.title = title or stored.filename
            stored.completed = True
            stored.channel = targets[0] if targets else None
            stored.initial_comment = comment
            stored.thread_ts = thread_ts
            shown.append(self._file_object(stored, targets))
        for channel in targets:
            message = {**self._bot_message(), "text": comment or "", "files": copy.deepcopy(shown), "upload": True}
            message["ts"] = self._next_ts()
            self._store(channel, message, thread_ts)
        return {"files": shown}

    def _file_object(self, stored: _File, channels: list[str]) -> dict[str, Any]:
        extension = stored.filename.rsplit(".", 1)[-1].lower() if "." in stored.filename else "binary"
        private = f"https://files.slack.com/files-pri/{self.team_id}-{stored.id}/{stored.filename}"
        return {
            "id": stored.id,
            "created": stored.created,
            "timestamp": stored.created,
            "name": stored.filename,
            "title": stored.title,
            "filetype": extension,
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "size": len(stored.data or b""),
            "is_external": False,
            "is_public": any(c.startswith("C") for c in channels),
            "url_private": private,
            "url_private_download": f"{private}?download=1",
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{stored.id}/{stored.filename}",
            "channels": [c for c in channels if c.startswith("C")],
            "groups": [c for c in channels if c.startswith("G")],
            "ims": [c for c in channels if c.startswith("D")],
        }
