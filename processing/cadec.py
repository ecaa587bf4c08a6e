"""CADEC (discontinuous / overlapping adverse-drug-event NER) -> unified discontinuous-NER records.

Source (``shared/data/cadec/SOURCE.md``; foxlf823/sodner @ 8ef362eb ``data/cadec/{train,dev,test}.json``, the Dai et
al. 2020 split as preprocessed by SODNER): JSON lines, one sentence each, dygiepp-like::

    {"doc_key": ..., "sentences": [[tok, ...]], "ner": [[[s, e, "ADR"], ...]],
     "relations": [[[s1, e1, s2, e2, "Combined" | "Overlap"], ...]], "dep": [...]}

Token offsets are inclusive on both ends. SODNER's ``preprocess_cadec.py :: transfer_into_dygie`` wrote, for every
entity in order: its fragments into ``ner`` (so a fragment shared by several entities is repeated), then for each
fragment an ``Overlap`` relation to every overlapping, non-identical fragment of every *other* entity, then a
``Combined`` relation for every ordered pair ``(i, j), i != j`` of the entity's own fragments. The ``Combined`` graph
alone is ambiguous (a fragment shared by two entities joins them), so entities are rebuilt from that write order:

1. the ``Combined`` relations are cut into per-entity blocks (a block of an ``n``-fragment entity is the
   ``n (n - 1)`` ordered pairs, starting with ``(f0, f1) .. (f0, f_{n-1})``);
2. walking ``ner``, a run of fragments equal to the next block's fragments is one discontinuous entity; every other
   ``ner`` item is a contiguous (one-fragment) entity;
3. **verification**: SODNER's writer is re-run on the rebuilt entities and must reproduce ``ner`` and ``relations``
   exactly (same items, same order); otherwise :class:`SourceFormatError` is raised naming file and line.

Unified record: ``schema.discontinuous_ent = ["ADR"]``; ``ans.discontinuous_ent`` = ``[{"type": "ADR", "text":
fragment texts joined by " ", "span": [[s1, e1], ...]}]`` with char spans in source fragment order (a contiguous
entity is a one-part list); ``text`` = the tokens joined by single spaces. An entity repeated verbatim in a sentence
is kept once (reported as a drop, "duplicate entity"). Ids: ``cadec.<split>.<line index>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION

from .convert import ConversionReport, TokenText, iter_json_lines, register_split_files, unified_record
from .registry import SourceFormatError

DNER_INSTRUCTION = NER_INSTRUCTION
SPLITS = ("train", "dev", "test")
LABELS = ["ADR"]

Frag = tuple[int, int]  # inclusive token span


def _overlapped(start: int, end: int, other_start: int, other_end: int) -> bool:
    """SODNER's ``is_span_overlapped`` (inclusive token spans)."""
    return (
        (other_start < start and other_end >= start)
        or (other_start <= end and other_end > end)
        or (other_start >= start and other_end <= end)
    )


def sodner_encode(entities: list[tuple[str, list[Frag]]]) -> tuple[list[list[Any]], list[list[Any]]]:
    """SODNER's writer: entities -> (``ner``, ``relations``) for one sentence, in its exact order."""
    ner: list[list[Any]] = []
    rels: list[list[Any]] = []
    for k, (typ, frags) in enumerate(entities):
        for s, e in frags:
            ner.append([s, e, typ])
            for k2, (_, other) in enumerate(entities):
                if k2 == k:
                    continue
                for os_, oe in other:
                    if (s, e) == (os_, oe):
                        continue
                    if _overlapped(s, e, os_, oe):
                        rels.append([s, e, os_, oe, "Overlap"])
        n = len(frags)
        for i in range(n):
            for j in range(n):
                if i != j:
                    rels.append([*frags[i], *frags[j], "Combined"])
    return ner, rels


def _combined_blocks(rels: list[list[Any]], path: Path, lineno: int) -> list[list[Frag]]:
    """Cut the ``Combined`` relations into per-entity blocks; return each block's fragment list."""
    comb = [r for r in rels if r[4] == "Combined"]
    blocks: list[list[Frag]] = []
    i = 0
    while i < len(comb):
        head = (comb[i][0], comb[i][1])
        tails: list[Frag] = []
        while i + len(tails) < len(comb) and (comb[i + len(tails)][0], comb[i + len(tails)][1]) == head:
            tails.append((comb[i + len(tails)][2], comb[i + len(tails)][3]))
            if len(tails) > 1 and tails[-1] == tails[0]:  # next entity with the same first fragment
                tails.pop()
                break
        frags = [head, *tails]
        n = len(frags)
        expect = [[*frags[a], *frags[b], "Combined"] for a in range(n) for b in range(n) if a != b]
        if comb[i:i + len(expect)] != expect:
            raise SourceFormatError(path, lineno, f"'Combined' relations near {comb[i]} are not a complete block "
                                                  f"for fragments {frags}")
        blocks.append(frags)
        i += len(expect)
    return blocks


