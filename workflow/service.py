"""Use cases: submit, approve, reject, edit, withdraw, cancel, retry, resolve.

The rules live here: four eyes (never the author, never an editor of the text), the approver
list, the quorum, who may cancel. Each use case is one short transaction; time comes in as
`now`. Knows no Slack and no HTTP: group membership comes from a `Directory`, lengths from the
destinations.

A use case re-reads and re-checks when its compare-and-set loses a race, so two approvers of
a two-person quorum clicking at once both count, while a second click on a finished
announcement gets a clear refusal instead of a second transition.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from workflow import audit, checks, store
from workflow.clock import from_db, to_db
from workflow.db import transaction
from workflow.destinations.base import Destination, Post, Redelivery
from workflow.errors import Conflict, InvalidDraft, NotAllowed, NotFound, Refusal
from workflow.models import Announcement
from workflow.settings import ApprovalSettings, DestinationSettings, fingerprint
from workflow.states import Event, State
from workflow.store import DeliveryState
from workflow.views import AnnouncementView, Count, DeliveryView, FindingView

T = TypeVar("T")

STATUSES = ("investigating", "identified", "monitoring", "resolved")
FOLLOWABLE = (State.PUBLISHED, State.FAILED, State.PUBLISHING)  # something went out
MAX_TEXT = 10_000  # beyond any destination's limit; keeps a paste accident out of the database
CONFLICT_RETRIES = 5


class Directory(Protocol):
    """Who is in a Slack user group, and what people are called (cached by the implementation)."""

    def members(self, group_id: str) -> frozenset[str]: ...

    def display_name(self, user_id: str) -> str | None:
        """The name the person shows now, for the audit log; None when it cannot be known."""
        ...


@dataclass(frozen=True)
class Draft:
    text: str
    destinations: tuple[str, ...]
    title: str | None = None
    status: str | None = None
    follows: int | None = None  # the announcement this one continues (a thread, an incident update)

    def post(self, *, announcement_id: int | None = None, released_at: datetime | None = None) -> Post:
        return Post(
            text=self.text,
            title=self.title,
            status=self.status,
            announcement_id=announcement_id,
            released_at=released_at,
        )


@dataclass(frozen=True)
class Outcome:
    """What a use case did: the announcement now, and a line for the person who clicked."""

    announcement_id: int
    message: str
    notify: tuple[tuple[str, str], ...] = field(default=())  # (user id, DM text) to send


def content_hash(draft: Draft) -> str:
    blob = json.dumps(
        {
            "text": draft.text,
            "title": draft.title,
            "status": draft.status,
            "destinations": list(draft.destinations),
            "follows": draft.follows,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


class Announcements:
    def __init__(
        self,
        *,
        engine: Engine,
        approval: ApprovalSettings,
        destinations: Mapping[str, Destination],
        destination_settings: Sequence[DestinationSettings],
        directory: Directory,
        checks_config: checks.ChecksConfig = checks.DEFAULT_CONFIG,
    ) -> None:
        self.engine = engine
        self.approval = approval
        self.destinations = dict(destinations)
        self.destination_settings = {d.name: d for d in destination_settings}
        self.directory = directory
        self.checks_config = checks_config

    # Who may do what ---------------------------------------------------------------------

    def is_approver(self, user_id: str) -> bool:
        """Listed in [approval].approvers directly or through a user group; empty list = anyone."""
        listed = self.approval.approvers
        if not listed:
            return True
        if user_id in listed:
            return True
        return any(user_id in self.directory.members(group) for group in listed if group.startswith("S"))

    def approver_names(self) -> str:
        return ", ".join(f"<!subteam^{a}>" if a.startswith("S") else mention(a) for a in self.approval.approvers)

    # Drafts ------------------------------------------------------------------------------

    def counts(self, draft: Draft) -> list[Count]:
        post = draft.post()
        result = []
        for name, destination in self.destinations.items():  # config order, as on the card
            if name in draft.destinations:
                length = destination.length(post)
                result.append(Count(name, length.used, length.limit, length.unit))
        return result

    def validate(self, draft: Draft, *, now: datetime) -> list[checks.Finding]:
        """Raise InvalidDraft naming each problem by field; return the warnings to keep."""
        problems: dict[str, str] = {}
        if not draft.text.strip():
            problems["text"] = "Write the text of the announcement."
        elif len(draft.text) > MAX_TEXT:
            problems["text"] = (
                f"The text is {len(draft.text)} characters; the most any destination takes is {MAX_TEXT}."
            )
        if not draft.destinations:
            problems["destinations"] = "Choose at least one destination."
        disabled = self._disabled()
        text_problems: list[str] = []
        for name in draft.destinations:
            destination = self.destinations.get(name)
            if destination is None:
                problems["destinations"] = f"{name!r} is not a configured destination; reopen /announce."
                continue
            if name in disabled:
                problems["destinations"] = f"{name} is switched off ({disabled[name]}); fix it in announce.toml."
                continue
            if destination.type == "statuspage":
                if not (draft.title or "").strip():
                    problems["title"] = f"{name} (Statuspage) needs a title: it becomes the incident name."
                if draft.status not in STATUSES:
                    problems["status"] = f"{name} (Statuspage) needs a status: {', '.join(STATUSES)}."
            if draft.text.strip():
                text_problems.extend(destination.check(draft.post()))
        if draft.follows is not None:
            problem = self._follow_up_problem(draft.follows)
            if problem:
                problems["follows"] = problem
        if draft.title and len(draft.title) > 255:
            problems["title"] = f"The title is {len(draft.title)} characters; the limit is 255."
        findings: list[checks.Finding] = []
        if draft.text.strip():
            outside = any(self._type(n) != "slack" for n in draft.destinations)
            with Session(self.engine) as session:
                recent = [
                    checks.RecentPost(text=a.text, at=from_db(a.updated_at))
                    for a in store.recent_published(session=session, since=now - timedelta(hours=1))
                ]
            findings = checks.run_checks(
                draft.text, config=self.checks_config, outside_slack=outside, recent=recent, now=now
            )
            blocking = [f for f in findings if f.severity == checks.Severity.BLOCKING]
            text_problems.extend(f"{f.message} ({f.excerpt})" if f.excerpt else f.message for f in blocking)
        if text_problems and "text" not in problems:
            problems["text"] = " · ".join(text_problems)
        if problems:
            raise InvalidDraft(problems)
        return [f for f in findings if f.severity != checks.Severity.BLOCKING]

    def _follow_up_problem(self, follows: int) -> str | None:
        with Session(self.engine) as session:
            earlier = store.get_announcement(session=session, announcement_id=follows)
        if earlier is None:
            return f"Announcement #{follows} does not exist."
        if earlier.state not in FOLLOWABLE:
            return f"#{follows} was never published, so there is nothing to follow up on."
        return None

    def follow_up_choices(self, *, limit: int = 25) -> list[tuple[int, str]]:
        """Recently published announcements a new one can continue: (id, short label)."""
        with Session(self.engine) as session:
            rows = store.list_announcements(session=session, states=list(FOLLOWABLE), limit=limit)
        return [(a.id or 0, f"#{a.id} {a.title or a.text}".replace("\n", " ")) for a in rows]

    def _type(self, name: str) -> str:
        destination = self.destinations.get(name)
        return destination.type if destination else ""

    def _disabled(self) -> dict[str, str]:
        with Session(self.engine) as session:
            rows = store.disabled_destinations(session=session)
        return {
            name: row.reason
            for name, row in rows.items()
            if name in self.destination_settings and fingerprint(self.destination_settings[name]) == row.fingerprint
        }

    # Use cases ---------------------------------------------------------------------------

    def submit(self, draft: Draft, *, author_id: str, now: datetime) -> Outcome:
        warnings = self.validate(draft, now=now)
        findings = json.dumps([_finding_dict(f) for f in warnings], ensure_ascii=False)
        ordered = tuple(n for n in self.destinations if n in draft.destinations)
        draft = Draft(
            text=draft.text, destinations=ordered, title=draft.title or None, status=draft.status, follows=draft.follows
        )

        def work(session: Session) -> Outcome:
            announcement = Announcement(
                author_id=author_id,
                text=draft.text,
                title=draft.title,
                status=draft.status,
                follows_id=draft.follows,
                destinations=json.dumps(list(draft.destinations)),
                content_hash=content_hash(draft),
                editors=json.dumps([author_id]),
                findings=findings,
                channel=self.approval.channel,
                created_at=to_db(now),
                updated_at=to_db(now),
            )
            store.add_announcement(
                session=session,
                announcement=announcement,
                actor=author_id,
                now=now,
                data={
                    "text": draft.text,
                    "title": draft.title,
                    "destinations": list(draft.destinations),
                    "text_hash": announcement.content_hash,
                    "findings": json.loads(findings),
                },
            )
            assert announcement.id is not None
            return Outcome(announcement.id, "Sent for approval.")

        return self._run(work, actor=author_id, action="submit", announcement_id=None, now=now)

    def approve(self, *, announcement_id: int, revision: int, user_id: str, now: datetime) -> Outcome:
        allowed = self.is_approver(user_id)  # may call Slack: outside the transaction

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.PENDING, revision)
            if user_id == a.author_id:
                raise NotAllowed(
                    "You wrote this announcement, so someone else has to approve it: that is the four eyes."
                )
            if user_id in json.loads(a.editors):
                raise NotAllowed("You edited this text, so someone else has to approve it: that is the four eyes.")
            if not allowed:
                raise NotAllowed(f"Only the approvers in announce.toml may approve: {self.approver_names()}.")
            approvers = store.approvers_of(session=session, announcement_id=announcement_id, revision=a.revision)
            if user_id in approvers:
                raise Conflict(f"You already approved this text. {self._still_needed(len(approvers))}")
            store.add_approval(session=session, announcement=a, approver_id=user_id, now=now)
            count = len(approvers) + 1
            data = {"text_hash": a.content_hash, "revision": a.revision, "approvals": count}
            if count < self.approval.required_approvals:
                store.apply_transition(
                    session=session, announcement=a, event=Event.APPROVE, actor=user_id, now=now, data=data
                )
                return Outcome(a.id or 0, f"Approved. {self._still_needed(count)}")
            release_at = now + timedelta(seconds=self.approval.cooldown_seconds)
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.APPROVE_FINAL,
                actor=user_id,
                now=now,
                changes={"release_at": to_db(release_at)},
                data={**data, "release_at": release_at.isoformat()},
            )
            return Outcome(
                a.id or 0, f"Approved. Sending in {self.approval.cooldown_seconds} seconds unless someone cancels."
            )

        return self._run(work, actor=user_id, action="approve", announcement_id=announcement_id, now=now)

    def reject(self, *, announcement_id: int, revision: int, user_id: str, reason: str, now: datetime) -> Outcome:
        allowed = self.is_approver(user_id)

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.PENDING, revision)
            if user_id == a.author_id:
                raise NotAllowed("You wrote this announcement; use Withdraw to take it back.")
            if not allowed:
                raise NotAllowed(f"Only the approvers in announce.toml may reject: {self.approver_names()}.")
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.REJECT,
                actor=user_id,
                now=now,
                changes={"decided_by": user_id, "reason": reason or None},
                data={"reason": reason},
            )
            dm = f"{mention(user_id)} rejected your announcement #{a.id}" + (f": {reason}" if reason else ".")
            return Outcome(a.id or 0, "Rejected; the author has been told.", notify=((a.author_id, dm),))

        return self._run(work, actor=user_id, action="reject", announcement_id=announcement_id, now=now)

    def withdraw(self, *, announcement_id: int, revision: int, user_id: str, now: datetime) -> Outcome:
        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.PENDING, None)
            if user_id != a.author_id:
                raise NotAllowed("Only the author can withdraw an announcement; approvers can Reject it.")
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.WITHDRAW,
                actor=user_id,
                now=now,
                changes={"decided_by": user_id},
            )
            return Outcome(a.id or 0, "Withdrawn.")

        return self._run(work, actor=user_id, action="withdraw", announcement_id=announcement_id, now=now)

    def may_edit(self, *, announcement_id: int, user_id: str) -> Announcement:
        """The announcement to pre-fill the edit modal with, if this person may edit it."""
        with Session(self.engine) as session:
            a = self._load(session, announcement_id)
        self._expect(a, State.PENDING, None)
        if user_id != a.author_id and not (self.approval.approvers and self.is_approver(user_id)):
            raise NotAllowed("Only the author or an approver can edit this announcement.")
        return a

    def edit(self, draft: Draft, *, announcement_id: int, revision: int, user_id: str, now: datetime) -> Outcome:
        self.may_edit(announcement_id=announcement_id, user_id=user_id)
        warnings = self.validate(draft, now=now)
        ordered = tuple(n for n in self.destinations if n in draft.destinations)
        draft = Draft(
            text=draft.text, destinations=ordered, title=draft.title or None, status=draft.status, follows=draft.follows
        )

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            if a.revision != revision:
                raise Conflict("Someone else edited this announcement while you were editing; open Edit again.")
            self._expect(a, State.PENDING, revision)
            editors = json.loads(a.editors)
            if user_id not in editors:
                editors.append(user_id)
            digest = content_hash(draft)
            findings = [_finding_dict(f) for f in warnings]
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.EDIT,
                actor=user_id,
                now=now,
                changes={
                    "text": draft.text,
                    "title": draft.title,
                    "status": draft.status,
                    "follows_id": draft.follows,
                    "destinations": json.dumps(list(draft.destinations)),
                    "content_hash": digest,
                    "revision": a.revision + 1,
                    "editors": json.dumps(editors),
                    "findings": json.dumps(findings, ensure_ascii=False),
                },
                data={
                    "text": draft.text,
                    "title": draft.title,
                    "destinations": list(draft.destinations),
                    "follows": draft.follows,
                    "text_hash": digest,
                    "findings": findings,
                    "revision": a.revision + 1,
                },
            )
            return Outcome(a.id or 0, "Saved. Approvals were cleared: the new text needs its own approval.")

        return self._run(work, actor=user_id, action="edit", announcement_id=announcement_id, now=now)

    def cancel(self, *, announcement_id: int, user_id: str, now: datetime) -> Outcome:
        allowed = self.is_approver(user_id)

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.COOLING_OFF, None)
            approvers = store.approvers_of(session=session, announcement_id=announcement_id, revision=a.revision)
            if user_id != a.author_id and user_id not in approvers and not allowed:
                raise NotAllowed("Only the author or an approver can cancel.")
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.CANCEL,
                actor=user_id,
                now=now,
                changes={"decided_by": user_id},
            )
            return Outcome(a.id or 0, "Cancelled. Nothing was sent.")

        return self._run(work, actor=user_id, action="cancel", announcement_id=announcement_id, now=now)

    def retry_failed(self, *, announcement_id: int, user_id: str, now: datetime) -> Outcome:
        allowed = self.is_approver(user_id)

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.FAILED, None)
            if user_id != a.author_id and not allowed:
                raise NotAllowed("Only the author or an approver can retry.")
            store.apply_transition(session=session, announcement=a, event=Event.RETRY_FAILED, actor=user_id, now=now)
            return Outcome(a.id or 0, "Retrying the failed destinations.")

        return self._run(work, actor=user_id, action="retry_failed", announcement_id=announcement_id, now=now)

    def resolve_uncertain(self, *, delivery_id: int, user_id: str, sent: bool, now: datetime) -> Outcome:
        """A person answers "was it posted?" for a send the app cannot check by itself."""
        allowed = self.is_approver(user_id)

        def work(session: Session) -> Outcome:
            from workflow.models import Delivery  # noqa: PLC0415 - keeps the import list short

            delivery = session.get(Delivery, delivery_id)
            if delivery is None:
                raise NotFound("That delivery no longer exists.")
            a = self._load(session, delivery.announcement_id)
            if user_id != a.author_id and not allowed:
                raise NotAllowed("Only the author or an approver can decide this.")
            values = (
                {"state": DeliveryState.DELIVERED.value, "last_error": f"marked as sent by {user_id}"}
                if sent
                else {"state": DeliveryState.QUEUED.value, "next_attempt_at": to_db(now), "last_error": None}
            )
            if not store.set_delivery(
                session=session, delivery_id=delivery_id, expect=DeliveryState.UNCERTAIN, now=now, values=values
            ):
                raise Conflict("Someone already decided this delivery.")
            store.record(
                session=session,
                actor=user_id,
                action="mark_sent" if sent else "send_again",
                now=now,
                announcement_id=a.id,
                data={"destination": delivery.destination},
            )
            settle(session=session, announcement_id=delivery.announcement_id, now=now)
            return Outcome(a.id or 0, "Marked as sent." if sent else "Sending again.")

        return self._run(work, actor=user_id, action="resolve", announcement_id=None, now=now)

    # Retraction: deleting what was published needs its own second person -----------------

    def request_retract(self, *, announcement_id: int, user_id: str, reason: str, now: datetime) -> Outcome:
        allowed = self.is_approver(user_id)

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.PUBLISHED, None)
            if user_id != a.author_id and not allowed:
                raise NotAllowed("Only the author or an approver can ask to retract an announcement.")
            if not reason.strip():
                raise InvalidDraft({"reason": "Say why it should be deleted: the approver and the audit log need it."})
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.REQUEST_RETRACT,
                actor=user_id,
                now=now,
                changes={"retract_requested_by": user_id, "retract_reason": reason},
                data={"reason": reason},
            )
            return Outcome(a.id or 0, "Retraction requested: a second person has to approve it on the card.")

        return self._run(work, actor=user_id, action="request_retract", announcement_id=announcement_id, now=now)

    def approve_retract(self, *, announcement_id: int, user_id: str, now: datetime) -> Outcome:
        allowed = self.is_approver(user_id)

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.RETRACT_PENDING, None)
            if user_id == a.retract_requested_by:
                raise NotAllowed(
                    "You asked for this retraction, so someone else has to approve it: that is the four eyes."
                )
            if not allowed:
                raise NotAllowed(
                    f"Only the approvers in announce.toml may approve a retraction: {self.approver_names()}."
                )
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.APPROVE_RETRACT,
                actor=user_id,
                now=now,
                changes={"decided_by": user_id},
            )
            return Outcome(a.id or 0, "Retraction approved: deleting the posts where each platform allows it.")

        return self._run(work, actor=user_id, action="approve_retract", announcement_id=announcement_id, now=now)

    def keep(self, *, announcement_id: int, user_id: str, now: datetime) -> Outcome:
        allowed = self.is_approver(user_id)

        def work(session: Session) -> Outcome:
            a = self._load(session, announcement_id)
            self._expect(a, State.RETRACT_PENDING, None)
            if user_id != a.retract_requested_by and not allowed:
                raise NotAllowed("Only whoever asked for the retraction, or an approver, can keep it published.")
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.KEEP,
                actor=user_id,
                now=now,
                changes={"retract_requested_by": None, "retract_reason": None},
            )
            return Outcome(a.id or 0, "Kept: the announcement stays published.")

        return self._run(work, actor=user_id, action="keep", announcement_id=announcement_id, now=now)

    # Reading -----------------------------------------------------------------------------

    def view(self, *, announcement_id: int) -> AnnouncementView:
        with Session(self.engine) as session:
            a = self._load(session, announcement_id)
            approvals = store.approvers_of(session=session, announcement_id=announcement_id, revision=a.revision)
            deliveries = store.deliveries_of(session=session, announcement_id=announcement_id)
        return self._to_view(a, approvals, deliveries)

    def _to_view(self, a: Announcement, approvals: list[str], deliveries: list) -> AnnouncementView:  # type: ignore[type-arg]
        draft = Draft(
            text=a.text,
            destinations=tuple(json.loads(a.destinations)),
            title=a.title,
            status=a.status,
            follows=a.follows_id,
        )
        findings = tuple(
            FindingView(f["rule"], f["severity"], f["message"], f.get("excerpt", ""), f.get("suggestion"))
            for f in json.loads(a.findings)
        )
        return AnnouncementView(
            id=a.id or 0,
            state=State(a.state),
            revision=a.revision,
            author_id=a.author_id,
            text=a.text,
            title=a.title,
            status=a.status,
            follows=a.follows_id,
            destinations=draft.destinations,
            counts=tuple(self.counts(draft)),
            approvals=tuple(approvals),
            required_approvals=self.approval.required_approvals,
            release_at=from_db(a.release_at) if a.release_at else None,
            decided_by=a.decided_by,
            reason=a.reason,
            retract_requested_by=a.retract_requested_by,
            retract_reason=a.retract_reason,
            findings=findings,
            deliveries=tuple(
                DeliveryView(
                    id=d.id or 0,
                    destination=d.destination,
                    state=d.state,
                    attempts=d.attempts,
                    error=d.last_error,
                    url=d.url,
                    next_attempt_at=from_db(d.next_attempt_at) if d.next_attempt_at else None,
                    can_resend=self._redelivery(d.destination) is not Redelivery.NONE,
                )
                for d in deliveries
            ),
            editors=tuple(json.loads(a.editors)),
            created_at=from_db(a.created_at),
            warnings=len(findings),
            version=a.version,
            channel=a.channel,
            message_ts=a.message_ts,
        )

    def _redelivery(self, name: str) -> Redelivery | None:
        destination = self.destinations.get(name)
        return destination.redelivery if destination else None

    # Plumbing ----------------------------------------------------------------------------

    def _load(self, session: Session, announcement_id: int) -> Announcement:
        a = store.get_announcement(session=session, announcement_id=announcement_id)
        if a is None:
            raise NotFound(f"Announcement #{announcement_id} does not exist.")
        return a

    def _expect(self, a: Announcement, state: State, revision: int | None) -> None:
        """Refuse unless the announcement is still as the clicker saw it."""
        if a.state != state.value:
            raise Conflict(describe(a))
        if revision is not None and a.revision != revision:
            raise Conflict("The text changed since this card was shown to you; read the new text on the card.")

    def _still_needed(self, count: int) -> str:
        left = self.approval.required_approvals - count
        return f"{left} more approval{'s' if left != 1 else ''} needed." if left > 0 else ""

    def _run(
        self, work: Callable[[Session], T], *, actor: str, action: str, announcement_id: int | None, now: datetime
    ) -> T:
        """Run one use case in a transaction; re-run it when a concurrent change won the race.

        A refusal is audited in a transaction of its own (the use case's was rolled back). The
        actor's display name is looked up first (cached; never inside the transaction) and goes
        into the events this use case appends.
        """
        name = self.directory.display_name(actor)
        for attempt in range(CONFLICT_RETRIES):
            try:
                with transaction(self.engine) as session:
                    audit.name_actor(session, actor, name)
                    return work(session)
            except (store.StaleState, IntegrityError):
                if attempt == CONFLICT_RETRIES - 1:
                    refusal: Refusal = Conflict("Too many people changed this at once; please try again.")
                    break
                continue
            except Refusal as exc:
                refusal = exc
                break
        with transaction(self.engine) as session:
            audit.name_actor(session, actor, name)
            store.record(
                session=session,
                actor=actor,
                action="refused",
                now=now,
                announcement_id=announcement_id,
                data={"attempted": action, "reason": str(refusal)},
            )
        raise refusal


def settle(*, session: Session, announcement_id: int, now: datetime) -> None:
    """After a delivery changes: PUBLISHED when all arrived, FAILED when one gave up,
    RETRACTED when every deletion was tried."""
    a = store.get_announcement(session=session, announcement_id=announcement_id)
    if a is None or a.state not in (State.PUBLISHING.value, State.RETRACTING.value):
        return
    counts = store.delivery_counts(session=session, announcement_id=announcement_id)
    if a.state == State.RETRACTING.value:
        if not counts.get(DeliveryState.RETRACTING.value):
            store.apply_transition(
                session=session,
                announcement=a,
                event=Event.RETRACT_DONE,
                actor="worker",
                now=now,
                data={"deliveries": counts},
            )
        return
    if any(counts.get(s.value) for s in store.OPEN_DELIVERY_STATES):
        return
    event = Event.GIVE_UP if counts.get(DeliveryState.FAILED.value) else Event.DELIVERED
    store.apply_transition(
        session=session, announcement=a, event=event, actor="worker", now=now, data={"deliveries": counts}
    )


def describe(a: Announcement) -> str:
    """Why a button no longer applies, in words: who got there first."""
    state = State(a.state)
    who = mention(a.decided_by) if a.decided_by else "someone"
    if state is State.COOLING_OFF:
        return "This was already approved and is counting down to sending; press Cancel on the card to stop it."
    if state is State.PUBLISHING:
        return "This is already being sent."
    if state is State.PUBLISHED:
        return "This was already published."
    if state is State.FAILED:
        return "This was sent, but some destinations failed; see the card."
    if state is State.REJECTED:
        return f"This was already rejected by {who}."
    if state is State.CANCELLED:
        return f"This was cancelled by {who}; nothing was sent."
    if state is State.EXPIRED:
        return "This expired without enough approvals."
    if state is State.RETRACT_PENDING:
        return f"A retraction was requested by {mention(a.retract_requested_by or '')} and waits for approval."
    if state in (State.RETRACTING, State.RETRACTED):
        return f"This was retracted (approved by {who})."
    return "This announcement is waiting for approval."


def _finding_dict(finding: checks.Finding) -> dict[str, object]:
    return {
        "rule": finding.rule,
        "severity": str(finding.severity),
        "message": finding.message,
        "excerpt": finding.excerpt,
        "suggestion": finding.suggestion,
    }
