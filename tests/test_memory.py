"""bot.memory: cyclic garbage collected after a job, glibc's per-thread heaps capped."""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

from bot import memory

ROOT = Path(__file__).resolve().parents[1]


def _needs_glibc() -> None:
    libc, _version = platform.libc_ver()
    if libc != "glibc":
        pytest.skip(f"needs glibc (malloc_trim, mallopt, malloc_info), not {libc or 'unknown'}")


def test_release_freed_memory_works_on_glibc():
    _needs_glibc()
    assert memory.release_freed_memory() is True


def test_release_freed_memory_collects_what_a_job_left_in_cycles():
    class Figure:  # a figure and its canvas point at each other, as matplotlib's do
        pass

    figure = Figure()
    figure.canvas = Figure()
    figure.canvas.figure = figure
    gone = weakref.ref(figure)
    gc.disable()  # no automatic collection may do it first
    try:
        del figure
        assert gone() is not None  # reference counting alone cannot free a cycle
        memory.release_freed_memory()  # a small job's: pages only
        assert gone() is not None
        memory.release_freed_memory(collect=True)  # a big job's
        assert gone() is None
    finally:
        gc.enable()


# Eight threads allocate at the same time; glibc's malloc_info lists the heaps they got.
HEAPS = textwrap.dedent(
    """
    import ctypes, ctypes.util, sys, tempfile, threading
    from bot.memory import limit_malloc_arenas
    if sys.argv[1] == "cap":
        assert limit_malloc_arenas()
    barrier = threading.Barrier(8)
    def work():
        blobs = [bytearray(100_000) for _ in range(20)]
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        fp = ctypes.c_void_p(libc.fopen(f.name.encode(), b"w"))
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        print(open(f.name).read().count("<heap nr="))
    """
)


def _heaps(mode: str, env: dict[str, str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", HEAPS, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(out.stdout.strip())


def test_threads_share_the_capped_heaps():
    _needs_glibc()
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _heaps("nocap", env) > memory.MALLOC_ARENAS  # glibc's default: one per thread
    assert _heaps("cap", env) <= memory.MALLOC_ARENAS


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch):
    _needs_glibc()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False  # glibc already applied theirs


async def test_the_app_collects_the_young_generation_less_often(tmp_path):
    from bot.app import HearthApp
    from tests.conftest import make_settings

    gc.set_threshold(700, 10, 10)  # Python's default
    app = await HearthApp.create(make_settings(tmp_path / "gc.db"))
    try:
        assert gc.get_threshold() == memory.GC_THRESHOLDS
    finally:
        await app.close()


async def test_the_app_lets_database_threads_take_the_gil_back_sooner(tmp_path):
    from bot import gil
    from bot.app import HearthApp
    from tests.conftest import make_settings

    sys.setswitchinterval(0.005)  # Python's default
    app = await HearthApp.create(make_settings(tmp_path / "gil.db"))
    try:
        assert sys.getswitchinterval() == pytest.approx(gil.SWITCH_INTERVAL)
    finally:
        await app.close()
