"""Table-driven tests for the contribution classifier (bot/classify.py)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.classify import KINDS, Classification, classify, kinds_from_mask, mask_of

# Structural situations, as the adapters report them.
TOP = {}  # a new top-level post
TOP_MENTION = {"mentions_other": True}  # a new post that @-mentions another member
TOP_FILE = {"has_attachments": True}  # a new post with an attachment
REPLY = {"is_reply": True, "replies_to_other": True}  # a reply to another member's message
REPLY_FILE = {"is_reply": True, "replies_to_other": True, "has_attachments": True}
SELF_REPLY = {"is_reply": True}  # a reply to one's own message
IN_THREAD = {"in_thread": True}  # a follow-up inside a thread, not a reply to anyone


def run(text: str | None, situation: dict[str, bool]) -> Classification:
    flags = {
        "is_reply": False,
        "replies_to_other": False,
        "mentions_other": False,
        "has_attachments": False,
        "in_thread": False,
    }
    flags.update(situation)
    return classify(text, **flags)


# (text, situation, expected kinds)
CASES = [
    # ---- ideas: plain statements, and negatives for question/support/reference -----------
    (
        "Just finished the Wenger reading. The idea that identity is shaped by participation "
        "really stuck with me.",
        TOP,
        {"idea"},
    ),
    (
        "My takeaway from week 2: feedback only works when learners actually act on it.",
        TOP,
        {"idea"},
    ),
    (
        "When I read the case study I kept thinking about my own first job in retail.",
        TOP,
        {"idea"},
    ),
    ("What I found most useful was the section on scaffolding.", TOP, {"idea"}),
    ("Do this first: skim the abstract, then read the conclusion.", TOP, {"idea"}),
    ("Have a look at chapter 3 before Thursday's session.", TOP, {"idea"}),
    (
        "I read chapter 2, which is about formative feedback, twice this week.",
        TOP,
        {"idea"},
    ),
    ("Which is why I think peer review needs a clear rubric.", TOP, {"idea"}),
    (
        "Posting my draft outline for assignment 1 here so I don't lose it",
        TOP_FILE,
        {"idea", "reference"},
    ),
    # ---- questions ----------------------------------------------------------------------
    (
        "Does anyone know if the week 4 essay has a word limit",
        TOP,
        {"idea", "question"},
    ),
    ("Hi all, is there a template for the reflective journal?", TOP, {"idea", "question"}),
    (
        "Quick question about the rubric - do citations count toward the 1500 words",
        TOP,
        {"idea", "question"},
    ),
    (
        "Can someone explain the difference between formative and summative assessment",
        TOP,
        {"idea", "question"},
    ),
    (
        "I wonder whether Freire would see MOOCs as banking education.",
        TOP,
        {"idea", "question"},
    ),
    (
        "Why does the author dismiss self-report surveys so quickly",
        TOP,
        {"idea", "question"},
    ),
    (
        "Any tips for keeping up with the readings while working full time",
        TOP,
        {"idea", "question"},
    ),
    (
        "How do I submit the peer review? The link on Moodle is broken.",
        TOP,
        {"idea", "question"},
    ),
    (
        "Struggling with the stats module, I really need help with the chi-square part",
        TOP,
        {"idea", "question"},
    ),
    (
        "Is it ok if I post my essay a day late? My daughter is sick.",
        TOP,
        {"idea", "question"},
    ),
    (
        "Am I the only one who found the Kolb chapter hard going",
        TOP,
        {"idea", "question"},
    ),
    (
        "What's the difference between a learning outcome and an objective",
        TOP,
        {"idea", "question"},
    ),
    ("So, how are people finding the pace so far", TOP, {"idea", "question"}),
    ("Who else is doing the optional reading", TOP, {"idea", "question"}),
    (
        "I submitted at 23:59 - does that count as on time",
        TOP,
        {"idea", "question"},
    ),
    (
        "<@4821> could you share the slides from Tuesday",
        TOP_MENTION,
        {"idea", "builds_on", "question"},
    ),
    (
        "Did you see https://example.edu/syllabus?week=4",
        TOP,
        {"idea", "question", "reference"},
    ),
    # "?" only inside a URL query string, a code span or a quoted line is not a question.
    (
        "Here is the reading list: "
        "https://library.example.edu/search?q=communities+of+practice&sort=date",
        TOP,
        {"idea", "reference"},
    ),
    (
        "Fixed it, the bug was this line: `x = y if y else None  # why?`",
        TOP,
        {"idea"},
    ),
    (
        "> Why did they only sample 30 students?\n"
        "Because it was a pilot, they say so in the limitations section.",
        REPLY,
        {"builds_on"},
    ),
    (
        "I don't need help with this one, I just wanted to share my notes.",
        TOP,
        {"idea"},
    ),
    # ---- support ------------------------------------------------------------------------
    (
        "Thanks so much, that really helped me understand the rubric!",
        REPLY,
        {"builds_on", "support"},
    ),
    (
        "Great point about power dynamics in peer feedback.",
        REPLY,
        {"builds_on", "support"},
    ),
    (
        "You've got this, the first essay is always the hardest 💪",
        REPLY,
        {"builds_on", "support"},
    ),
    (
        "Congrats to everyone who submitted the first assignment 🎉",
        TOP,
        {"idea", "support"},
    ),
    ("thx, that's exactly what I needed", REPLY, {"builds_on", "support"}),
    (
        "+1, I had the same issue with the quiz timer",
        REPLY,
        {"builds_on", "support"},
    ),
    ("🙏🙏", REPLY, {"builds_on", "support"}),
    (
        "Big thanks to <@7710> for organising the study session",
        TOP_MENTION,
        {"idea", "builds_on", "support"},
    ),
    (
        "Welcome to the cohort, Priya! Glad to have you here.",
        REPLY,
        {"builds_on", "support"},
    ),
    (
        "Sorry to hear about your laptop, hang in there.",
        REPLY,
        {"builds_on", "support"},
    ),
    ("Good luck with the presentation tomorrow", REPLY, {"builds_on", "support"}),
    (
        "I appreciate the way you framed the counterargument.",
        REPLY,
        {"builds_on", "support"},
    ),
    ("ok ty, will do", REPLY, {"builds_on", "support"}),
    ("You’ve got this!! one more week", REPLY, {"builds_on", "support"}),
    (
        "Here are my notes from the session, in case it helps",
        REPLY_FILE,
        {"builds_on", "reference", "support"},
    ),
    (
        "Good morning everyone! Reminder that the quiz closes at midnight.",
        TOP,
        {"idea"},
    ),
    ("Submitted! :tada: :raised_hands:", TOP, {"idea", "support"}),
    (
        "Hope this helps: I summarised the key terms in the attached PDF.",
        REPLY_FILE,
        {"builds_on", "reference", "support"},
    ),
    # Not support: words that merely contain a trigger, negations, causal "thanks to".
    (
        "Happy Thanksgiving to those celebrating! No session on Thursday.",
        TOP,
        {"idea"},
    ),
    (
        "Honestly the video was unhelpful, it skipped the worked examples.",
        TOP,
        {"idea"},
    ),
    ("Thanks to the server outage I lost my whole draft", TOP, {"idea"}),
    (
        "It's not a good idea to leave the group project to the last week.",
        TOP,
        {"idea"},
    ),
    ("The typical response rate for these surveys is low.", TOP, {"idea"}),
    ("With n+1 participants the estimate barely changes.", TOP, {"idea"}),
    ("The slides were not helpful for the exam prep at all.", TOP, {"idea"}),
    # ---- references -----------------------------------------------------------------------
    (
        "As Lave and Wenger (1991) put it, learning is legitimate peripheral participation.",
        TOP,
        {"idea", "reference"},
    ),
    (
        "Feedback works best when it is specific and timely (Hattie & Timperley, 2007).",
        TOP,
        {"idea", "reference"},
    ),
    (
        "There is decent evidence for this (Kizilcec et al., 2014; Zhang 2017).",
        TOP,
        {"idea", "reference"},
    ),
    (
        "Vygotsky's (1978) zone of proximal development fits our mentoring scheme.",
        TOP,
        {"idea", "reference"},
    ),
    ("Freire (1970, p. 72) calls this the banking model.", TOP, {"idea", "reference"}),
    ("Smith et al. (2019a) replicated it with adult learners.", TOP, {"idea", "reference"}),
    ("see Brown et al. 2014 for the retrieval-practice results", REPLY, {"builds_on", "reference"}),
    ("Slides: HTTPS://Uni.Example.edu/Week3.pdf", TOP, {"idea", "reference"}),
    ("(O'Neil, 2018) makes the same argument about metrics.", TOP, {"idea", "reference"}),
    (
        "Our placement policy follows the guidance (WHO, 2021).",
        TOP,
        {"idea", "reference"},
    ),
    (
        "Here's the paper I mentioned: doi:10.1080/00461520.2016.1155920",
        REPLY,
        {"builds_on", "reference"},
    ),
    (
        "The DOI is 10.3102/003465430298487 if anyone wants it",
        TOP,
        {"idea", "reference"},
    ),
    (
        "Found a clear overview at www.learning-theories.com/situated-learning",
        TOP,
        {"idea", "reference"},
    ),
    (
        "Discussed in [this paper](https://doi.org/10.1007/s11251-019-09495-0), section 4",
        TOP,
        {"idea", "reference"},
    ),
    # Not references: times, versions, plain years, dates, page ranges, decades.
    (
        "Let's meet at 10:30 to go through the feedback (see 2020 plan).",
        TOP,
        {"idea"},
    ),
    ("I upgraded to Python 3.11 and the notebook runs fine now.", TOP, {"idea"}),
    ("The course first ran (2020) with only 12 learners.", TOP, {"idea"}),
    ("Our pilot started in March (2020) with two tutors.", TOP, {"idea"}),
    ("Deadline extended (March 2020 cohort only).", TOP, {"idea"}),
    ("Spring (2021) was our first fully online term.", TOP, {"idea"}),
    (
        "Distance learning is not new (1920s correspondence courses did this).",
        TOP,
        {"idea"},
    ),
    ("Chapter 4 (pp. 20-45) is the key one this week", TOP, {"idea"}),
    ("in 2020 we moved everything to Zoom overnight", TOP, {"idea"}),
    # ---- builds_on ------------------------------------------------------------------------
    (
        "&gt; the rubric is too vague\nagreed, <@U024BE7LH> made the same argument last week",
        TOP_MENTION,
        {"idea", "builds_on"},
    ),
    (
        "> learners need a sense of belonging\nThis matches what I saw in my own cohort.",
        TOP,
        {"idea", "builds_on"},
    ),
    ("Also forgot to add: the deadline is Friday.", SELF_REPLY, set()),
    (
        "Adding one more thought: criteria should be shared up front.",
        IN_THREAD,
        set(),
    ),
    ("Scores went from 60 -> 75 after the feedback round", TOP, {"idea"}),
    ("&gt; feedback should be fast\nI'd say accurate first", TOP, {"idea", "builds_on"}),
    ("Www.coursera.org has a free version of this module", TOP, {"idea", "reference"}),
    (
        ">>> Is feedback without grades taken seriously?\n"
        "In my cohort it was, once we explained why.",
        TOP,
        {"idea", "builds_on"},
    ),
    ("```\n> not a quote, just a shell prompt\n```", TOP, {"idea"}),
    # ---- mixed ------------------------------------------------------------------------------
    (
        "> Does the rubric penalise late work?\n"
        "Yes, 10% per day (see the handbook: https://uni.example.edu/handbook). "
        "Hope that helps!",
        REPLY,
        {"builds_on", "reference", "support"},
    ),
    (
        "```python\nimport requests\nr = requests.get('https://api.example.com/data')\n```\n"
        "why does this return 403",
        TOP,
        {"idea", "reference", "question"},
    ),
    (
        "Thanks Maria! Does anyone have the Hattie (2009) meta-analysis as a PDF?",
        REPLY,
        {"builds_on", "support", "question", "reference"},
    ),
    ("Thanks! شكرا جزيلا", REPLY, {"builds_on", "support"}),
    ("<:pepe_thanks:123456789> see you Thursday", TOP, {"idea"}),
]


def _case_id(text: str) -> str:
    return text[:40].replace("\n", " ")


@pytest.mark.parametrize(
    ("text", "situation", "expected"),
    [pytest.param(*case, id=_case_id(case[0])) for case in CASES],
)
def test_kinds(text: str, situation: dict[str, bool], expected: set[str]) -> None:
    result = run(text, situation)
    assert result.kinds == frozenset(expected)
    assert result.has_reference == ("reference" in expected)
    assert result.has_question == ("question" in expected)


def test_table_is_large_and_covers_every_kind_both_ways() -> None:
    assert len(CASES) >= 60
    for kind in KINDS:
        assert any(kind in expected for _, _, expected in CASES), kind
        assert any(kind not in expected for _, _, expected in CASES), kind


# ---- bitmask --------------------------------------------------------------------------------


def test_mask_bits_follow_kinds_order() -> None:
    for i, kind in enumerate(KINDS):
        assert mask_of([kind]) == 1 << i
        assert kinds_from_mask(1 << i) == frozenset({kind})
    assert mask_of(KINDS) == 0b11111
    assert mask_of([]) == 0
    assert kinds_from_mask(0) == frozenset()


def test_mask_round_trip_for_every_combination() -> None:
    for mask in range(1 << len(KINDS)):
        kinds = kinds_from_mask(mask)
        assert mask_of(kinds) == mask
        assert Classification(kinds, 0, False, False).mask == mask


def test_classification_mask_matches_kinds() -> None:
    result = run("Thanks! Does anyone have the link? https://example.org", REPLY)
    assert result.kinds == {"builds_on", "reference", "question", "support"}
    assert result.mask == mask_of(result.kinds)
    assert kinds_from_mask(result.mask) == result.kinds


def test_mask_errors_and_unknown_bits() -> None:
    with pytest.raises(ValueError):
        mask_of(["idea", "bogus"])
    with pytest.raises(ValueError):
        kinds_from_mask(-1)
    # Bits for kinds this version does not know are ignored.
    assert kinds_from_mask((1 << 7) | 1) == frozenset({"idea"})


def test_classification_is_frozen() -> None:
    result = run("hello", TOP)
    with pytest.raises(AttributeError):
        result.word_count = 3  # type: ignore[misc]


# ---- withheld text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("situation", "expected"),
    [
        (TOP, {"idea"}),
        (TOP_FILE, {"idea", "reference"}),
        (TOP_MENTION, {"idea", "builds_on"}),
        (REPLY, {"builds_on"}),
        (REPLY_FILE, {"builds_on", "reference"}),
        (SELF_REPLY, set()),
        (IN_THREAD, set()),
    ],
)
@pytest.mark.parametrize("text", [None, ""])
def test_withheld_text_gives_structural_kinds_only(
    text: str | None, situation: dict[str, bool], expected: set[str]
) -> None:
    result = run(text, situation)
    assert result.kinds == frozenset(expected)
    assert result.word_count == 0
    assert result.has_question is False
    assert result.has_reference == situation.get("has_attachments", False)


# ---- word counts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("I really liked this week's reading", 6),
        ("Don't over-think it: read ch. 3 first.", 7),  # don't, over-think: one word each
        ("See https://example.com/a?b=c for details", 4),  # the URL is one word
        ("www.example.org and https://x.org/y", 3),
        ("Run `pip install pandas` first", 5),  # code words count
        ("```python\nprint('hello world')\n```", 4),
        ("🎉🎉🙏", 0),  # emoji only
        ("<@123456> thanks!", 1),  # mentions are not words
        ("<@U024BE7LH|sam> <#C1|general> <!here> ok", 1),
        ("@sam thanks", 1),
        ("Submitted :tada: <:party:123456>", 1),  # shortcodes and custom emoji
        ("> a quoted line\nmy reply", 2),  # quoted words are not the member's own
        ("Python 3.11 vs 3.12", 4),
        ("Q&amp;A session", 3),  # Slack escapes are not words
        ("我喜欢这个课程", 1),  # no spaces: one run, one word
        ("مرحبا بالجميع شكرا", 3),
        ("   \n\t  ", 0),
    ],
)
def test_word_count(text: str, words: int) -> None:
    assert run(text, TOP).word_count == words


# ---- robustness and speed -------------------------------------------------------------------

PATHOLOGICAL_UNITS = [
    "a",
    "\n",
    "(",
    "`",
    "?",
    ". ",
    "hi, ",
    "so ",
    "> ",
    "&gt; ",
    "(Smith ",
    "Smith et al ",
    "Smith (2020 ",
    "n.d.",
    "http://",
    "www.",
    "10.1234/",
    "doi:",
    "isbn 1",
    "<@",
    ":a",
    "@",
    "thanks to ",
    "good ",
    "how do ",
    "\x00\x07\x1b",
    "\u202eمرحبا ",
    "🙏",
    "\ud800",
]


@pytest.mark.parametrize("unit", PATHOLOGICAL_UNITS, ids=repr)
def test_long_input_is_fast(unit: str) -> None:
    text = (unit * (100_000 // len(unit) + 1))[:100_000]
    start = time.perf_counter()
    result = run(text, REPLY)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f}s for {unit!r} * 100k"
    assert result.word_count >= 0


def test_long_realistic_message() -> None:
    text = (
        "Building on Sam's point (Lave & Wenger, 1991), does anyone have notes? "
        "See https://example.org/a?b=1 and `code?` thanks 🙏\n"
    ) * 1000
    start = time.perf_counter()
    result = run(text, REPLY)
    assert time.perf_counter() - start < 1.0
    assert result.kinds == {"builds_on", "reference", "question", "support"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_any_text_is_classified(
    text: str, is_reply: bool, to_other: bool, mention: bool, attachment: bool
) -> None:
    result = classify(
        text,
        is_reply=is_reply,
        replies_to_other=to_other,
        mentions_other=mention,
        has_attachments=attachment,
    )
    assert result.kinds <= frozenset(KINDS)
    assert result.word_count >= 0
    assert ("idea" in result.kinds) == (not is_reply)
    if to_other or mention:
        assert "builds_on" in result.kinds
    if attachment:
        assert result.has_reference


_MARKUP_PIECES = st.sampled_from(
    [
        "<@123>",
        "<#C1|general chat>",
        "<!here>",
        "<a:wave:123>",
        "<t:1700000000:R>",
        "@sam",
        "a@b",
        ":tada:",
        ":+1:",
        "&amp;",
        "&gt;",
        "&",
        ":",
        "Note: ",
        " & ",
        "<",
        "@",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), _MARKUP_PIECES), max_size=8).map("".join))
def test_markup_is_only_skipped_when_there_is_none_to_remove(text):
    """classify skips the markup substitution unless a sign of markup is in the text; the
    substitution would have found nothing whenever it is skipped."""
    from bot.classify import _MARKUP_RE, _may_hold_markup

    if not _may_hold_markup(text, text.count(":") > 1):
        assert _MARKUP_RE.search(text) is None, text


def test_prose_with_a_colon_or_an_ampersand_counts_its_words_as_before():
    result = run("Note: Smith & Jones disagree &amp; so do I :tada:", {})
    # "Note", "Smith", "Jones", "disagree", "so", "do", "I": the entity and shortcode are
    # markup, the lone "&" and ":" are not words.
    assert result.word_count == 7
    assert "support" in result.kinds  # :tada:
    assert run("Note: Smith & Jones disagree", {}).word_count == 4
