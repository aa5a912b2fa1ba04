"""Dependency rules from DESIGN section 3, checked on the real import graph: the engine, the
cogs and the neutral types never import a platform library, the scheduler library or an
adapter; storage never imports bot."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "apscheduler", "bot.adapters")
CORE = [
    "bot.engine",
    "bot.events",
    "bot.actions",
    "bot.commands",
    "bot.jobs",
    "bot.policy",
    "bot.quiet",
    "bot.classify",
]


def cog_modules() -> list[str]:
    return [f"bot.cogs.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "bot" / "cogs")])]


def imported_by(module: str) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def offending(modules: list[str], forbidden) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden)]


def test_engine_cogs_and_types_import_no_platform_code():
    modules = CORE + cog_modules()
    assert len(cog_modules()) >= 3
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert offending(json.loads(out.stdout), FORBIDDEN) == []


def test_storage_imports_nothing_from_bot():
    storage_modules = ["storage." + m.name for m in pkgutil.iter_modules([str(ROOT / "storage")])]
    code = (
        "import importlib, json, sys\n"
        f"for m in {storage_modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert offending(json.loads(out.stdout), ("bot",)) == []


def test_the_check_itself_can_fail():
    # Guard against a vacuous test: the scheduler module does import APScheduler.
    assert offending(imported_by("bot.scheduler"), ("apscheduler",))


def test_no_module_is_named_after_a_dependency():
    names = {p.stem for p in ROOT.glob("bot/**/*.py")} | {
        p.stem for p in ROOT.glob("storage/**/*.py")
    }
    assert not names & {"discord", "slack_bolt", "slack_sdk", "logging", "sqlalchemy", "typer"}
