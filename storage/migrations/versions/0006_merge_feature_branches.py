"""Merge the feature branches (nudges, reflections, Slack installations) into one head.

Each capability added its tables on a branch from the core schema; this empty revision joins
them, so the next migration has a single parent again.

Revision ID: 0006
Revises: 0003, 0004, 0005
"""

revision = "0006"
down_revision = ("0003", "0004", "0005")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
