"""The full schema: every module that defines tables is imported here, once.

Feature modules add themselves to :data:`TABLE_MODULES`; migrations, ``create_all`` in tests and
the erasure check all go through :func:`metadata`.
"""

from __future__ import annotations

import importlib

from sqlmodel import SQLModel

TABLE_MODULES = [
    "storage.models",
    "storage.reflections_models",
    "storage.nudges_models",
    "storage.slack_install_models",
]


def metadata():
    """Import every table module and return the shared metadata."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return SQLModel.metadata


def member_columns() -> list[tuple[str, str, str]]:
    """Every (table, column, action) that can hold a member id, from all table modules."""
    columns: list[tuple[str, str, str]] = []
    for name in TABLE_MODULES:
        module = importlib.import_module(name)
        columns.extend(getattr(module, "MEMBER_COLUMNS", []))
    return columns
