r"""Classify one chat message into contribution kinds (pure, no I/O).

Hearth records every message as a *contribution* with one or more **kinds** and a word
count (DESIGN.md section 1). This module decides the kinds from the message text plus a few
structural facts that the platform adapter already knows. It is a transparent, English-only
heuristic, not a language model: facilitators should read the rules below to know what the
numbers mean, and expect some misses on unusual phrasing.

The kinds
=========

``idea``
    A new top-level post: the message is not a reply and is not a follow-up inside a thread
    (``is_reply=False and in_thread=False``). Decided from structure only.

``builds_on``
    The message engages with ANOTHER member: it replies to someone else's message
    (``replies_to_other``), mentions another member (``mentions_other``), or quotes text with a
    Markdown quote line (a line starting with ``> `` or Discord's ``>>> ``; Slack's escaped
    ``&gt; `` counts too). A reply to one's own message is not ``builds_on``. Quote lines
    inside code are ignored.

``reference``
    The message carries a source:

    * a URL: ``http://``, ``https://`` or ``www.`` (anywhere, even in code or a quote);
    * a DOI (``10.NNNN/...`` or ``doi:...``), an ``arXiv:NNNN.NNNNN`` id or an ``ISBN``;
    * an attachment (``has_attachments``);
    * an author-year citation, either parenthetical, e.g. "(Smith, 2020)",
      "(Smith & Jones, 2019)", "(see Smith et al., 2019; Lee 2020)", "(Smith 2020, p. 4)",
      "(WHO, 2021)", or narrative, e.g. "Smith et al. (2019)", "Smith (2020, p. 4)",
      "Smith and Jones (2018)", "Vygotsky's (1978)", or "Brown et al. 2014" without
      parentheses. The author is a capitalised (Latin-script) name, optionally followed by
      "et al."; the year is 1900-2099 with an optional letter suffix ("2020a"; not "s",
      which marks a decade such as "1920s"), or "n.d.". The year must end the citation
      (be followed by ``,``, ``;``, ``:`` or the closing parenthesis). Months, weekdays,
      seasons and course words ("Week", "Term", "Version", "Since", ...) are not authors.
      So "(see 2020 plan)", "(2020)" alone, "(March 2020)", "Spring (2021)",
      "(pp. 20-45)", "at 10:30", "Python 3.11", "in 2020 we ..." do not count.
      Citations inside code are ignored.

``question``
    The message asks something. Any one of:

    * a question mark (``?``, ``？``, ❓, ❔ or Slack's ``:question:``) outside URLs, code
      spans/blocks and quoted lines; so ``https://site/page?id=3``, ``a ? b : c`` in code
      or a quoted question is not enough on its own;
    * a sentence that opens like a question. A sentence starts at the start of the
      message or after ``.`` ``!`` ``;`` ``:`` a newline, an ellipsis or a dash (not after
      a comma), optionally followed by up to three greetings/fillers/mentions ("hi all,",
      "hey everyone", "so", "ok", "btw", "@sam"). Openers: a wh-word with an auxiliary or
      contraction ("how do", "what is", "where can", "when is", "who has", "what's"); a
      bare "why"; "how to/come/many/much/long/often/about", "what if/about",
      "who/what/where else"; an inverted auxiliary with a subject ("is there", "does
      anyone", "can someone", "could you", "isn't it", "should we"; "do", "have" and "must"
      only with a person, so "Do this first" and "Have a look" are not questions);
      "anyone/anybody/someone know/else/tried/have ..."; "any ideas/thoughts/tips/
      suggestions/advice/recommendations/pointers/help/feedback ..."; "quick q(uestion)".
      "Which is why ..." is not a question;
    * anywhere, as whole words: "wondering", "I wonder", "need help", "needs help",
      "need some help", "please help", "help please", "I have a question",
      "my question is", "quick question" (not right after a negation: "I don't need
      help").

    Statements of uncertainty without these forms ("not sure what to do") are not
    counted.

``support``
    Thanks, help and encouragement. Matched on whole words of the lower-cased text (so
    "thanksgiving", "unhelpful", "typical" or "n+1" do not fire), ignoring quoted lines,
    code and URLs. A word or phrase does not count right after a negation ("no", "not",
    "never", "hardly", "don't", "isn't", "wasn't", ...), also with one filler in between
    ("not a good idea", "not very helpful"). The lists:

    * words: "thanks", "thank", "thank you", "thankyou", "thanx", "thnx", "thx", "tks",
      "ty", "tysm", "tyvm", "tia", "thankful", "thanking", "grateful", "cheers",
      "appreciate(d/s)", "kudos", "bravo", "congrats", "congratulations", "shoutout",
      "shout-out"/"shout out", "props to", "glad", "helpful", "well-done";
    * "thanks to ..." only as gratitude: after "big/huge/many/special/massive/sincere", or
      with "for" within the next ten words ("thanks to Maria for the notes"); not as
      cause ("thanks to the outage I lost my draft");
    * praise: one of great, good, nice, excellent, brilliant, fantastic, awesome, amazing,
      lovely, interesting, insightful, thoughtful, helpful, solid, fair, super followed by
      one of point(s), question(s), idea(s), work, job, post, catch, summary,
      explanation, answer, share, find, insight(s), thread, write-up, reflection,
      observation, stuff; and "well done", "nicely done", "well said", "spot on",
      "way to go", "love this/that/your/it", "this/that helps", "this/that helped",
      "helped me", "+1" as a standalone token (not "n+1" or "+1.5");
    * help: "hope it helps" (and "this/that helps" above), "happy to help", "I can/could
      help", "let me help", "here to help", "if it helps", "in case it helps",
      "feel free to ask/reach/DM/message/ping", "you're welcome", "you are welcome",
      "welcome to/aboard/back", "no worries";
    * encouragement: "you've got this", "you got this", "you have got this", "you can do
      it/this", "keep it up", "keep going", "hang in there", "don't give up", "proud of
      you/everyone/all", "rooting for", "good luck", "best of luck", "sorry to hear";
    * emoji: 🙏 👏 💪 ❤️ ♥ 💖 💕 💗 💙 💚 💛 💜 🧡 🤍 🫶 🎉 🎊 🙌 🥳 🤗 💯 👍 ⭐ 🌟 ✨ 🏆, and the
      matching Slack shortcodes (``:pray:``, ``:clap:``, ``:muscle:``, ``:heart:``,
      ``:tada:``, ``:raised_hands:``, ``:+1:``, ``:thumbsup:``, ``:hugging_face:``,
      ``:100:``, ``:sparkles:``, ...).

Word count
==========

``word_count`` measures the member's own prose: the number of tokens matching
``\w+(?:[-'’.]\w+)*``, i.e. runs of letters, digits or underscores in any script, where an
apostrophe, hyphen or dot between two of them joins one word ("don't", "peer-reviewed",
"e.g", "3.11", "notes.md" are one word each), plus one word per URL. Words inside code
spans and blocks count. Quoted lines (other people's words), mentions and platform markup
(``<@123>``, ``@sam``, ``<#C1|general>``, ``<!here>``, custom emoji ``<:name:123>``, Slack
``:shortcodes:``, ``&amp;``/``&lt;``/``&gt;``) and emoji count 0, so an emoji-only message
has 0 words. Scripts written without spaces (e.g. Chinese) count one word per unbroken run.

Withheld text
=============

``text=None`` means the platform withheld the content (e.g. Discord without the
message-content intent). Only the structural kinds are given: ``idea`` and ``builds_on``
from the flags, ``reference`` only from ``has_attachments``; ``word_count`` is 0 and
``has_question`` is False. An empty string is treated the same way.

Performance
===========

All patterns are compiled at import time and written without nested ambiguous repetition
(repetitions that can start at every character are bounded and possessive), so matching is
linear in the input length; cheap substring pre-checks skip most patterns for ordinary
messages, and phrases are looked up word by word in tables instead of one large regex. A
typical 20-30 word message takes about 8-15 microseconds on one core; a 100,000-character
message tens of milliseconds. Any ``str`` input (very long, control characters, RTL text,
emoji, lone surrogates) is handled without raising.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["KINDS", "Classification", "classify", "kinds_from_mask", "mask_of"]

KINDS = ("idea", "builds_on", "reference", "question", "support")

_BIT = {kind: 1 << i for i, kind in enumerate(KINDS)}
_IDEA, _BUILDS_ON, _REFERENCE, _QUESTION, _SUPPORT = (_BIT[k] for k in KINDS)
_ALL_BITS = (1 << len(KINDS)) - 1
_KINDS_BY_MASK = tuple(
    frozenset(kind for kind in KINDS if m & _BIT[kind]) for m in range(_ALL_BITS + 1)
)
_MASK_BY_KINDS = {kinds: mask for mask, kinds in enumerate(_KINDS_BY_MASK)}


class Classification(NamedTuple):
    """The result of :func:`classify`.

    A named tuple: built once per recorded message, it costs about a third of what a frozen
    dataclass did (whose ``__init__`` sets each field through ``object.__setattr__``).
    """

    kinds: frozenset[str]
    word_count: int
    has_reference: bool
    has_question: bool

    @property
    def mask(self) -> int:
        """The kinds as a bitmask: bit ``i`` is set for ``KINDS[i]``."""
        mask = _MASK_BY_KINDS.get(self.kinds)  # classify's kinds are always in this table
        return mask if mask is not None else mask_of(self.kinds)


def kinds_from_mask(mask: int) -> frozenset[str]:
    """The kinds whose bits are set in ``mask``.

    Bits above the known kinds are ignored (so rows written by a newer version still load);
    a negative mask is a ValueError.
    """
    if mask < 0:
        raise ValueError(f"kind mask must not be negative: {mask}")
    return _KINDS_BY_MASK[mask & _ALL_BITS]


def mask_of(kinds: Iterable[str]) -> int:
    """The bitmask for ``kinds``; an unknown kind name is a ValueError."""
    mask = 0
    for kind in kinds:
        try:
            mask |= _BIT[kind]
        except KeyError:
            raise ValueError(f"unknown contribution kind: {kind!r}") from None
    return mask


# --------------------------------------------------------------------------------------------
# Patterns and word lists, built once at import. Every repetition is either unambiguous or
# bounded, so matching is linear in the input length. Most patterns run on the lower-cased
# prose (no IGNORECASE: it is several times slower in `re`) and only after a cheap substring
# pre-check.

# Code: fenced blocks (terminated) and inline spans on one line.
_CODE_RE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)

# Quote lines: "> text", Discord ">>> rest of message", Slack's escaped "&gt; text".
_QUOTE_RE = re.compile(
    r"^[ \t]*(?:(?:>>>|&gt;&gt;&gt;)[ \t]+\S(?s:.*)|(?:>|&gt;)[ \t]+\S.*$)", re.MULTILINE
)

# URLs; trailing sentence punctuation and closing brackets are not part of the URL.
_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>|\"`]*[^\s<>|\"`'.,;:!?)\]}*~]", re.IGNORECASE)

_DOI_RE = re.compile(
    r"\b(?:10\.\d{4,9}/[^\s\"<>]*[^\s\"<>.,;:!?)\]}]"
    r"|doi:\s*\S|arxiv:\s*\d{4}\.\d{4,5}|isbn(?:-1[03])?:?\s*[\dxX][\d -]{8,16}[\dxX])",
    re.IGNORECASE,
)

# Platform markup that is not prose (removed before counting words).
_MARKUP_RE = re.compile(
    r"<[@#!][^<>\s]{1,64}>"  # <@123> <@!123> <@&123> <#C1|general> <!here> (no spaces)
    r"|<[@#!][\w.&-]{1,64}\|[^<>\n]{0,80}>"  # <@U1|sam> <#C1|general chat>
    r"|<a?:\w{1,64}:\d{1,24}>"  # Discord custom emoji
    r"|<t:-?\d{1,16}(?::\w)?>"  # Discord timestamp
    r"|(?<![\w@])@[\w.-]+"  # plain @handle
    r"|:[a-z][a-z0-9_+'-]{0,40}:|:[+-]1:"  # Slack :shortcode:
    r"|&(?:amp|lt|gt);"
)

_ENTITY_RE = re.compile(r"&(?:amp|lt|gt);")  # the entities _MARKUP_RE removes

_WORD_RE = re.compile(r"\w+(?:[-'’.]\w+)*")

# ---- reference: author-year citations (case-sensitive) ----------------------------------

_UPPER = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĘĚĞĪİĹĽŁŃŇŌŐŒŔŘŚŞŠŢŤŪŮŰŹŻŽ"
# Capitalised words that come before a year without being an author.
_NOT_AUTHORS = frozenset(
    (
        "January February March April May June July August September October November"
        " December Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Monday Tuesday Wednesday"
        " Thursday Friday Saturday Sunday Spring Summer Fall Autumn Winter Christmas Easter"
        " Term Semester Quarter Week Module Unit Class Cohort Year Version Edition Vol Volume"
        " Chapter Section Since In From Until Till Before After During Circa Early Late Mid"
        " End Start Updated Published Posted Due Est See Also And Or The Of On At By For To"
    ).split()
)
# A capitalised name starting a word ("Smith", "O'Neil", "Smith-Jones", "Łukasz"), optionally
# followed by "et al.". The pattern starts with the capital letter (so `re` can skip to
# candidates quickly) and checks the word start with a look-behind after it. The name is
# checked against _NOT_AUTHORS in Python.
_AUTHOR = (
    rf"(?P<author>[{_UPPER}](?<![\w'’-].)(?:['’][{_UPPER}])?[^\W\d_]+(?:-[^\W\d_]+)*)"
    r"(?:\s+et\s+al\.?)?"
)
_YEAR = r"(?:(?:19|20)\d\d[a-rt-z]?|n\.\s?d\.)"
# Narrative "Smith et al. (2019": find "(year" first (cheap), then look for the author just
# before it in a bounded window.
_PAREN_YEAR_RE = re.compile(rf"\(\s*{_YEAR}(?=\s*[,;:)])")
_NARRATIVE_AUTHOR_RE = re.compile(rf"{_AUTHOR}(?:['’]s?)?\s*\Z")
_NARRATIVE_WINDOW = 120
# Parenthetical "(see Smith & Jones, 2019; Lee 2020)".
_PAREN_RE = re.compile(r"\(([^()\n]{1,300})\)")
_PAREN_CITE_RE = re.compile(rf"{_AUTHOR},?\s+{_YEAR}(?=\s*(?:[,;:]|$))")
_YEARISH_RE = re.compile(r"(?:19|20)\d\d|n\.\s?d\.")
# "Brown et al. 2014" without parentheses: "et al." is signal enough.
_ET_AL_YEAR_RE = re.compile(rf"\bet\s+al\.?,?\s+{_YEAR}(?!\w)")

# ---- question --------------------------------------------------------------------------

_QUESTION_MARKS = ("?", "？", "❓", "❔")
_QUESTION_SHORTCODES = (":question:", ":grey_question:")

_SUBJECT_PERSON = (
    r"(?:i|you|u|we|they|he|she|anyone|anybody|someone|somebody|everyone|people|y'all|ya|ppl)"
)
_SUBJECT = rf"(?:{_SUBJECT_PERSON}|it|there|this|that|these|those)"
_AUX = (
    r"(?:do|does|did|is|are|was|were|can|could|would|will|should|shall|has|have|had|may"
    r"|might|must|am|isn't|aren't|wasn't|weren't|doesn't|don't|didn't|can't|couldn't"
    r"|wouldn't|won't|shouldn't|hasn't|haven't)"
)
# Inverted auxiliaries. "do", "have" and "must" only with a person ("Do you ...?"), so
# imperatives such as "Do this first" or "Have a look" are not questions.
_INVERTED = (
    r"(?:is|are|was|were|isn't|aren't|wasn't|weren't|does|did|doesn't|didn't|can|could"
    r"|would|will|should|shall|may|might|can't|couldn't|wouldn't|won't|shouldn't)"
    rf"\s+{_SUBJECT}"
    rf"|(?:do|don't|have|has|had|haven't|hasn't|must|am)\s+{_SUBJECT_PERSON}"
)
_WH = r"(?:what|how|why|where|when|which|who|whom|whose)"
_OPENER = (
    rf"{_WH}(?:'s|'re|'d|'ll|\s+{_AUX})"
    r"|whats|hows|why|how\s+(?:to|come|many|much|long|often|about)|what\s+(?:if|about)"
    r"|(?:who|what|where)\s+else"
    rf"|{_INVERTED}"
    r"|(?:anyone|anybody|someone)\s+(?:know|knows|have|has|had|else|tried|try|got|seen|able"
    r"|free|want|wanna|up|interested|managed|figured|found|heard|using|used|understand"
    r"|get|read|did|done|recommend)"
    r"|any\s+(?:ideas?|thoughts|tips|suggestions|advice|recommendations|pointers|help"
    r"|feedback|clue|luck|chance)"
    r"|quick\s+q(?:uestion)?"
)
_FILLER = (
    r"(?:(?:hi|hey|hello|heya|morning|evening)(?:\s+(?:all|everyone|everybody|folks|team"
    r"|there|y'all|guys|friends|people))?|so|and|but|also|ok|okay|um+|hmm+|sorry|btw|oh"
    r"|ah|actually|wait|ps|p\.s\.|lol|then|well|honestly|seriously|quick\s+one)"
)
# Matched (anchored) at the start of the prose and after each sentence boundary. Every
# repetition is bounded and possessive: boundaries can be dense (a run of newlines).
_OPENER_AT_RE = re.compile(
    r"[\s\"'“‘(*_~-]{0,8}+"
    rf"(?:{_FILLER}[,:!.]{{0,3}}+\s{{1,6}}+){{0,3}}+"
    rf"(?!which\s+(?:is|was)\s+why\b)(?:{_OPENER})\b"
)
# Sentence boundaries: . ! ; : newline, ellipsis, dashes; not a hyphen inside a word
# ("know-how is") and not a comma (", which is ...").
_SENTENCE_END_RE = re.compile(r"[.!;:\n…–—-](?<!\w-)")

# Anywhere in the text, as whole words (negated by a preceding "don't", "not" ...).
_QUESTION_WORDS = frozenset({"wondering"})
_QUESTION_PHRASES = (
    ("i", "wonder"),
    ("need", "help"),
    ("needs", "help"),
    ("need", "some", "help"),
    ("please", "help"),
    ("help", "please"),
    ("i", "have", "a", "question"),
    ("my", "question", "is"),
    ("quick", "question"),
)

# ---- support -----------------------------------------------------------------------------

_SUPPORT_WORDS = frozenset(
    {
        "thanks",
        "thank",
        "thankyou",
        "thank-you",
        "thanx",
        "thnx",
        "thx",
        "tks",
        "ty",
        "tysm",
        "tyvm",
        "tia",
        "thankful",
        "thanking",
        "grateful",
        "cheers",
        "appreciate",
        "appreciated",
        "appreciates",
        "kudos",
        "bravo",
        "congrats",
        "congratulations",
        "shoutout",
        "shout-out",
        "glad",
        "helpful",
        "well-done",
    }
)
# "thanks to" is gratitude only after these words or with a "for" soon after it
# ("big thanks to Maria", "thanks to Maria for ..."), not cause ("thanks to the outage").
_THANKS_TO_INTENSIFIERS = frozenset({"big", "huge", "many", "special", "massive", "sincere"})
_THANKS_TO_FOR_WINDOW = 10
_PRAISE_ADJECTIVES = (
    "great",
    "good",
    "nice",
    "excellent",
    "brilliant",
    "fantastic",
    "awesome",
    "amazing",
    "lovely",
    "interesting",
    "insightful",
    "thoughtful",
    "helpful",
    "solid",
    "fair",
    "super",
)
_PRAISE_NOUNS = (
    "point",
    "points",
    "question",
    "questions",
    "idea",
    "ideas",
    "work",
    "job",
    "post",
    "catch",
    "summary",
    "explanation",
    "answer",
    "share",
    "find",
    "insight",
    "insights",
    "thread",
    "write-up",
    "writeup",
    "reflection",
    "observation",
    "stuff",
)
_SUPPORT_PHRASES = tuple((a, n) for a in _PRAISE_ADJECTIVES for n in _PRAISE_NOUNS) + (
    ("well", "done"),
    ("nicely", "done"),
    ("well", "said"),
    ("spot", "on"),
    ("way", "to", "go"),
    ("love", "this"),
    ("love", "that"),
    ("love", "your"),
    ("love", "it"),
    ("this", "helps"),
    ("that", "helps"),
    ("this", "helped"),
    ("that", "helped"),
    ("helped", "me"),
    ("hope", "it", "helps"),
    ("happy", "to", "help"),
    ("i", "can", "help"),
    ("i", "could", "help"),
    ("let", "me", "help"),
    ("here", "to", "help"),
    ("if", "it", "helps"),
    ("case", "it", "helps"),
    ("feel", "free", "to", "ask"),
    ("feel", "free", "to", "reach"),
    ("feel", "free", "to", "dm"),
    ("feel", "free", "to", "message"),
    ("feel", "free", "to", "ping"),
    ("you're", "welcome"),
    ("youre", "welcome"),
    ("you", "are", "welcome"),
    ("welcome", "to"),
    ("welcome", "aboard"),
    ("welcome", "back"),
    ("no", "worries"),
    ("you've", "got", "this"),
    ("youve", "got", "this"),
    ("you", "got", "this"),
    ("you", "have", "got", "this"),
    ("you", "can", "do", "it"),
    ("you", "can", "do", "this"),
    ("keep", "it", "up"),
    ("keep", "going"),
    ("hang", "in", "there"),
    ("don't", "give", "up"),
    ("dont", "give", "up"),
    ("proud", "of", "you"),
    ("proud", "of", "u"),
    ("proud", "of", "everyone"),
    ("proud", "of", "all"),
    ("rooting", "for"),
    ("good", "luck"),
    ("best", "of", "luck"),
    ("sorry", "to", "hear"),
    ("shout", "out"),
    ("props", "to"),
)
# A word or phrase does not count right after one of these ("not helpful", "no thanks",
# "don't love this"), or after one of them plus a filler ("not a good idea").
_NEGATIONS = frozenset(
    {
        "no",
        "not",
        "never",
        "hardly",
        "isn't",
        "wasn't",
        "aren't",
        "weren't",
        "don't",
        "doesn't",
        "didn't",
        "dont",
        "isnt",
        "wasnt",
        "nothing",
    }
)
_NEGATION_FILLERS = frozenset({"a", "an", "very", "really", "so", "that", "too", "particularly"})
_SUPPORT_EMOJI_RE = re.compile("[🙏👏💪❤♥💖💕💗💙💚💛💜🧡🤍🫶🎉🎊🙌🥳🤗💯👍⭐🌟✨🏆]")
_SUPPORT_SHORTCODE_RE = re.compile(
    r":(?:pray|clap|muscle|heart|hearts|two_hearts|sparkling_heart|heart_hands|tada"
    r"|confetti_ball|raised_hands|\+1|thumbsup|hugging_face|hugs|100|star|star2|sparkles"
    r"|trophy|partying_face|(?:blue|green|yellow|purple|orange|white)_heart)"
    r"(?:::skin-tone-\d)?:"
)
_PLUS_ONE_RE = re.compile(r"(?<![\w+])\+1(?!\d|[.,]\d)")


# Words too common to pre-filter on: a phrase is only looked for when the message contains
# its other words.
_COMMON_WORDS = frozenset(
    "i you u it this that to of me on in a the your are up for all there if here let have"
    " hope is my no".split()
)


def _index(phrases: Iterable[tuple[str, ...]]) -> dict[str, tuple[tuple[str, ...], ...]]:
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        by_first.setdefault(phrase[0], []).append(phrase)
    return {first: tuple(group) for first, group in by_first.items()}


def _key_words(phrases: Iterable[tuple[str, ...]]) -> frozenset[str]:
    keys: set[str] = set()
    for phrase in phrases:
        rare = [word for word in phrase if word not in _COMMON_WORDS]
        keys.update(rare or phrase)
    return frozenset(keys)


_SUPPORT_INDEX = _index(_SUPPORT_PHRASES)
_QUESTION_INDEX = _index(_QUESTION_PHRASES)
# A message can only be support (by words) if it shares a word with this set; likewise
# for question words. Checked with one set operation before the word-by-word scan.
_SUPPORT_TRIGGERS = _SUPPORT_WORDS | _key_words(_SUPPORT_PHRASES)
_QUESTION_TRIGGERS = _QUESTION_WORDS | _key_words(_QUESTION_PHRASES)


# --------------------------------------------------------------------------------------------


def _negated(tokens: list[str], i: int) -> bool:
    """Is the word at ``tokens[i]`` negated by the one or two words before it?"""
    if i == 0:
        return False
    before = tokens[i - 1]
    if before in _NEGATIONS:
        return True
    return i >= 2 and before in _NEGATION_FILLERS and tokens[i - 2] in _NEGATIONS


def _phrase_at(tokens: list[str], i: int, index: dict[str, tuple[tuple[str, ...], ...]]) -> bool:
    candidates = index.get(tokens[i])
    if candidates is None:
        return False
    for phrase in candidates:
        if tuple(tokens[i : i + len(phrase)]) == phrase and not _negated(tokens, i):
            return True
    return False


def _has_support_words(tokens: list[str]) -> bool:
    for i, word in enumerate(tokens):
        if word in _SUPPORT_WORDS:
            if _negated(tokens, i):
                continue
            if word in ("thanks", "thank") and tokens[i + 1 : i + 2] == ["to"]:
                if i and tokens[i - 1] in _THANKS_TO_INTENSIFIERS:
                    return True
                if "for" in tokens[i + 2 : i + 2 + _THANKS_TO_FOR_WINDOW]:
                    return True
                continue
            return True
        if word in _SUPPORT_INDEX and _phrase_at(tokens, i, _SUPPORT_INDEX):
            return True
    return False


def _has_question_words(tokens: list[str]) -> bool:
    for i, word in enumerate(tokens):
        if word in _QUESTION_WORDS and not _negated(tokens, i):
            return True
        if word in _QUESTION_INDEX and _phrase_at(tokens, i, _QUESTION_INDEX):
            return True
    return False


def _has_opener(low: str) -> bool:
    if _OPENER_AT_RE.match(low) is not None:
        return True
    match = _OPENER_AT_RE.match
    for end in _SENTENCE_END_RE.finditer(low):
        if match(low, end.end()) is not None:
            return True
    return False


def _may_hold_markup(text: str, shortcodes: bool) -> bool:
    """Whether ``_MARKUP_RE`` can match: each kind of markup has its own sign ("<", "@",
    two colons, an entity), and without one the substitution (a few microseconds for a
    short message) would find nothing. ``shortcodes``: the text holds two colons."""
    return (
        "<" in text or "@" in text or shortcodes or ("&" in text and bool(_ENTITY_RE.search(text)))
    )


def _has_citation(prose: str) -> bool:
    """``prose`` has code removed already."""
    has_et_al = "et al" in prose
    if ("(" not in prose and not has_et_al) or _YEARISH_RE.search(prose) is None:
        return False
    for year in _PAREN_YEAR_RE.finditer(prose):
        start = year.start()
        window = prose[max(0, start - _NARRATIVE_WINDOW) : start]
        author = _NARRATIVE_AUTHOR_RE.search(window)
        if author is not None and author["author"] not in _NOT_AUTHORS:
            return True
    for paren in _PAREN_RE.finditer(prose):
        for author in _PAREN_CITE_RE.finditer(paren.group(1)):
            if author["author"] not in _NOT_AUTHORS:
                return True
    return has_et_al and _ET_AL_YEAR_RE.search(prose) is not None


def classify(
    text: str | None,
    *,
    is_reply: bool,
    replies_to_other: bool,
    mentions_other: bool,
    has_attachments: bool,
    in_thread: bool = False,
) -> Classification:
    """Classify one message; see the module docstring for the rules."""
    mask = 0
    if not is_reply and not in_thread:
        mask |= _IDEA
    if replies_to_other or mentions_other:
        mask |= _BUILDS_ON
    has_reference = bool(has_attachments)

    if not text:
        if has_reference:
            mask |= _REFERENCE
        return Classification(_KINDS_BY_MASK[mask], 0, has_reference, False)

    # Code: its words count, but its "?", quote lines and citations do not.
    code_words = 0
    prose = text
    if "`" in text:
        code_parts = _CODE_RE.findall(text)
        if code_parts:
            code_words = sum(len(_WORD_RE.findall(part)) for part in code_parts)
            prose = _CODE_RE.sub(" ", text)

    # Quote lines: evidence of building on someone, but not the member's own words.
    own = prose
    if ">" in prose or "&gt;" in prose:
        own, quotes = _QUOTE_RE.subn(" ", prose)
        if quotes:
            mask |= _BUILDS_ON

    # References. A URL anywhere counts (even in code or a quote); in the member's own
    # prose each URL is one word and is removed before looking for "?" and phrases.
    url_count = 0
    if "://" in text or "ww." in text or "WW." in text:  # "www.", "Www.", "WWW."
        if _URL_RE.search(text) is not None:
            has_reference = True
            if "://" in own or "ww." in own or "WW." in own:
                own, url_count = _URL_RE.subn(" ", own)
    if not has_reference:
        lowered = prose.lower()
        if "10." in prose or "doi" in lowered or "arxiv" in lowered or "isbn" in lowered:
            has_reference = _DOI_RE.search(prose) is not None
        if not has_reference:
            has_reference = _has_citation(prose)
    if has_reference:
        mask |= _REFERENCE

    # Marks, emoji and shortcodes are read before markup is stripped.
    has_question = False
    has_support = False
    for mark in _QUESTION_MARKS:
        if mark in own:
            has_question = True
            break
    if not own.isascii() and _SUPPORT_EMOJI_RE.search(own) is not None:
        has_support = True
    # A shortcode needs two colons; a lone one ("Note: ...") is common in prose.
    shortcodes = own.count(":") > 1
    if shortcodes:
        if not has_question:
            has_question = any(code in own for code in _QUESTION_SHORTCODES)
        if not has_support:
            has_support = _SUPPORT_SHORTCODE_RE.search(own) is not None
    if not has_support and "+1" in own:
        has_support = _PLUS_ONE_RE.search(own) is not None

    if _may_hold_markup(own, shortcodes):
        own = _MARKUP_RE.sub(" ", own)
    low = own.lower()
    if "’" in low:
        low = low.replace("’", "'")
    tokens = _WORD_RE.findall(low)

    if not has_question:
        has_question = _has_opener(low)
    if not (has_question and has_support):
        words = set(tokens)
        if not has_question and not words.isdisjoint(_QUESTION_TRIGGERS):
            has_question = _has_question_words(tokens)
        if not has_support and not words.isdisjoint(_SUPPORT_TRIGGERS):
            has_support = _has_support_words(tokens)
    if has_question:
        mask |= _QUESTION
    if has_support:
        mask |= _SUPPORT

    word_count = len(tokens) + url_count + code_words
    return Classification(_KINDS_BY_MASK[mask], word_count, has_reference, has_question)