def rebuild_entities(ner: list[list[Any]], rels: list[list[Any]], path: Path, lineno: int
                     ) -> list[tuple[str, list[Frag]]]:
    """Rebuild SODNER's entity list from one sentence's ``ner`` and ``relations`` (verified, see module doc)."""
    for item in ner:
        if (not isinstance(item, list) or len(item) != 3 or not all(isinstance(x, int) for x in item[:2])
                or not isinstance(item[2], str) or not 0 <= item[0] <= item[1]):
            raise SourceFormatError(path, lineno, f"bad ner item {item!r} (expected [start, end, type], inclusive)")
    for r in rels:
        if (not isinstance(r, list) or len(r) != 5 or not all(isinstance(x, int) for x in r[:4])
                or r[4] not in ("Combined", "Overlap")):
            raise SourceFormatError(path, lineno, f"bad relation {r!r} (expected [s1, e1, s2, e2, Combined|Overlap])")
    blocks = _combined_blocks(rels, path, lineno)
    entities: list[tuple[str, list[Frag]]] = []
    i = b = 0
    while i < len(ner):
        if b < len(blocks):
            n = len(blocks[b])
            run = [(x[0], x[1]) for x in ner[i:i + n]]
            types = {x[2] for x in ner[i:i + n]}
            if run == blocks[b] and len(types) == 1:
                entities.append((ner[i][2], run))
                i += n
                b += 1
                continue
        entities.append((ner[i][2], [(ner[i][0], ner[i][1])]))
        i += 1
    if b != len(blocks):
        raise SourceFormatError(path, lineno, f"'Combined' block {blocks[b]} matches no run of 'ner' fragments")
    if sodner_encode(entities) != (ner, rels):
        raise SourceFormatError(path, lineno, "rebuilt entities do not reproduce 'ner'/'relations' "
                                              "(not SODNER's write order)")
    return entities


def _records(path: Path, split: str, instruction: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
    n = 0
    for lineno, doc in iter_json_lines(path):
        if not isinstance(doc, dict) or not all(k in doc for k in ("sentences", "ner", "relations")):
            raise SourceFormatError(path, lineno, "expected a dict with 'sentences', 'ner' and 'relations'")
        if not (len(doc["sentences"]) == len(doc["ner"]) == len(doc["relations"]) == 1):
            raise SourceFormatError(path, lineno, "expected exactly one sentence (with one ner / relations list)")
        tokens = doc["sentences"][0]
        if not tokens or not all(isinstance(t, str) and t and not any(c.isspace() for c in t) for t in tokens):
            raise SourceFormatError(path, lineno, "tokens must be non-empty strings without whitespace")
        tt = TokenText(tokens)
        ents, seen = [], set()
        for typ, frags in rebuild_entities(doc["ner"][0], doc["relations"][0], path, lineno):
            if any(e >= len(tokens) for _, e in frags):
                raise SourceFormatError(path, lineno, f"fragment {frags} outside the {len(tokens)} tokens")
            if typ not in LABELS:
                raise SourceFormatError(path, lineno, f"unknown entity type {typ!r}; expected {LABELS}")
            key = (typ, tuple(frags))
            if key in seen:
                report.drop(split, "duplicate entity", f"{path.name}:{lineno} {typ} {frags}")
                continue
            seen.add(key)
            spans = [tt.char_span(s, e + 1) for s, e in frags]
            ents.append({"type": typ, "text": " ".join(tt.text[s:e] for s, e in spans), "span": spans})
        yield unified_record(
            f"cadec.{split}.{n}", instruction, {"discontinuous_ent": list(LABELS)}, tt.text, {"discontinuous_ent": ents}
        )
        n += 1


read_splits = register_split_files(
    "cadec", "discontinuous_ner", {split: f"{split}.json" for split in SPLITS}, _records, DNER_INSTRUCTION,
    "foxlf823/sodner @ 8ef362eb data/cadec/{train,dev,test}.json (dygiepp-like, Combined/Overlap)",
    shared_subdir="cadec",
).read_splits
