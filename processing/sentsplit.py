"""A small rule-based English sentence splitter that approximates Stanford CoreNLP's ``tokenize,ssplit``.

Used by the CASIE converter, whose reference split (UIE) was produced with CoreNLP 4.1 ``ssplit``; no Java here,
so the PTB-lexer rules that decide sentence boundaries are re-implemented on character offsets:

* a boundary is ``.``, ``!`` or ``?`` (runs like ``?!`` count once) that is followed by whitespace or the end of
  the text; closing quotes/brackets right after it stay in the sentence (CoreNLP's "boundary followers");
* a period glued to an abbreviation is not a boundary, except in the contexts where the PTB lexer emits a
  sentence-final period anyway:
  - *ABBREV1* (``Inc.``, ``Corp.``, ``etc.``, months, US states, ``Jr.`` ...): boundary iff the next character
    after the whitespace is upper case or more whitespace follows;
  - *ABBREV2* (titles ``Mr.``/``Dr.``/``St.``, acronyms ``U.S.``/``D.C.``/single letters, ``Dept.`` ...):
    boundary iff the next word is one of a list of common sentence-initial function words (``The``, ``It`` ...);
  - *ABBREV3* (``No.``, ``Fig.``, ``approx.`` ...): no boundary before a digit;
  - ``vs.``, ``a.k.a.``: never a boundary;
* ``Yahoo!``, ``E!``, ``Jeopardy!`` and ``OK!`` are words, not boundaries; an ellipsis ``...`` is not a boundary
  (a fourth period before a letter is);
* periods inside a token (``PureMatrimony.com``, ``7.2``, ``Trojan.Encoder``) are not boundaries (whitespace must
  follow), except right before an opening bracket/quote that follows a plain lower-case word
  (``loss.[3] In``, ``off-site.\u201cYou``), where the PTB lexer makes the period a token of its own.

:func:`split_sentences` returns ``[(start, end)]`` character spans (end-exclusive) covering the non-blank text,
with surrounding whitespace trimmed. It is deterministic and has no dependencies.
"""

from __future__ import annotations

import re

_ABMONTH = "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
_ABDAYS = "mon|tue|tues|wed|thu|thurs|fri"
_ABSTATE = (
    "ala|ariz|az|ark|calif|colo|conn|ct|dak|del|fla|ga|ill|ind|kan|kans|ky|la|mass|md|mich|minn|miss|mo|mont|neb|"
    "nev|okla|ore|pa|penn|tenn|tex|va|vt|wash|wis|wisc|wyo"
)
_ABCOMP = "inc|co|cos|corp|pty|ptys|pte|ptes|ltd|plc|rt|bancorp|bhd|assn|univ|intl|sys"
_ABNUM = "tel|est|ext|sq"
_ABPTIT = "jr|sr|bros|ed.d|ph.d|b.sc|d.sc|m.sc|ll.b|ll.d|ll.m|esq|sci"
_ABVARIA = "etc|ect|al|seq|bldg|pls|wrt|orig|incl|tsp|tbsp|kr|eg|avg|pl|cir|lb|min|max|cit|ssp|spp|aff|fl|var"
ABBREV1 = frozenset(
    label for group in (_ABMONTH, _ABDAYS, _ABSTATE, _ABCOMP, _ABNUM, _ABPTIT, _ABVARIA) for label in group.split("|")
)

_ABTITLE = (
    "mr|mrs|ms|mx|miss|dr|drs|prof|profs|sen|sens|rep|reps|atty|attys|lt|col|gen|messrs|gov|govs|adm|rev|fr|maj|"
    "sgt|cpl|pvt|capt|st|sta|ste|ave|pres|lieut|hon|brig|cmdr|comdr|pfc|spc|supt|supts|det|mt|ft|adj|adv|asst|"
    "assoc|ens|insp|mlle|mme|msgr|sfc|amb|smt|ven|br|eng"
)
_ABCOMP2 = "invt|elec|natl|mfg|mtg|dept|blvd|rd|viz|exh|exhs|govt|v|wm|jos|cie|cf|treas|ph|sc|syn|def|mk|soc"
ABBREV2 = frozenset((_ABTITLE + "|" + _ABCOMP2).split("|"))
_ACRO = re.compile(r"[a-z](\.[a-z])*", re.IGNORECASE)  # U.S, a.m, D.C, single letters

