"""Benchmark: how fast the Slack adapter acknowledges slash commands over HTTP.

Slack shows the user an error if a slash command is not acknowledged within 3 seconds, so the
adapter acknowledges before it runs anything. This measures that promise end to end on
loopback: the real adapter (slack-bolt AsyncApp behind aiohttp, signature verification on) in
front of a real HearthApp on a temporary SQLite file, with the mock Web API standing in for
Slack. A client signs and POSTs N ``/course me`` commands one after another on a keep-alive
connection and times each request until the acknowledgement (HTTP 200) arrives. Each command
still runs in full in the background and answers through its ``response_url`` (on the mock),
so the acknowledgements compete with real work, as in production.

    .venv/bin/python bench/slack_ack.py            # 1,000 commands
    .venv/bin/python bench/slack_ack.py -n 5000 --concurrency 10
    .venv/bin/python bench/slack_ack.py --rate 50  # commands arrive 50/s instead of back to back

By default each command is sent as soon as the previous one is acknowledged, so every
acknowledgement queues behind the previous command's work on the event loop: a worst case.

Prints p50/p90/p99/max acknowledgement latency and how many commands were answered.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.adapters.slack_adapter import build_slack_adapter  # noqa: E402
from bot.app import HearthApp  # noqa: E402
from bot.config import Settings  # noqa: E402
from tests.emulators.slack_server import (  # noqa: E402
    TEAM_ID,
    SlackWebAPI,
    sign_request,
    slash_command_form,
)

SECRET = "bench-signing-secret"
WARM_UP = 20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def run(n: int, concurrency: int, rate: float | None) -> None:
    os.environ["HEARTH_SLACK_BOT_TOKEN"] = "xoxb-bench-token"
    os.environ["HEARTH_SLACK_SIGNING_SECRET"] = SECRET
    api = await SlackWebAPI().start()
    api.add_user("U1", "ana", real_name="Ana Lima")
    api.add_channel("C1", "general")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate(
            {
                "storage": {"path": str(Path(tmp) / "bench.db")},
                "slack": {"enabled": True, "api_base_url": api.base_url, "port": 0},
            }
        )
        app = await HearthApp.create(settings, migrate=False)
        adapter = build_slack_adapter(app)
        app.add_adapter(adapter)
        await adapter.start()
        assert adapter.url is not None
        latencies: list[float] = []
        counter = iter(range(WARM_UP + n))

        async def client(session: aiohttp.ClientSession) -> None:
            for i in counter:
                if rate:
                    # Open loop: commands arrive on a schedule, not as soon as the last ack.
                    await asyncio.sleep(concurrency / rate)
                form = slash_command_form(
                    "/course", "me", "U1", "C1", TEAM_ID, api.response_url(f"r{i}"), f"trig-{i}"
                )
                headers = sign_request(SECRET, form)
                started = time.perf_counter()
                async with session.post(adapter.url, data=form, headers=headers) as response:
                    await response.read()
                elapsed = time.perf_counter() - started
                if response.status != 200:
                    raise RuntimeError(f"command {i} answered {response.status}")
                if i >= WARM_UP:  # the first requests pay for bolt's auth.test and caches
                    latencies.append(elapsed)

        wall = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - wall
        await adapter.drain()
        answered = len({name for name, _ in api.responses})
        await app.close()
    await api.stop()

    ms = [x * 1000 for x in latencies]
    print(f"Slack slash command acknowledgement latency, {len(ms)} commands over HTTP on loopback")
    print(
        f"  Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"concurrency {concurrency}, {WARM_UP} warm-up requests not counted, "
        + (f"paced at {rate:g} commands/s" if rate else "each sent as soon as the last was acked")
    )
    print(
        f"  p50 {percentile(ms, 50):.2f} ms   p90 {percentile(ms, 90):.2f} ms   "
        f"p99 {percentile(ms, 99):.2f} ms   max {max(ms):.2f} ms   "
        f"mean {statistics.mean(ms):.2f} ms"
    )
    print(f"  Slack's deadline is 3000 ms: p99 uses {percentile(ms, 99) / 3000:.2%} of it")
    print(f"  {n / wall:.0f} commands/s sent; {answered} of {WARM_UP + n} answered in full")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="commands to time (default 1000)")
    parser.add_argument("--concurrency", type=int, default=1, help="parallel clients")
    parser.add_argument(
        "--rate", type=float, default=None, help="pace commands at this many per second"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.n, args.concurrency, args.rate))


if __name__ == "__main__":
    main()
