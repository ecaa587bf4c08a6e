"""WebNLG (joint-RE version with full entity mentions, exact match, 216 relation types) -> unified RE records.

Source format (``shared/data/webnlg/SOURCE.md``; hy-struggle/PRGC @ 8bbaf340 ``data/WebNLG/``, the ETL-span /
JointER split that PRGC, TPLinker and OneRel score with exact match): ``{train,val,test}_triples.json`` = a JSON list
of ``{"text": "...", "triple_list": [[subject, relation, object], ...]}``, the NYT layout (``processing.nyt``);
``rel2id.json`` is a **one-element list** ``[{relation: id}]``. ``text`` is space-tokenized, triples carry **no
offsets and no entity types**. Splits: train, dev = ``val_triples.json``, test.

Records are relation triplets (``schema.rel`` / ``ans.rel``, like NYT and SPEC §1's RE example: entity types are not
part of the RE target), so no placeholder entity type is invented.

Relation labels (:func:`relation_label`, deterministic): ``_`` -> space, a space before every camelCase hump
(``birthPlace -> birth place``, ``LengthFeet -> length feet``) and before the last capital of an acronym followed by a
lower-case word (``ABCDef -> ABC def``); every word is lower-cased except all-capital acronyms of two or more letters
(``ICAO_Location_Identifier -> ICAO location identifier``, ``was selected by NASA`` kept); punctuation is kept
(``elevationAboveTheSeaLevel_(in_metres) -> elevation above the sea level (in metres)``). One manual override
(:data:`OVERRIDES`: ``LibraryofCongressClassification``, whose ``of`` is not capitalised). The 216 labels are
distinct (checked at read time). ``schema.rel`` lists them in ``rel2id`` id order.

Locating subject/object strings (policy, :func:`locate_pair`):

1. candidates = occurrences starting and ending on a token boundary (space or text edge; ``2014`` is not found
   inside ``201415``); occurrences inside an occurrence of a longer entity string of the same sentence (``York``
   inside ``New York``) are discarded when a free-standing one exists;
2. when head or tail has several candidates, the **closest pair** is used: the (head, tail) pair with the smallest
   character gap between the two spans, overlapping pairs excluded, ties broken by the earliest head then the
   earliest tail (so with single candidates this is simply the first occurrence). Each mention with several
   candidates is noted ``"ambiguous mention (closest pair used)"`` (one note per head / tail mention);
3. when this places nothing, the same rule runs on lower-cased text and strings (noted ``"matched
   case-insensitively"``; the mention text becomes the text's form: ``Bacon`` -> ``bacon``);
4. a mention without candidate drops its triple (``"entity not found in text"``, counted); a triple whose head and
   tail overlap in every placement is dropped as ``"head and tail overlap in every placement"`` (counted): identical
   strings occurring once, or one string inside the other (``Abilene , Texas`` *is part of* ``Texas``,
   ``Derbyshire Dales`` *administrative county* ``Derbyshire``, with no free-standing second occurrence). Such a pair
   shares a boundary token, and a span-graph chain cannot hold one node twice.
   A record whose every triple was dropped is kept without answer and noted ``"record left without triples"``.

Repeated identical triples in a sentence are dropped as ``"duplicate triple"`` (1 in train, 1 in dev).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from modeling_ldnet.vocabulary_ldnet import RE_INSTRUCTION

from .convert import ConversionReport, read_json_file, read_split_files, source_folder, unified_record
from .nyt import token_occurrences
from .registry import Benchmark, SourceFormatError, register

SPLIT_FILES = {"train": "train_triples.json", "dev": "val_triples.json", "test": "test_triples.json"}
REL2ID = "rel2id.json"

#: relation names the camelCase rule cannot split
OVERRIDES = {"LibraryofCongressClassification": "library of congress classification"}

AMBIGUOUS = "ambiguous mention (closest pair used)"
NOT_FOUND = "entity not found in text"
OVERLAP = "head and tail overlap in every placement"
CASEFOLDED = "matched case-insensitively"
EMPTIED = "record left without triples (kept, no answer)"


def relation_label(name: str) -> str:
    """``birthPlace`` -> ``birth place``; ``3rd_runway_LengthFeet`` -> ``3rd runway length feet`` (module docstring)."""
    if name in OVERRIDES:
        return OVERRIDES[name]
    s = name.replace("_", " ")
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", s)  # camelCase hump
    s = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", " ", s)  # acronym followed by a word: ABCDef -> ABC Def
    words = []
    for w in s.split():
        letters = re.sub(r"[^A-Za-z]", "", w)
        words.append(w if len(letters) > 1 and letters.isupper() else w.lower())
    return " ".join(words)


def load_relations(src: Path) -> dict[str, str]:
    """``{upstream relation: label}`` in ``rel2id`` id order from ``src/rel2id.json`` (``[{relation: id}]``)."""
    path = src / REL2ID
    data = read_json_file(path, list, "expected a one-element JSON list [{relation: id}]")
    if len(data) != 1 or not isinstance(data[0], dict):
        raise SourceFormatError(path, 1, "expected a one-element JSON list [{relation: id}]")
    names = sorted(data[0], key=lambda r: data[0][r])
    labels = {r: relation_label(r) for r in names}
    if len(set(labels.values())) != len(labels):
        raise SourceFormatError(path, 1, "two relations verbalise to the same label")
    return labels


def _candidates(text: str, mention: str, others: set[str]) -> list[int]:
    """Token-boundary occurrences of ``mention``, without those inside a longer entity string when others exist."""
    hits = token_occurrences(text, mention)
    longer = [(s, s + len(o)) for o in others if len(o) > len(mention) and mention in o
              for s in token_occurrences(text, o)]
    free = [h for h in hits if not any(s <= h and h + len(mention) <= e for s, e in longer)]
    return free or hits


class Placement(NamedTuple):
    """Where a triple's head and tail go: spans (``[]`` when not placed), the reason it was not placed, how many of
    its two mentions had several candidates, and whether the case-insensitive fallback placed it."""

    head: list[int]
    tail: list[int]
    reason: str | None
    ambiguous: int = 0
    casefolded: bool = False


def _lower(s: str) -> str:
    """Lower case that keeps the length (``İ`` would become two characters: such a character is kept)."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s)