ABBREV3 = frozenset({
    "ca", "ch", "chs", "fig", "figs", "prop", "no", "nos", "nr", "nrs", "vol", "vols", "sec", "secs", "sect",
    "sects", "art", "arts", "para", "paras", "bldg", "pp", "op", "approx", "pt", "rs", "apt", "res",
})
ABBREV4 = frozenset({"vs", "a.k.a"})
BANGWORDS = frozenset({"yahoo!", "e!", "jeopardy!", "ok!"})

# Words after an ABBREV2 abbreviation that make CoreNLP treat its period as sentence-final (case-sensitive).
SENTENCE_STARTERS = frozenset({
    "A", "About", "According", "Additionally", "After", "All", "Also", "Although", "An", "Another", "As", "At",
    "Before", "Both", "But", "By", "Did", "During", "Each", "Earlier", "Following", "For", "From", "He", "Her",
    "Here", "His", "How", "However", "If", "In", "It", "Its", "Last", "Later", "Many", "More", "Most", "Mr.",
    "Mrs.", "Ms.", "Now", "On", "Once", "One", "Other", "Our", "She", "Since", "So", "Some", "Such", "That", "The",
    "Their", "Then", "There", "These", "They", "This", "Two", "Under", "Upon", "We", "When", "While", "What", "Who",
    "Why", "Yet", "You",
})

_CANDIDATE = re.compile(r"[.!?]+")
_FOLLOWERS = re.compile(r"[\"'\u2019\u201d\u00bb\u203a)\]}>]*")
_OPENERS = "\"'(\u201c\u2018[{<\u00ab"
_GLUED_OPENERS = "[(\u201c\u2018\""


def _prev_token(text: str, start: int) -> str:
    """The whitespace-delimited chunk ending right before ``start`` (leading opening punctuation stripped)."""
    i = start
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return text[i:start].lstrip(_OPENERS)


def _is_boundary(text: str, m: re.Match[str], after: int) -> bool:
    """Decide whether the punctuation run ``m`` (closers up to ``after``) ends a sentence."""
    punct = m.group()
    n = len(text)
    word = _prev_token(text, m.start())
    if after < n and not text[after].isspace():
        # glued to the next token (7.2, example.com) -- unless an opening quote/bracket starts a new sentence right
        # after a plain word: "data loss.[3] In ...", "off-site.“You ..." (the PTB lexer makes "." a token there)
        return (
            after == m.end()
            and text[after] in _GLUED_OPENERS
            and after + 1 < n
            and (text[after + 1].isalnum() or text[after + 1] == "[")
            and bool(re.search(r"[a-z]{2}$", word))
            and word.lower() not in ABBREV1
            and word.lower() not in ABBREV2
        )
    if punct[0] in "!?":
        return (word + punct).lower() not in BANGWORDS
    # punct starts with '.'
    if len(punct) >= 3:  # ellipsis: a boundary only with a fourth period before a letter
        rest = text[after:].lstrip()
        return len(punct) >= 4 and bool(rest) and rest[0].isalpha()
    if len(punct) == 2 or not word or after > m.end():
        return True  # "..", or the period is followed by closing quotes/brackets: treat as sentence end
    low = word.lower()
    rest = text[after:]
    stripped = rest.lstrip()
    gap = rest[: len(rest) - len(stripped)]
    if low in ABBREV4:
        return False
    if low in ABBREV1:
        # boundary iff followed by whitespace and an upper-case letter, or by two whitespace characters
        return not stripped or len(gap) >= 2 or stripped[0].isupper()
    if low in ABBREV2 or _ACRO.fullmatch(word):
        nxt = re.match(r"\S+", stripped)
        if not nxt:
            return True
        w = nxt.group()
        w_core = w.rstrip("?!") if w.rstrip("?!") else w
        return w_core in SENTENCE_STARTERS or w in SENTENCE_STARTERS
    return not (low in ABBREV3 and stripped[:1].isdigit())  # "No. 5", "approx. 20": not a boundary


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences; return end-exclusive ``(start, end)`` character spans, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _CANDIDATE.finditer(text):
        if m.start() < start:
            continue
        f = _FOLLOWERS.match(text, m.end())
        after = f.end() if f else m.end()
        if _is_boundary(text, m, after):
            _emit(text, start, after, spans)
            start = after
    _emit(text, start, len(text), spans)
    return spans


def _emit(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
