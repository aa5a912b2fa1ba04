"""``hearth console``: a REPL over a :class:`~bot.adapters.console.ConsoleSession`.

Plain lines are messages from the current member; ``/course ...`` runs a command; lines
starting with ``:`` control the session (``:help`` lists them). The clock is simulated and
starts now, so ``:advance 3d`` runs the jobs that fall due, in order, with no waiting.
"""

from __future__ import annotations

import asyncio
import shlex
from datetime import UTC, datetime, timedelta

from bot.adapters.console import ConsoleSession
from bot.app import HearthApp
from bot.clock import FakeClock, parse_duration
from bot.config import Settings
from bot.stdin_lines import StdinLines

HELP = """\
Type a line to post it as the current member. Commands:
  /course <command> ...   run a Hearth command (try /course help)
  :as NAME                speak as NAME (created on first use)
  :join NAME [facilitator]  a member joins (optionally as facilitator)
  :reply ID TEXT          reply to message ID
  :thread ID TEXT         post TEXT in the thread started by message ID
  :react ID [EMOJI]       react to message ID
  :edit ID TEXT           edit message ID
  :delete ID              delete message ID
  :channel NAME           post in channel NAME from now on
  :press ACTION [VALUE]   press a button the bot offered
  :advance DURATION       move the clock (3d, 12h, 30m) and run due jobs
  :tick JOB [PERIOD]      run a scheduled job now (:jobs lists them); processes given
                          the same PERIOD share one run
  :jobs                   list scheduled jobs
  :now                    show the simulated time
  :quit                   leave (Ctrl-D works too)"""


#: The longest ``:advance`` step: a long course term.
MAX_ADVANCE = timedelta(days=120)


class Repl:
    def __init__(self, session: ConsoleSession) -> None:
        self.session = session
        self.current = "me"
        self.channel = "general"

    async def handle(self, line: str) -> str | None:
        """Run one line; returns text to show, or None to quit."""
        s = self.session
        line = line.strip()
        if not line:
            return ""
        if line.startswith("/"):
            await s.command(self.current, line, channel=self.channel)
            return ""
        if not line.startswith(":"):
            message_id = await s.say(self.current, line, channel=self.channel)
            return f"({self.current} #{self.channel} message {message_id})"
        try:
            words = shlex.split(line[1:])
        except ValueError:
            words = line[1:].split()
        if not words:
            return HELP
        cmd, args = words[0].lower(), words[1:]
        rest = line[1:].split(None, 2)
        try:
            if cmd in ("quit", "exit", "q"):
                return None
            if cmd == "help":
                return HELP
            if cmd == "as" and len(args) == 1:
                self.current = args[0].lstrip("@")
                s.member(self.current)
                return f"now speaking as {self.current}"
            if cmd == "join" and args:
                await s.join(args[0], facilitator=len(args) > 1 and args[1] == "facilitator")
                return f"{args[0]} joined"
            if cmd in ("reply", "thread") and len(rest) == 3:
                if cmd == "reply":
                    mid = await s.reply(self.current, rest[1], rest[2])
                else:
                    mid = await s.say(
                        self.current,
                        rest[2],
                        thread=rest[1],
                        channel=s.channel_of.get(rest[1], self.channel),
                    )
                # The channel it landed in: a reply goes where its parent is, not
                # necessarily the channel :channel last chose.
                return f"({self.current} #{s.channel_of.get(mid, self.channel)} message {mid})"
            if cmd == "react" and args:
                await s.react(self.current, args[0], args[1] if len(args) > 1 else "👍")
                return "reacted"
            if cmd == "edit" and len(rest) == 3:
                await s.edit(self.current, rest[1], rest[2])
                return "edited"
            if cmd == "delete" and len(args) == 1:
                await s.delete(args[0])
                return "deleted"
            if cmd == "channel" and len(args) == 1:
                self.channel = args[0].lstrip("#")
                return f"posting in #{self.channel}"
            if cmd == "press" and args:
                await s.press(self.current, args[0], args[1] if len(args) > 1 else "")
                return ""
            if cmd == "advance" and len(args) == 1:
                step = parse_duration(args[0])
                if step > MAX_ADVANCE:
                    # Every scheduled run in between is played, some 150 a day: a year would
                    # take minutes, and a typo of a few more digits, days.
                    limit = MAX_ADVANCE.days
                    return f"error: at most {limit}d at a time (every run in between is played)"
                ran = await s.advance(step)
                return f"now {s.now:%Y-%m-%d %H:%M} UTC; {ran} scheduled run(s)"
            if cmd == "tick" and len(args) in (1, 2):
                try:
                    sent = await s.tick(args[0], args[1] if len(args) == 2 else None)
                except KeyError:
                    return f"no job called {args[0]}; :jobs lists them"
                return f"ran {args[0]} ({len(sent)} message(s))"
            if cmd == "jobs":
                jobs = s.app.engine.jobs
                if not jobs:
                    return "no scheduled jobs"
                return "\n".join(
                    f"  {name}: {job.cron} - {job.description}"
                    for name, (_c, job) in sorted(jobs.items())
                )
            if cmd == "now":
                return f"{s.now:%Y-%m-%d %H:%M} UTC"
        except ValueError as exc:
            return f"error: {exc}"
        return f"unknown or incomplete command {line!r}; :help lists them"


async def attach_stdin_console(app: HearthApp) -> asyncio.Task:
    """``hearth run`` without platforms: read lines from stdin into a live console session."""
    session = await ConsoleSession.open(app, echo=lambda text: print(text, flush=True))
    repl = Repl(session)

    async def _read() -> None:
        lines = StdinLines()
        try:
            while True:
                line = await lines.readline()
                if not line:
                    return  # end of input: keep running until a signal stops the bot
                out = await repl.handle(line)
                if out:
                    print(out, flush=True)
        finally:
            lines.close()

    return asyncio.get_running_loop().create_task(_read(), name="hearth-stdin")


async def run_repl(settings: Settings, community: str | None) -> None:
    clock = FakeClock(datetime.now(UTC))
    app = await HearthApp.create(settings, clock=clock)
    session = await ConsoleSession.open(app, community_id=community, echo=print)
    await app.scheduler.start()
    repl = Repl(session)
    print(
        f"Hearth console on {settings.storage.url()} (community {session.community_id}). "
        ":help for help."
    )
    lines = StdinLines()
    try:
        while True:
            print(f"{repl.current}@#{repl.channel}> ", end="", flush=True)
            line = await lines.readline()
            if not line:  # end of input (Ctrl-D)
                print()
                break
            out = await repl.handle(line)
            if out is None:
                break
            if out:
                print(out)
    finally:
        lines.close()
        await app.close()
