"""How often the interpreter passes the GIL between threads, for a bot whose database calls
run in threads of their own.

Every SQLite connection (aiosqlite) runs in a thread, and each of its calls needs the GIL
back when SQLite returns. While the event loop's thread runs Python, such a call waits up to
the switch interval for it: 5 ms by default. Ingesting 100,000 events, the writer's thread
waited 0.5-0.9 s in all that way; with 0.5 ms it waited 0.4-0.5 s, and ingest measured
21,800 against 20,300 events/s (the medians of five runs each, on 2 cores). With PostgreSQL
(asyncpg, no threads) nobody waits, and nothing changes.

While a flush runs in that thread the writer shortens the interval further, to 0.1 ms
(``storage.writer._quick_handoff``); not for good, because the weekly summary, whose threads
all run Python, measured slower with it.
"""

from __future__ import annotations

import sys

#: Seconds a thread may hold the GIL while another asks for it (Python's default: 0.005).
SWITCH_INTERVAL = 0.0005


def shorten_switch_interval() -> None:
    """Let database threads take the GIL back sooner (see the module's docstring)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
