"""Tables of the nudges capability: nudges (and hold-out records), kudos, facilitator alerts.

- ``nudge``: one row per ladder step per *absence episode* of a member. An episode is keyed by
  the member's last contribution before the nudge (``episode``: its ISO time, or ``"none"``
  for a member who never posted), so any contribution starts a new episode and resets the
  ladder. ``(community, member, episode, step)`` is unique: two processes planning the same
  round record, and send, each step once. ``status`` is ``scheduled`` (held back by the
  member's quiet hours until ``due_at``), ``sent``, ``holdout`` (the member is in the hold-out
  group: this is when they *would* have been nudged; nothing was sent) or ``cancelled`` (they
  came back or opted out before a held-back nudge went out). ``returned_at`` is the member's
  first contribution after ``sent_at``: the outcome the effect report measures.
- ``kudos``: peer thanks. ``credited`` is False for thanks that earn no interaction credit (a
  ring of back-and-forth kudos, or a member who paused tracking); credited kudos also have a
  ``kudos`` row in ``edge``. ``reason`` is kept only when the community retains message text.
- ``nudge_alert``: private notes to facilitators, unique per ``(community, kind, ref)`` so an
  unanswered question alerts once: ``unanswered`` (ref: message id), ``handoff`` (ref: member
  and episode), ``facilitator_share`` (ref: ISO week).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import AwareDateTime


def _ts(**kw) -> Column:
    return Column(AwareDateTime(), **kw)


NUDGE_STATUSES = ("scheduled", "sent", "holdout", "cancelled")
ALERT_KINDS = ("unanswered", "handoff", "facilitator_share")


class Nudge(SQLModel, table=True):
    __tablename__ = "nudge"
    __table_args__ = (
        UniqueConstraint("community_id", "member_id", "episode", "step", name="uq_nudge_step"),
        Index("ix_nudge_member", "community_id", "member_id", "created_at"),
        Index("ix_nudge_status", "community_id", "status", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    member_id: str = Field(max_length=100)
    #: 1 (light invitation) or 2 (personal, naming a thread or peer). Step 3, the hand-off,
    #: is a ``nudge_alert`` of kind ``handoff``.
    step: int
    #: The member's quiet state when planned: new, quiet, isolated, dropping.
    state: str = Field(default="", max_length=20)
    episode: str = Field(max_length=40)
    #: thread, question, reflection or peer.
    hook_kind: str = Field(default="", max_length=20)
    #: Message id (thread, question, peer's reply) or prompt id (reflection) the nudge names.
    hook_ref: str | None = Field(default=None, max_length=100)
    #: The peer the nudge names (thread opener, question author, member who replied).
    peer_id: str | None = Field(default=None, max_length=100)
    text: str | None = None
    status: str = Field(default="scheduled", max_length=20)
    holdout: bool = False
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    returned_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    #: "" while waiting, "returned", "handed_off" (step 2 unanswered, facilitators told) or
    #: why a held-back nudge was cancelled.
    outcome: str = Field(default="", max_length=40)


class Kudos(SQLModel, table=True):
    __tablename__ = "kudos"
    __table_args__ = (
        Index("ix_kudos_giver", "community_id", "giver_id", "created_at"),
        Index("ix_kudos_receiver", "community_id", "receiver_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    giver_id: str = Field(max_length=100)
    receiver_id: str = Field(max_length=100)
    reason: str | None = None
    credited: bool = True
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class NudgeAlert(SQLModel, table=True):
    __tablename__ = "nudge_alert"
    __table_args__ = (
        UniqueConstraint("community_id", "kind", "ref", name="uq_nudge_alert"),
        Index("ix_nudge_alert_pending", "community_id", "notified_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    kind: str = Field(max_length=30)
    ref: str = Field(max_length=200)
    #: The learner the alert is about (author of the unanswered post, member handed off).
    member_id: str | None = Field(default=None, max_length=100)
    detail: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    notified_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


MEMBER_COLUMNS: list[tuple[str, str, str]] = [
    ("nudge", "member_id", "delete"),
    ("nudge", "peer_id", "null"),
    ("kudos", "giver_id", "delete"),
    ("kudos", "receiver_id", "delete"),
    ("nudge_alert", "member_id", "delete"),
]