def _closest(text: str, head: str, tail: str, others: set[str]) -> Placement:
    hs = _candidates(text, head, others - {head})
    ts = _candidates(text, tail, others - {tail})
    if not hs or not ts:
        return Placement([], [], NOT_FOUND)
    best: tuple[int, int, int] | None = None
    for h in hs:
        for t in ts:
            he, te = h + len(head), t + len(tail)
            if h < te and t < he:  # overlapping spans (also: the same span)
                continue
            gap = max(t - he, h - te)
            if best is None or (gap, h, t) < best:
                best = (gap, h, t)
    if best is None:
        return Placement([], [], OVERLAP)
    _, h, t = best
    return Placement([h, h + len(head)], [t, t + len(tail)], None, (len(hs) > 1) + (len(ts) > 1))


def locate_pair(text: str, head: str, tail: str, others: set[str]) -> Placement:
    """Head and tail spans by the closest-pair rule (module docstring); when it places nothing, the same rule on
    lower-cased text and strings (``Bacon`` found as ``bacon``). ``others`` = every entity string of the sentence."""
    exact = _closest(text, head, tail, others)
    if exact.reason is None:
        return exact
    folded = _closest(_lower(text), _lower(head), _lower(tail), {_lower(o) for o in others})
    return folded._replace(casefolded=True) if folded.reason is None else exact


def _read_split(path: Path, split: str, instruction: str, relations: dict[str, str],
                report: ConversionReport) -> Iterator[dict[str, Any]]:
    data = read_json_file(path, list, "expected a JSON list of {text, triple_list}")
    schema = {"rel": list(relations.values())}
    for n, item in enumerate(data):
        where = f"{split}[{n}]"
        try:
            text, triples = item["text"], item["triple_list"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            names = {t[0] for t in triples if t and isinstance(t[0], str)} | {
                t[-1] for t in triples if t and isinstance(t[-1], str)}
            rels, seen = [], set()
            for triple in triples:
                subj, rel, obj = triple
                if not isinstance(subj, str) or not isinstance(obj, str):
                    raise TypeError("subject and object must be strings")
                if rel not in relations:
                    raise SourceFormatError(path, n + 1, f"{where}: unknown relation {rel!r} (not in {REL2ID})")
                key = (subj, rel, obj)
                if key in seen:
                    report.drop(split, "duplicate triple", f"{where}: {list(key)}")
                    continue
                seen.add(key)
                place = locate_pair(text, subj, obj, names)
                if place.reason is not None:
                    report.drop(split, place.reason, f"{where}: {list(key)}")
                    continue
                for _ in range(place.ambiguous):
                    report.note(split, AMBIGUOUS, f"{where}: {list(key)}")
                if place.casefolded:
                    report.note(split, CASEFOLDED, f"{where}: {list(key)}")
                (hs, he), (ts, te) = place.head, place.tail
                rels.append({"relation": relations[rel], "head": {"text": text[hs:he], "span": place.head},
                             "tail": {"text": text[ts:te], "span": place.tail}})
            if triples and not rels:
                report.note(split, EMPTIED, where)
        except SourceFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            # the list index stands in for the line: the file is one pretty-printed JSON document
            raise SourceFormatError(path, n + 1, f"{where}: malformed item ({type(exc).__name__}: {exc})") from None
        yield unified_record(f"webnlg.{split}.{n}", instruction, schema, text, {"rel": rels})


def read_splits(src_dir: Path, instruction: str = RE_INSTRUCTION, report: ConversionReport | None = None
                ) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}``; ``src_dir`` holds ``rel2id.json`` and ``*_triples.json`` (or is their parent)."""
    report = report or ConversionReport("webnlg")
    src = source_folder(src_dir, "webnlg")
    if not (src / REL2ID).is_file():
        raise FileNotFoundError(f"webnlg: {src / REL2ID} does not exist (the relation inventory)")
    relations = load_relations(src)
    return read_split_files(src, SPLIT_FILES,
                            lambda path, split: _read_split(path, split, instruction, relations, report), report)


register(
    Benchmark(
        name="webnlg",
        task="re",
        read_splits=read_splits,
        instruction=RE_INSTRUCTION,
        source="WebNLG exact match (JointER split, full mentions, 216 relations; *_triples.json, no offsets), "
               "hy-struggle/PRGC @ 8bbaf340 data/WebNLG",
        status="real",
        shared_subdir="webnlg",
    )
)
