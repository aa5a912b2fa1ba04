"""Hand-built communities for the analytics and report tests, played through the console
session, where the right interaction pattern of every member is known in advance.

``course_with_known_patterns`` builds, in one community and within one week:

- ``bob`` broadcasts: three posts, each answered by a different learner, never answers back
  (one-to-many);
- ``pat`` and ``quinn`` only talk to each other, back and forth (one-to-one);
- ``lou`` posts twice and nobody answers (one-alone, isolated, unanswered posts);
- ``xa``, ``yb``, ``zc`` and ``wd`` all answer each other in one thread (many-to-many);
- ``ned`` joins and never posts (inactive, quiet state "new").

The facilitator ``fran`` (joined by the ``session`` fixture) stays out of it, so the
facilitator share is 0.
"""

from __future__ import annotations

from datetime import timedelta

from bot.adapters.console import ConsoleSession

BROADCAST_REPLIERS = ("al", "cy", "di")
LIVELY = ("xa", "yb", "zc", "wd")
MEMBERS = ("bob", *BROADCAST_REPLIERS, "pat", "quinn", "lou", *LIVELY, "ned")

EXPECTED_PATTERNS = {
    "bob": "one-to-many",
    "al": "one-to-one",
    "cy": "one-to-one",
    "di": "one-to-one",
    "pat": "one-to-one",
    "quinn": "one-to-one",
    "lou": "one-alone",
    "xa": "many-to-many",
    "yb": "many-to-many",
    "zc": "many-to-many",
    "wd": "many-to-many",
    "ned": "inactive",
}


def later(session: ConsoleSession, delta: timedelta) -> None:
    """Move the fake clock without running other capabilities' scheduled jobs: these tests
    are about what was recorded, not about nudges or summaries firing meanwhile."""
    session.app.clock.advance(delta)


async def course_with_known_patterns(session: ConsoleSession) -> dict[str, str]:
    """Play the scenario; returns the message ids of interest by name."""
    ids: dict[str, str] = {}
    for name in MEMBERS:
        await session.join(name)
    later(session, timedelta(minutes=5))
    for i, replier in enumerate(BROADCAST_REPLIERS):
        post = await session.say("bob", f"Idea {i}: interleaving beats blocking.")
        later(session, timedelta(minutes=20))
        await session.reply(replier, post, "Good point, I saw the same.")
        later(session, timedelta(minutes=10))
    opening = await session.say("pat", "Quinn, shall we compare notes on chapter 2?")
    ids["pair_opening"] = opening
    last = opening
    for speaker in ("quinn", "pat", "quinn"):
        later(session, timedelta(minutes=15))
        last = await session.reply(speaker, last, "Sure, here is what I have.")
    ids["lonely_1"] = await session.say("lou", "Has anyone tried mind maps for this module?")
    later(session, timedelta(hours=1))
    ids["lonely_2"] = await session.say("lou", "I made one for week 1, happy to share.")
    root = await session.say("xa", "Let's each say which reading changed our mind.")
    ids["lively_root"] = root
    # Everyone answers everyone else inside the thread: reciprocal exchanges all round.
    posts = {"xa": root}
    for speaker in LIVELY[1:]:
        later(session, timedelta(minutes=10))
        posts[speaker] = await session.say(
            speaker, f"Mine was chapter 3, @xa. {speaker} here.", thread=root
        )
    for speaker in LIVELY:
        for other in LIVELY:
            if other != speaker:
                later(session, timedelta(minutes=3))
                await session.reply(speaker, posts[other], f"@{other} good one, agreed.")
    later(session, timedelta(hours=25))  # lou's posts are now unanswered for over a day
    return ids
