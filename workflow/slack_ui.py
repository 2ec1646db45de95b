"""Everything the app shows in Slack outside a request's own answer: the card (posted once,
then updated in place), ephemeral answers, DMs, App Home, and user-group membership.

Used by the handlers and by the worker, so a card follows its announcement whoever changed
it. Renders are serialised per announcement and always read the latest state, so a slow
older render can never overwrite a newer card within this process; `stale_cards` finds any
card whose render failed (Slack down, a crash between commit and update).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
from collections import defaultdict
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from blocks import card, home
from workflow import store
from workflow.clock import from_db
from workflow.db import transaction
from workflow.errors import Refusal
from workflow.service import Announcements
from workflow.states import State

log = logging.getLogger(__name__)

SLACK_ERRORS = (SlackApiError, urllib.error.URLError, TimeoutError)


class SlackDirectory:
    """User-group membership from usergroups.users.list, cached for a minute; display names
    from users.info, cached for ten minutes."""

    NAME_TTL = 600.0
    NAME_TIMEOUT = 2  # seconds: a name is looked up before a modal's answer, which Slack waits 3 s for

    def __init__(self, client: WebClient, *, ttl: float = 60.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._names: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()
        # Its own client with a short timeout and no retries: a slow users.info costs a name, never an answer.
        self._quick = WebClient(
            token=client.token, base_url=client.base_url, timeout=self.NAME_TIMEOUT, retry_handlers=[]
        )

    def display_name(self, user_id: str) -> str | None:
        """The display name (else the real name) the person has now; None if Slack cannot say.

        Only for user ids (U…/W…): "worker" and "system" have no Slack profile. A failure is
        remembered for a minute, so a Slack outage does not add a call to every click.
        """
        if user_id[:1] not in ("U", "W") or not user_id.isalnum():
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._names.get(user_id)
            if hit and now - hit[0] < (self.NAME_TTL if hit[1] else self.ttl):
                return hit[1]
        try:
            user = self._quick.users_info(user=user_id).get("user") or {}
        except SLACK_ERRORS as exc:
            log.info("no display name for %s: %s", user_id, _slack_error(exc))
            name = None
        else:
            profile = user.get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or None
        with self._lock:
            self._names[user_id] = (now, name)
        return name

    def members(self, group_id: str) -> frozenset[str]:
        # A monotonic clock for a cache's expiry is plumbing, not domain time.
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(group_id)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group_id).get("users") or [])
        except SLACK_ERRORS as exc:
            raise Refusal(
                f"Could not check who is in <!subteam^{group_id}> ({_slack_error(exc)}); please try again."
            ) from exc
        with self._lock:
            self._cache[group_id] = (now, users)
        return users


class SlackUI:
    def __init__(self, *, client: WebClient, service: Announcements, engine: Engine) -> None:
        self.client = client
        self.service = service
        self.engine = engine
        self._locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()

    def _lock(self, announcement_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks[announcement_id]

    def render_card(self, announcement_id: int) -> None:
        """Post the card, or update it in place, to show the announcement as it is now."""
        with self._lock(announcement_id):
            view = self.service.view(announcement_id=announcement_id)
            text, blocks = card.render(view)
            if view.message_ts:
                self.client.chat_update(channel=view.channel, ts=view.message_ts, text=text, blocks=blocks)
                ts = view.message_ts
            else:
                response = self.client.chat_postMessage(
                    channel=view.channel, text=text, blocks=blocks, unfurl_links=False
                )
                ts = str(response["ts"])
            with transaction(self.engine) as session:
                store.mark_card_rendered(
                    session=session, announcement_id=announcement_id, version=view.version, message_ts=ts
                )

    def refresh(self, announcement_id: int) -> None:
        """Best effort from the worker: a failure leaves the card stale for `stale_cards`."""
        try:
            self.render_card(announcement_id)
        except SLACK_ERRORS as exc:
            log.warning("card %s not refreshed: %s", announcement_id, _slack_error(exc))

    def stale_cards(self, now: datetime, *, grace_seconds: float = 10.0) -> list[int]:
        """Announcements whose card lags behind them (a failed render, a crash before it).

        The grace period leaves fresh changes to the handler that made them, so the worker
        never races a handler into posting a second card for a new announcement.
        """
        with Session(self.engine) as session:
            return [
                a.id or 0
                for a in store.stale_cards(session=session)
                if from_db(a.updated_at) <= now - timedelta(seconds=grace_seconds)
            ]

    def ephemeral(self, *, channel: str | None, user: str, text: str) -> None:
        """An answer only the clicker sees; a DM when there is no channel (a modal)."""
        try:
            if channel:
                self.client.chat_postEphemeral(channel=channel, user=user, text=text)
            else:
                self.dm(user=user, text=text)
        except SLACK_ERRORS as exc:
            log.warning("could not answer %s: %s", user, _slack_error(exc))

    def dm(self, *, user: str, text: str) -> str:
        channel = str(self.client.conversations_open(users=user)["channel"]["id"])
        self.client.chat_postMessage(channel=channel, text=text)
        return channel

    def publish_home(self, *, user: str) -> None:
        with Session(self.engine) as session:
            pending_ids = [
                a.id for a in store.list_announcements(session=session, states=[State.PENDING, State.COOLING_OFF])
            ]
            recent_ids = [a.id for a in store.list_announcements(session=session, limit=15)]
        pending = [self.service.view(announcement_id=i) for i in pending_ids if i is not None]
        recent = [self.service.view(announcement_id=i) for i in recent_ids if i is not None]
        self.client.views_publish(user_id=user, view=home.render(pending=pending, recent=recent))


def _slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "error"))
    return type(exc).__name__
