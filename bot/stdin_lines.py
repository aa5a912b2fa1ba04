"""Lines from stdin, awaited on the event loop (``hearth run`` and ``hearth console``).

The loop watches stdin's file descriptor (a terminal or a pipe) and reads only what is
already there, so no thread is ever blocked in a read. A blocked thread kept the process
from stopping: ``asyncio.to_thread``'s worker was waited for by ``asyncio.run`` at exit, so
SIGTERM with stdin still open (a supervisor's pipe, a terminal) hung until the process was
killed, and a daemon thread blocked in ``sys.stdin`` aborted the interpreter at exit
("could not acquire lock for <stdin>"). A regular file, which the loop cannot watch, is
read in a worker thread: reading a file never waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TextIO

#: Lines read ahead before reading pauses until the bot has handled some of them.
READ_AHEAD = 256
#: Bytes a line may hold; the rest of a longer one is dropped (with a warning), so that input
#: with no newline cannot grow the process without bound.
MAX_LINE = 256 * 1024

log = logging.getLogger(__name__)


class StdinLines:
    """``await lines.readline()`` as on a file: a line with its newline, "" at the end."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = sys.stdin if stream is None else stream
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._partial = b""
        self._fd: int | None = None
        self._watched = False  # the loop is watching the descriptor now
        self._threaded = False  # a regular file: read in a worker thread
        self._ended = False

    async def readline(self) -> str:
        """The next line with its newline; "" at the end of input."""
        if self._fd is None and not self._threaded:
            self._start()
        if self._threaded:
            return await asyncio.to_thread(self.stream.readline)
        if self._ended and self._lines.empty():
            return ""
        line = await self._lines.get()
        if not self._watched and not self._ended and self._lines.qsize() < READ_AHEAD // 4:
            self._watch()
        return line

    def close(self) -> None:
        if self._watched:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._watched = False

    def _start(self) -> None:
        if self.stream is None or self.stream.closed:  # no stdin at all: at its end
            self._fd, self._ended = -1, True
            return
        try:
            self._fd = self.stream.fileno()
            self._watch()
        except (OSError, ValueError, NotImplementedError):
            # PermissionError from epoll for a regular file; no descriptor at all for an
            # in-memory stream.
            self._fd, self._threaded = None, True

    def _watch(self) -> None:
        assert self._fd is not None
        asyncio.get_running_loop().add_reader(self._fd, self._readable)
        self._watched = True

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)  # type: ignore[arg-type]
        except BlockingIOError:  # another reader of a shared descriptor was first
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            self._ended = True
            if self._partial:
                self._put(self._partial, b"")
                self._partial = b""
            self._lines.put_nowait("")
            return
        *complete, rest = data.split(b"\n")
        for piece in complete:
            self._put(self._partial + piece, b"\n")
            self._partial = b""
        # Only what a line may hold is kept, and one byte more to tell that it was longer.
        self._partial = (self._partial + rest)[: MAX_LINE + 1]
        if self._lines.qsize() >= READ_AHEAD:
            self.close()

    def _put(self, raw: bytes, end: bytes) -> None:
        if len(raw) > MAX_LINE:
            log.warning("a line of input longer than %d bytes was cut to that length", MAX_LINE)
            raw = raw[:MAX_LINE]
        # Any bytes at all come in: undecodable ones become U+FFFD, never an exception.
        self._lines.put_nowait((raw + end).decode("utf-8", errors="replace"))
