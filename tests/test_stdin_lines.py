"""Reading stdin on the event loop: whole lines whatever the chunks, any bytes, a bounded
read-ahead, regular files, and no thread left blocked in a read (which kept `hearth run`
from stopping on SIGTERM while its stdin was open)."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from bot import stdin_lines
from bot.stdin_lines import StdinLines


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "r")
    yield reader, write_fd
    reader.close()
    try:
        os.close(write_fd)
    except OSError:
        pass


def _write_then_close(write_fd: int, *chunks: bytes) -> threading.Thread:
    """Write ``chunks`` to the pipe from a thread (a full pipe blocks the writer until the
    loop reads), then close it: the end of input."""

    def write() -> None:
        for chunk in chunks:
            os.write(write_fd, chunk)
        os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    return writer


async def test_lines_come_whole_whatever_the_chunks(pipe):
    reader, write_fd = pipe
    lines = StdinLines(reader)
    os.write(write_fd, b"hello wor")
    pending = asyncio.ensure_future(lines.readline())
    await asyncio.sleep(0.05)
    assert not pending.done()  # half a line is not a line
    os.write(write_fd, "ld\nsecond \xe9t\xe9 line\nlast, no newline".encode())
    assert await pending == "hello world\n"
    assert await lines.readline() == "second \xe9t\xe9 line\n"
    os.close(write_fd)
    assert await lines.readline() == "last, no newline"
    assert await lines.readline() == ""
    assert await lines.readline() == ""  # the end stays the end
    lines.close()


async def test_any_bytes_give_a_line_never_an_exception(pipe):
    reader, write_fd = pipe
    lines = StdinLines(reader)
    # Invalid UTF-8, a character split across two writes, control characters.
    os.write(write_fd, b"\xff\xfe bad \xe2\x82")
    await asyncio.sleep(0.01)
    os.write(write_fd, b"\xac euro \x00\x1b[31m\n")
    os.close(write_fd)
    assert await lines.readline() == "\ufffd\ufffd bad \u20ac euro \x00\x1b[31m\n"
    assert await lines.readline() == ""


async def test_read_ahead_pauses_and_resumes_in_order(pipe, monkeypatch):
    monkeypatch.setattr(stdin_lines, "READ_AHEAD", 8)
    reader, write_fd = pipe
    lines = StdinLines(reader)
    first = asyncio.ensure_future(lines.readline())
    writer = _write_then_close(write_fd, "".join(f"line {i}\n" for i in range(500)).encode())
    got = [await first]
    await asyncio.sleep(0.05)
    assert lines._lines.qsize() < 500  # paused: not everything was read ahead
    while line := await lines.readline():
        got.append(line)
    writer.join()
    assert got == [f"line {i}\n" for i in range(500)]


async def test_a_regular_file_is_read_too(tmp_path):
    path = tmp_path / "script.txt"
    path.write_text(":as alice\nhello\n")
    with path.open() as stream:
        lines = StdinLines(stream)
        assert [await lines.readline() for _ in range(3)] == [":as alice\n", "hello\n", ""]
        lines.close()


async def test_waiting_for_a_line_blocks_no_thread(pipe):
    reader, _write_fd = pipe
    lines = StdinLines(reader)
    before = threading.active_count()
    waiting = asyncio.ensure_future(lines.readline())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert threading.active_count() == before  # the loop watches the pipe; nobody reads
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    lines.close()


async def test_no_stdin_is_the_end_of_input(pipe):
    reader, _write_fd = pipe
    reader.close()
    lines = StdinLines(reader)
    assert await lines.readline() == ""
    assert await lines.readline() == ""


async def test_an_over_long_line_is_cut_and_memory_stays_bounded(pipe, monkeypatch, caplog):
    monkeypatch.setattr(stdin_lines, "MAX_LINE", 1000)
    reader, write_fd = pipe
    lines = StdinLines(reader)
    first = asyncio.ensure_future(lines.readline())
    # 500 KB with no newline, then the end of that line, one more and a long last one.
    writer = _write_then_close(write_fd, *[b"a" * 10_000] * 50, b"a\nnext line\n" + b"b" * 5000)
    await asyncio.sleep(0.1)
    assert len(lines._partial) <= 1001  # not the half megabyte written so far
    assert await first == "a" * 1000 + "\n"
    assert await lines.readline() == "next line\n"
    assert await lines.readline() == "b" * 1000  # the last line, cut too, at the end
    assert await lines.readline() == ""
    writer.join()
    assert caplog.text.count("longer than 1000 bytes was cut") == 2
