"""Classify one chat message into contribution kinds (pure, no I/O).

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

    * a URL: ``http://``, ``https://`` or ``www.``;
    * a DOI (``10.NNNN/...`` or ``doi:...``), an ``arXiv:NNNN.NNNNN`` id or an ``ISBN``;
    * an attachment (``has_attachments``);
    * an author-year citation, either parenthetical, e.g. "(Smith, 2020)",
      "(Smith & Jones, 2019)", "(see Smith et al., 2019; Lee 2020)", "(Smith 2020, p. 4)",
      "(WHO, 2021)", or narrative, e.g. "Smith et al. (2019)", "Smith (2020, p. 4)",
      "Smith and Jones (2018)", "Vygotsky's (1978)". The author is a capitalised (Latin
      script) name, optionally followed by "et al."; the year is 1900-2099 with an optional
      letter suffix ("2020a"; not "s", which marks a decade such as "1920s"), or "n.d.". In
      parentheses the year must end the citation (be followed by ``,``, ``;``, ``:`` or the
      closing parenthesis). Dates, terms and versions are not citations: "(see 2020 plan)",
      "(2020)" alone, "(March 2020)", "Spring (2021)", "at 10:30", "Python 3.11",
      "in 2020 we ..." do not count. Citations inside code are ignored.

``question``
    The message asks something. Either

    * it contains a question mark (``?``, ``？``, ❓, ❔ or Slack's ``:question:``) outside
      URLs, code spans/blocks and quoted lines, so ``https://site/page?id=3`` or a
      quoted question is not enough on its own; or
    * a sentence (start of the message, of a line, or after ``.``/``!``/``;``) opens like a
      question, optionally after a greeting, filler or mention ("hi all,", "so", "@sam"):
      a wh-word with an auxiliary ("how do", "what is", "where can", "what's"), a bare
      "why", "how to", "how come", "what if/about", an inverted auxiliary with a subject
      ("does anyone", "can someone", "is there", "could you", "am I", "isn't it"),
      "anyone know/else/tried ...", "any ideas/thoughts/tips/suggestions/advice ...",
      "quick question"; or anywhere in the text "I wonder", "I was wondering",
      "wondering if/whether/how ...", "need help", "please help".

``support``
    Thanks, help and encouragement, matched as whole words/phrases (case-insensitive, so
    "thanksgiving", "unhelpful" or "typical" do not fire):

    * thanks: "thanks", "thank you", "thank", "thankful", "grateful", "thx", "thnx", "thanx",
      "ty", "tysm", "tyvm", "tia", "cheers", "appreciate(d/s)", "kudos", "shout-out", "props
      to"; "thanks to ..." only when it is gratitude ("thanks to Maria for ...",
      "big thanks to ..."), not cause ("thanks to the outage"); "no thanks" does not count;
    * praise: "great/good/nice/excellent/brilliant/... point/question/idea/work/job/post/
      summary/explanation/answer/catch/find/share/insight" (not after "not (a)"),
      "well done", "nicely done", "well said", "spot on", "love this/that/your", "bravo",
      "congrats", "congratulations", "helpful" (not "not helpful"), "this/that helps",
      "helped me", "+1" as a standalone token;
    * help: "hope this/that/it helps", "happy/glad to help", "I can help", "let me help",
      "here to help", "if it helps", "in case it helps", "feel free to ask/reach out/DM",
      "you're welcome", "no worries", "anytime", "welcome to/aboard/back";
    * encouragement: "you've got this", "you got this", "you can do it/this", "keep it up",
      "keep going", "hang in there", "don't give up", "proud of you", "rooting for you",
      "good luck", "best of luck", "sorry to hear", "glad";
    * emoji: 🙏 👏 💪 ❤️ (and other hearts) 🎉 🙌 🥳 🤗 💯 👍 🫶 ⭐ ✨, and the matching Slack
      shortcodes (``:pray:``, ``:clap:``, ``:muscle:``, ``:heart:``, ``:tada:``,
      ``:raised_hands:``, ``:+1:``, ``:thumbsup:``, ``:hugging_face:``, ``:100:`` ...).

    Quoted lines, code and URLs are ignored.

Word count
==========

``word_count`` measures the member's own prose. Tokens matching ``\\w+`` (letters, digits,
underscore, any script), where ``'``, ``’``, ``-`` and ``.`` between word characters join
one word ("don't", "peer-reviewed", "e.g", "3.11", "notes.md" are one word each). Each URL
counts as one word. Words inside code spans and blocks count. Quoted lines (other people's
words), platform mentions and markup (``<@123>``, ``@sam``, ``<#C1|general>``, custom emoji
``<:name:123>``, Slack ``:shortcodes:``, ``&amp;``/``&lt;``/``&gt;``) and emoji count 0, so an
emoji-only message has 0 words. Scripts written without spaces (e.g. Chinese) count one word
per unbroken run.

Withheld text
=============

``text=None`` means the platform withheld the content (e.g. Discord without the
message-content intent). Only the structural kinds are given: ``idea`` and ``builds_on``
from the flags, ``reference`` only from ``has_attachments``; ``word_count`` is 0 and
``has_question`` is False. An empty string is treated the same way.

Performance
===========

All patterns are compiled at import time and written without nested ambiguous repetition,
so matching is linear in the input length; substring pre-checks skip most patterns for
ordinary messages. Any ``str`` input (very long, control characters, RTL text, emoji, lone
surrogates) is handled without raising.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["KINDS", "Classification", "classify", "kinds_from_mask", "mask_of"]

KINDS = ("idea", "builds_on", "reference", "question", "support")

_BIT = {kind: 1 << i for i, kind in enumerate(KINDS)}
_IDEA, _BUILDS_ON, _REFERENCE, _QUESTION, _SUPPORT = (_BIT[k] for k in KINDS)
_ALL_BITS = (1 << len(KINDS)) - 1
_KINDS_BY_MASK = tuple(
    frozenset(kind for kind in KINDS if m & _BIT[kind]) for m in range(_ALL_BITS + 1)
)


@dataclass(frozen=True, slots=True)
class Classification:
    """The result of :func:`classify`."""

    kinds: frozenset[str]
    word_count: int
    has_reference: bool
    has_question: bool

    @property
    def mask(self) -> int:
        """The kinds as a bitmask: bit ``i`` is set for ``KINDS[i]``."""
        return mask_of(self.kinds)


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
# Patterns (compiled once). Keep every repetition unambiguous: linear time on any input.

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

_WORD_RE = re.compile(r"\w+(?:[-'’.]\w+)*")

# ---- reference: author-year citations (case-sensitive) ----------------------------------

_UPPER = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĘĚĞĪİĹĽŁŃŇŌŐŒŔŘŚŞŠŢŤŪŮŰŹŻŽ"
# Capitalised words that precede a year without being an author.
_NOT_AUTHORS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
    "|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
    "|Spring|Summer|Fall|Autumn|Winter|Christmas|Easter|Term|Semester|Quarter|Week|Module"
    "|Unit|Class|Cohort|Year|Version|Edition|Vol|Volume|Chapter|Section|Since|In|From|Until"
    "|Till|Before|After|During|Circa|Early|Late|Mid|End|Start|Updated|Published|Posted"
    "|Due|Est|See|Also|And|Or|The|Of|On|At|By|For|To"
)
_AUTHOR = (
    rf"(?<![\w'’-])(?!(?:{_NOT_AUTHORS})\b)"
    rf"[{_UPPER}](?:['’][{_UPPER}])?[^\W\d_]+(?:-[^\W\d_]+)*"
    r"(?:\s+et\s+al\.?)?"
)
_YEAR = r"(?:(?:19|20)\d\d[a-rt-z]?|n\.\s?d\.)"
_YEARISH_RE = re.compile(r"(?:19|20)\d\d|n\.\s?d\.")
_NARRATIVE_CITE_RE = re.compile(rf"{_AUTHOR}(?:['’]s?)?\s*\(\s*{_YEAR}(?=\s*[,;:)])")
_PAREN_RE = re.compile(r"\(([^()\n]{1,300})\)")
_PAREN_CITE_RE = re.compile(rf"{_AUTHOR},?\s+{_YEAR}(?=\s*(?:[,;:]|$))")

# ---- question --------------------------------------------------------------------------

_QMARKS = ("?", "？", "❓", "❔", ":question:", ":grey_question:")

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
    rf"{_WH}(?:'s|’s|'re|’re|'d|’d|'ll|’ll|\s+{_AUX})"
    r"|whats|hows|why|how\s+(?:to|come|many|much|long|often|about)|what\s+(?:if|about)"
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
    r"|ah|actually|wait|ps|p\.s\.|lol|also|then|well|honestly|seriously|quick\s+one"
    r"|<@[!&]?[\w.-]{1,64}(?:\|[^<>\n]{0,80})?>|@[\w.-]+)"
)
# Every repetition between the sentence boundary and the opener is bounded: a boundary
# can start at every character (e.g. a run of newlines), so unbounded runs here would make
# the search quadratic.
_QUESTION_OPEN_RE = re.compile(
    r"(?:^|(?<=[.!;\n…]))[\s\"'“‘(*_~-]{0,8}"
    rf"(?:{_FILLER}[,:!.]{{0,3}}\s{{1,6}}){{0,3}}(?:{_OPENER})\b",
    re.IGNORECASE,
)
_QUESTION_ANYWHERE_RE = re.compile(
    r"\b(?:i\s+wonder|i\s+was\s+wondering|i'?m\s+wondering|i\s+am\s+wondering"
    r"|(?:just\s+)?wondering\s+(?:if|whether|how|what|why|where|when|who|which|about)"
    r"|need(?:s|ing)?\s+(?:some\s+|a\s+little\s+|a\s+bit\s+of\s+)?help|please\s+help"
    r"|help\s+please|i\s+have\s+a\s+question|my\s+question\s+is)\b",
    re.IGNORECASE,
)

# ---- support -----------------------------------------------------------------------------

_SUPPORT_WORDS_RE = re.compile(
    r"(?<!\bno\s)\b(?:thanks?(?!\s+to\b)|thank\s+you|thankful|thanking|grateful"
    r"|thx|thnx|thanx|tks|ty|tysm|tyvm|tia|cheers|appreciated?|appreciates|kudos"
    r"|shout-?\s?outs?|props\s+to"
    r"|(?:big|huge|many|special|massive|a\s+lot\s+of)\s+thanks\s+to"
    r"|thanks\s+to\b[^.!?\n]{0,60}?\bfor"
    r"|(?<!not\s)(?<!not\sa\s)(?<!n't\s)(?<!n't\sa\s)(?<!never\s)"
    r"(?:great|good|nice|excellent|brilliant|fantastic|awesome|amazing|lovely|interesting"
    r"|insightful|thoughtful|helpful|solid|fair)\s+(?:point|points|question|questions|idea"
    r"|ideas|work|job|post|catch|summary|explanation|answer|share|find|insight|insights"
    r"|thread|write-?up|reflection|example|analysis|observation)"
    r"|well\s+done|nicely\s+done|well\s+said|spot\s+on|love\s+(?:this|that|your|it)|bravo"
    r"|congrats|congratulations|(?<!not\s)(?<!n't\s)(?<!not\svery\s)(?<!not\sreally\s)helpful"
    r"|(?:this|that)\s+help(?:s|ed)|helped\s+me"
    r"|hope\s+(?:this|that|it)\s+helps|(?:happy|glad)\s+to\s+help|i\s+(?:can|could)\s+help"
    r"|let\s+me\s+help|here\s+to\s+help|(?:if|in\s+case)\s+it\s+helps"
    r"|feel\s+free\s+to\s+(?:ask|reach|dm|message|ping)"
    r"|you'?re\s+welcome|you\s+are\s+welcome|welcome\s+(?:to|aboard|back)|no\s+worries"
    r"|you'?ve\s+got\s+this|you\s+have\s+got\s+this|you\s+got\s+this"
    r"|you\s+can\s+do\s+(?:it|this)|keep\s+it\s+up|keep\s+going|hang\s+in\s+there"
    r"|don'?t\s+give\s+up|proud\s+of\s+(?:you|u|everyone|all)|rooting\s+for"
    r"|good\s+luck|best\s+of\s+luck|sorry\s+to\s+hear|glad)\b"
    r"|(?<![\w+])\+1(?![\d.,])",
    re.IGNORECASE,
)
_SUPPORT_EMOJI = (
    "🙏",
    "👏",
    "💪",
    "❤",
    "♥",
    "💖",
    "💕",
    "💗",
    "💙",
    "💚",
    "💛",
    "💜",
    "🧡",
    "🤍",
    "🫶",
    "🎉",
    "🎊",
    "🙌",
    "🥳",
    "🤗",
    "💯",
    "👍",
    "⭐",
    "🌟",
    "✨",
    "🏆",
)
_SUPPORT_SHORTCODE_RE = re.compile(
    r":(?:pray|clap|muscle|heart|hearts|two_hearts|sparkling_heart|heart_hands|tada"
    r"|confetti_ball|raised_hands|\+1|thumbsup|hugging_face|hugs|100|star|star2|sparkles"
    r"|trophy|partying_face|(?:blue|green|yellow|purple|orange|white)_heart)"
    r"(?:::skin-tone-\d)?:"
)


# --------------------------------------------------------------------------------------------


def _has_question(prose: str) -> bool:
    """``prose`` has code, quote lines and URLs removed already."""
    for mark in _QMARKS:
        if mark in prose:
            return True
    return (
        _QUESTION_OPEN_RE.search(prose) is not None
        or _QUESTION_ANYWHERE_RE.search(prose) is not None
    )


def _has_support(prose: str) -> bool:
    for emoji in _SUPPORT_EMOJI:
        if emoji in prose:
            return True
    if _SUPPORT_WORDS_RE.search(prose) is not None:
        return True
    return ":" in prose and _SUPPORT_SHORTCODE_RE.search(prose) is not None


def _has_citation(text: str) -> bool:
    """``text`` has code removed already."""
    if _YEARISH_RE.search(text) is None:
        return False
    if _NARRATIVE_CITE_RE.search(text) is not None:
        return True
    if "(" not in text:
        return False
    for match in _PAREN_RE.finditer(text):
        if _PAREN_CITE_RE.search(match.group(1)) is not None:
            return True
    return False


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

    # Split off code: its words count, but its "?", quotes and citations do not.
    code_words = 0
    prose = text
    if "`" in text:
        code_parts = _CODE_RE.findall(text)
        if code_parts:
            code_words = sum(len(_WORD_RE.findall(part)) for part in code_parts)
            prose = _CODE_RE.sub(" ", text)

    # Quote lines: evidence of building on someone, but not the member's own words.
    if ">" in prose or "&gt;" in prose:
        unquoted, quotes = _QUOTE_RE.subn(" ", prose)
        if quotes:
            mask |= _BUILDS_ON
    else:
        unquoted = prose

    # References.
    url_count = 0
    own = unquoted
    if "://" in text or "www." in text or "WWW." in text:
        if _URL_RE.search(text) is not None:
            has_reference = True
        if "://" in unquoted or "www." in unquoted or "WWW." in unquoted:
            own, url_count = _URL_RE.subn(" ", unquoted)
    if not has_reference:
        lowered = prose.lower()
        if ("10." in prose or "doi" in lowered or "arxiv" in lowered or "isbn" in lowered) and (
            _DOI_RE.search(prose) is not None
        ):
            has_reference = True
        elif _has_citation(prose):
            has_reference = True
    if has_reference:
        mask |= _REFERENCE

    has_question = _has_question(own)
    if has_question:
        mask |= _QUESTION
    if _has_support(own):
        mask |= _SUPPORT

    if "<" in own or "@" in own or ":" in own or "&" in own:
        own = _MARKUP_RE.sub(" ", own)
    word_count = len(_WORD_RE.findall(own)) + url_count + code_words

    return Classification(_KINDS_BY_MASK[mask], word_count, has_reference, has_question)
