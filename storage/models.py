"""SQLModel tables of the core: communities, members, channels, contributions, edges,
scheduler claims, the sent-message ledger and per-member preferences.

Privacy: ``Contribution.text`` stays NULL unless a community turns text retention on. Every
column that can hold a member id is listed in :data:`MEMBER_COLUMNS` so that erasure
(``forgetme``) is checked over the whole schema, not table by table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.types import AwareDateTime


def _ts(**kw) -> Column:
    return Column(AwareDateTime(), **kw)


class Community(SQLModel, table=True):
    __tablename__ = "community"
    id: str = Field(primary_key=True, max_length=200)
    platform: str = Field(max_length=20)
    name: str = ""
    timezone: str = "UTC"
    cohort: int = 1
    settings_json: str = "{}"
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    archived_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Member(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("community_id", "member_id", name="uq_member"),)
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    member_id: str = Field(max_length=100)
    display_name: str = ""
    is_bot: bool = False
    is_facilitator: bool = False
    joined_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    left_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    first_seen: datetime = Field(sa_column=_ts(nullable=False))
    timezone: str | None = None
    #: False when the member opted out of tracking entirely.
    tracked: bool = True
    #: False when DMs to the member fail permanently (closed DMs).
    reachable: bool = True


class Channel(SQLModel, table=True):
    __tablename__ = "channel"
    __table_args__ = (UniqueConstraint("community_id", "channel_id", name="uq_channel"),)
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    channel_id: str = Field(max_length=100)
    name: str = ""
    tracked: bool = True


class Contribution(SQLModel, table=True):
    __tablename__ = "contribution"
    __table_args__ = (
        UniqueConstraint("community_id", "message_id", name="uq_contribution_message"),
        # The window scans of the weekly numbers read these columns from the index alone
        # (migration 0009 says why and what it measured).
        Index(
            "ix_contribution_time",
            "community_id",
            "created_at",
            "kinds",
            "word_count",
            "member_id",
            "conversation_id",
            "thread_id",
            "reply_to_id",
            "reply_to_member_id",
            "message_id",
            "channel_id",
        ),
        Index("ix_contribution_member", "community_id", "member_id", "created_at"),
        # Only rows in a thread, by time (migration 0008 says why).
        Index(
            "ix_contribution_thread_time",
            "community_id",
            "thread_id",
            "created_at",
            sqlite_where=text("thread_id IS NOT NULL"),
            postgresql_where=text("thread_id IS NOT NULL"),
        ),
        Index("ix_contribution_channel", "community_id", "channel_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    message_id: str = Field(max_length=100)
    member_id: str = Field(max_length=100)
    channel_id: str = Field(max_length=100)
    thread_id: str | None = Field(default=None, max_length=100)
    reply_to_id: str | None = Field(default=None, max_length=100)
    reply_to_member_id: str | None = Field(default=None, max_length=100)
    #: The conversation it belongs to, as far as known when it was written: its thread, else
    #: the thread of the message it replies to, else that message, else itself. NULL when
    #: it replies to a message not seen yet; :func:`storage.queries.conversation_key` then
    #: looks the parent up when it reads.
    conversation_id: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    #: Bit mask over ``bot.classify.KINDS`` (idea, builds_on, reference, question, support).
    kinds: int = 0
    word_count: int = 0
    attachments: int = 0
    text: str | None = None
    edited_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Edge(SQLModel, table=True):
    """An interaction from one member to another: reply, mention, reaction or kudos."""

    __tablename__ = "edge"
    __table_args__ = (
        UniqueConstraint(
            "community_id",
            "kind",
            "message_id",
            "source_id",
            "target_id",
            "detail",
            name="uq_edge",
        ),
        Index("ix_edge_time", "community_id", "created_at"),
        Index("ix_edge_message", "community_id", "message_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    source_id: str = Field(max_length=100)
    target_id: str = Field(max_length=100)
    message_id: str = Field(max_length=100)
    detail: str = Field(default="", max_length=100)
    weight: float = 1.0
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class JobClaim(SQLModel, table=True):
    """One row per scheduled run: claimed before acting, so each run happens once."""

    __tablename__ = "job_claim"
    __table_args__ = (UniqueConstraint("job", "community_id", "period", name="uq_job_claim"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=100)
    community_id: str = Field(max_length=200)
    period: str = Field(max_length=100)
    status: str = Field(default="running", max_length=20)
    claimed_by: str = Field(default="", max_length=100)
    claimed_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class SentMessage(SQLModel, table=True):
    """Ledger of outbound messages with a dedupe key: a key is sent at most once."""

    __tablename__ = "sent_message"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_sent_key"),)
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=300)
    community_id: str = Field(default="", max_length=200)
    member_id: str | None = Field(default=None, max_length=100)
    status: str = Field(default="claimed", max_length=20)
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class MemberPref(SQLModel, table=True):
    """Per-member settings with registered defaults in the cogs (nudges, mirror, goal...)."""

    __tablename__ = "member_pref"
    __table_args__ = (UniqueConstraint("community_id", "member_id", "key", name="uq_member_pref"),)
    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=200)
    member_id: str = Field(max_length=100)
    key: str = Field(max_length=50)
    value: str = ""


#: (table, column, action) for every column that may hold a member id. Erasure (``forgetme``)
#: walks this list: "delete" removes the row, "null" clears a reference in someone else's row
#: (a peer's reply to the erased member stays theirs). Feature modules append their own tables;
#: a test checks the whole schema against the list.
MEMBER_COLUMNS: list[tuple[str, str, str]] = [
    ("member", "member_id", "delete"),
    ("contribution", "member_id", "delete"),
    ("contribution", "reply_to_member_id", "null"),
    ("edge", "source_id", "delete"),
    ("edge", "target_id", "delete"),
    ("sent_message", "member_id", "delete"),
    ("member_pref", "member_id", "delete"),
]
