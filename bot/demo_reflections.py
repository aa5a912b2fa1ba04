"""The reflections and summaries chapter of ``hearth demo``.

While the scripted course runs, one learner (amara) switches on her weekly mirror and sets a
goal, and six learners answer the week-1 reflection prompt in its thread; the facilitator
answers one of them. The scheduler does the rest on the simulated clock: the prompt on Monday,
the reminder to the others at 80% of the window, Friday's cohort summary, facilitator report
and mirror. At the end the chapter lets the clock run to the prompt's close (the facilitator's
reply queue), prints each of those messages, and writes the gradebook export
``hearth-export.csv`` next to the demo database.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.adapters.console import Sent
from bot.export import export_csv, export_rows

if TYPE_CHECKING:
    from bot.demo import Demo

log = logging.getLogger(__name__)

EXPORT_NAME = "hearth-export.csv"
MIRROR_LEARNER = "amara"
ANSWERS = {
    7: [
        (
            "amara",
            "My idea: spacing beats cramming, because forgetting a little makes the "
            "next recall stronger. I saw it in my flashcards this week.",
        ),
        ("ben", "Retrieval practice, in my words: testing yourself is studying, not checking."),
        ("chen", "Feedback loops: small, fast corrections beat one big grade at the end."),
    ],
    8: [
        ("dina", "For me it was cognitive load: our first project overloaded working memory."),
        ("eli", "Motivation is social: I study more when I know someone reads my notes."),
        ("fatima", "Interleaving topics felt slower but I remembered more a week later."),
    ],
}


class ReflectionsChapter:
    title = "Reflection prompts, weekly summaries and the learner mirror"

    async def during(self, demo: Demo, day: int) -> None:
        s = demo.session
        if day == 0:
            await s.command(MIRROR_LEARNER, "/course mirror on")
            await s.command(MIRROR_LEARNER, "/course goal answer two classmates' questions a week")
        if day not in ANSWERS:
            return
        prompt = await _reflections(demo).current_prompt(s.community_id)
        if prompt is None or prompt["week"] != 1 or not prompt["thread_id"]:
            log.warning("demo: no open week-1 prompt on day %s", day)
            return
        for name, text in ANSWERS[day]:
            message_id = await s.say(name, text, thread=prompt["thread_id"])
            demo.message_ids.setdefault("reflections", []).append(message_id)
        if day == 8:
            # The facilitator closes the loop on one answer; the others stay in the queue.
            first = demo.message_ids["reflections"][0]
            await s.say(
                "prof_lee",
                "Lovely example, amara: can you say how you space your cards?",
                thread=prompt["thread_id"],
                reply_to=first,
            )

    async def report(self, demo: Demo) -> None:
        s = demo.session
        app = demo.app
        console = demo.console
        week1 = next(
            (p for p in await _reflections(demo).repo.prompts(s.community_id) if p["week"] == 1),
            None,
        )
        if week1 is not None and week1["closes_at"] > app.clock.now():
            # Let the course run on to the week-1 prompt's close: the reply queue goes out.
            await s.advance(week1["closes_at"] + timedelta(minutes=20) - app.clock.now())

        def show(heading: str, sent: Sent | None, note: str = "") -> None:
            console.print(f"[bold]{heading}[/bold]" + (f" [dim]{note}[/dim]" if note else ""))
            if sent is None:
                console.print("(none)\n")
                return
            console.print(f"-> {sent.kind} to {sent.to}", style="dim")
            console.print(sent.text + "\n", markup=False, highlight=False)

        outbox = s.outbox
        prompt = (
            next(
                (
                    x
                    for x in outbox
                    if x.kind == "post" and x.action.tag == f"reflection:{week1['id']}"
                ),
                None,
            )
            if week1
            else None
        )
        show("The week-1 prompt", prompt, "posted Monday 09:00 Europe/London in #reflections")
        marker = f":{week1['id']}:remind:" if week1 else ":remind:"
        reminders = [x for x in outbox if x.kind == "dm" and marker in _key(x)]
        show(
            "A reminder",
            reminders[0] if reminders else None,
            f"{len(reminders)} sent, only to learners who had not answered",
        )
        closes = [x for x in outbox if x.kind == "dm" and ":closed:" in _key(x)]
        show("The reply queue, at close", closes[-1] if closes else None, "private to prof_lee")
        summaries = [x for x in outbox if x.kind == "post" and _key(x).startswith("summary:")]
        show("The cohort summary", summaries[-1] if summaries else None, "Friday, #general")
        reports = [x for x in outbox if x.kind == "dm" and ":report:" in _key(x)]
        show("The facilitator report", reports[-1] if reports else None, "private, CSV attached")
        mirrors = [x for x in outbox if x.kind == "dm" and _key(x).startswith("mirror:")]
        show(f"{MIRROR_LEARNER}'s mirror", mirrors[-1] if mirrors else None, "opt-in, private")
        path = demo.out_dir / EXPORT_NAME
        community = await app.store.get_community(s.community_id)
        tz = community["timezone"]
        rows = await export_rows(
            app.store,
            s.community_id,
            first=demo.start.astimezone(_zone(tz)).date(),
            last=app.clock.now().astimezone(_zone(tz)).date(),
            timezone=tz,
            facilitators=set(app.settings.course.facilitator_ids),
        )
        text = export_csv(rows)
        await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        console.print(f"Gradebook export ({len(rows)} learners) written to [bold]{path}[/bold].")
        demo.notes.append(f"Gradebook export: {path}")


def _key(sent: Sent) -> str:
    return sent.action.dedupe_key or ""


def _zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


def _reflections(demo: Demo):
    return next(c for c in demo.app.engine.cogs if c.name == "reflections")
