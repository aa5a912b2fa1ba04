"""Tables of reflection prompts and the reflections learners post in answer.

A *prompt* is one question put to a cohort for a window of days: the weekly one from the prompt
sequence (``slot`` ``"c<cohort>:w<week>"``), one a facilitator posted by hand or scheduled
(``"manual:..."``). ``slot`` is unique per community, so two processes running the weekly job
at the same moment create one prompt, not two.

``thread_id`` is the platform message id of the posted prompt: the adapter reports it back
after sending (``bot.runtime.Runtime`` hands it to ``ReflectionsCog.on_posted``) and every
message posted in that thread is then recognised as an answer.

A *reflection* is one message a learner posted in the prompt's thread (or, for prompts
delivered by DM, to the bot). Only metadata is kept: who, when, how many words, and whether
anyone else has responded to it yet (the facilitator's reply queue). Never the text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import AwareDateTime


def _ts(**kw) -> Column:
    return Column(AwareDateTime(), **kw)


#: Prompt life cycle: scheduled -> posted -> closed; scheduled or posted -> cancelled.
PROMPT_STATUSES = ("scheduled", "posted", "closed", "cancelled")


class ReflectionPrompt(SQLModel, table=True):
    __tablename__ = "reflection_prompt"
    __table_args__ = (
        UniqueConstraint("community_id", "slot", name="uq_reflection_prompt_slot"),
        Index("ix_reflection_prompt_status", "community_id", "status"),
        Index("ix_reflection_prompt_thread", "community_id", "thread_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    cohort: int = 1
    #: "c1:w3" for the weekly prompt of week 3 of cohort 1; "manual:<time>:<n>" otherwise.
    slot: str = Field(max_length=100)
    #: Course week (0 = introductions) for sequence prompts; None for custom ones.
    week: int | None = None
    #: Id of the prompt in the prompt file ("introductions", "participation-1"); "" if custom.
    prompt_key: str = Field(default="", max_length=100)
    title: str = ""
    text: str = ""
    #: "thread" (a thread in the reflection channel) or "dm" (one DM per learner).
    delivery: str = Field(default="thread", max_length=10)
    channel_id: str | None = Field(default=None, max_length=100)
    thread_id: str | None = Field(default=None, max_length=100)
    status: str = Field(default="scheduled", max_length=20)
    scheduled_for: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    posted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    remind_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    closes_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    #: The facilitator who posted or scheduled it by hand (None for the weekly job).
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class Reflection(SQLModel, table=True):
    __tablename__ = "reflection"
    __table_args__ = (
        UniqueConstraint("community_id", "message_id", name="uq_reflection_message"),
        Index("ix_reflection_prompt", "community_id", "prompt_id", "member_id"),
        Index("ix_reflection_member", "community_id", "member_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    prompt_id: int
    member_id: str = Field(max_length=100)
    message_id: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    word_count: int = 0
    #: True once another member replied to it or mentioned its author in the prompt's thread.
    responded: bool = False
    responded_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


MEMBER_COLUMNS: list[tuple[str, str, str]] = [
    ("reflection", "member_id", "delete"),
    ("reflection_prompt", "created_by", "null"),
]
