"""NYT relation triples (NYT exact = CopyRE/JointER "NYT-multi" split; NYT* = CasRel partial-match variant).

Source format (``shared/data/nyt/SOURCE.md``; hy-struggle/PRGC @ 8bbaf340 ``data/NYT/`` and ``data/NYT-star/``, the
CasRel file layout): ``{train,val,test}_triples.json`` = a JSON list of
``{"text": "...", "triple_list": [[subject, "/freebase/relation/path", object], ...]}`` plus ``rel2id.json``.
``text`` is space-tokenized; triples carry **no offsets**. ``NYT-star`` reduces every entity to its last word.
The staged copy has dev (``val_triples.json``) and test only: **train is missing** (see the README for how to get
it); a missing split file is reported by the converter, not an error.

Locating subject/object strings (policy):

1. every occurrence of the string in ``text`` that starts and ends on a token boundary (space or text edge) is a
   candidate. Candidates lying inside an occurrence of a longer entity string of the same sentence (``York`` inside
   ``New York``) are discarded when a free-standing candidate exists (noted ``"occurrence inside a longer entity
   skipped"``). The **first** remaining one is used; if there are several, the report notes
   ``"ambiguous mention (first occurrence used)"``.
2. if there is none, the same search is repeated with accents folded on both sides (``Medellín`` vs ``Medellin``:
   about 45 mentions per split in NYT exact); the mention text becomes the form found in ``text`` (noted
   ``"matched after accent folding"``).
3. otherwise the triple is dropped (reason ``"entity not found in text"``).

When subject and object are the same string (NYT*: father and son reduced to the shared surname, ``Graham``
``children`` ``Graham``), the tail takes the next occurrence after the head's when there is one (noted); with a
single occurrence head and tail share the span (a chain cannot encode that: ``repeated_node`` in the round trip).

Repeated identical triples in one sentence (about 500 per split in NYT exact) are dropped with reason
``"duplicate triple"``. Relation labels: last path segment with ``_`` -> space (``/people/person/place_lived`` ->
``place lived``), all 24 distinct; ``schema.rel`` lists them in ``rel2id`` order (:data:`RELATIONS`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import RE_INSTRUCTION

from .convert import ConversionReport, read_json_file, read_split_files, source_folder, unified_record
from .registry import Benchmark, SourceFormatError, register

# rel2id order of PRGC / CasRel (identical for NYT and NYT*)
FREEBASE_RELATIONS = (
    "/business/company/advisors",
    "/business/company/founders",
    "/business/company/industry",
    "/business/company/major_shareholders",
    "/business/company/place_founded",
    "/business/company_shareholder/major_shareholder_of",
    "/business/person/company",
    "/location/administrative_division/country",
    "/location/country/administrative_divisions",
    "/location/country/capital",
    "/location/location/contains",
    "/location/neighborhood/neighborhood_of",
    "/people/deceased_person/place_of_death",
    "/people/ethnicity/geographic_distribution",
    "/people/ethnicity/people",
    "/people/person/children",
    "/people/person/ethnicity",
    "/people/person/nationality",
    "/people/person/place_lived",
    "/people/person/place_of_birth",
    "/people/person/profession",
    "/people/person/religion",
    "/sports/sports_team/location",
    "/sports/sports_team_location/teams",
)


def relation_label(freebase: str) -> str:
    """``/people/person/place_lived`` -> ``place lived``."""
    return freebase.rstrip("/").rsplit("/", 1)[-1].replace("_", " ")


REL_LABELS = {r: relation_label(r) for r in FREEBASE_RELATIONS}
RELATIONS = list(REL_LABELS.values())
assert len(set(RELATIONS)) == len(RELATIONS) == 24

SPLIT_FILES = {"train": "train_triples.json", "dev": "val_triples.json", "test": "test_triples.json"}


def _fold(s: str) -> str:
    """Accent folding that keeps the length (one char in, one char out): ``í`` -> ``i``."""
    out = []
    for ch in s:
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if len(base) == 1 else ch)
    return "".join(out)


def token_occurrences(text: str, mention: str) -> list[int]:
    """Start offsets of ``mention`` in ``text`` that begin and end on a token boundary (space or edge)."""
    hits, i = [], text.find(mention)
    while mention and i >= 0:
        j = i + len(mention)
        if (i == 0 or text[i - 1] == " ") and (j == len(text) or text[j] == " "):
            hits.append(i)
        i = text.find(mention, i + 1)
    return hits


def _inside_longer(text: str, start: int, mention: str, others: set[str]) -> bool:
    """Whether ``text[start:start+len(mention)]`` lies inside an occurrence of a longer entity string of the sentence."""
    end = start + len(mention)
    for other in others:
        if len(other) <= len(mention) or mention not in other:
            continue
        for s in token_occurrences(text, other):
            if s <= start and end <= s + len(other):
                return True
    return False


def locate(text: str, mention: str, split: str, where: str, report: ConversionReport,
           others: set[str] = frozenset(), avoid: int | None = None) -> dict[str, Any] | None:
    """Find ``mention`` in ``text`` following the module policy; ``None`` if not found (caller drops).

    ``others`` = the other entity strings of the sentence: an occurrence inside one of them (``York`` inside
    ``New York``) is only used when there is no free-standing one. ``avoid`` = a start offset not to use when
    another occurrence exists (the head's, when head and tail strings are identical).
    """
    original = text
    hits = token_occurrences(text, mention)
    if not hits:
        folded = _fold(text)
        hits = token_occurrences(folded, _fold(mention))
        if hits:
            report.note(split, "matched after accent folding", f"{where}: {mention!r}")
            text, mention, others = folded, _fold(mention), {_fold(o) for o in others}
    if not hits:
        return None
    free = [h for h in hits if not _inside_longer(text, h, mention, others)]
    if free and free != hits:
        report.note(split, "occurrence inside a longer entity skipped", f"{where}: {mention!r}")
        hits = free
    if avoid is not None and len(hits) > 1 and avoid in hits:
        report.note(split, "identical head and tail strings: next occurrence used for the tail", f"{where}: {mention!r}")
        hits = [h for h in hits if h != avoid]
    elif len(hits) > 1:
        report.note(split, "ambiguous mention (first occurrence used)", f"{where}: {mention!r} x{len(hits)}")
    s = hits[0]
    return {"text": original[s : s + len(mention)], "span": [s, s + len(mention)]}


def _read_split(path: Path, dataset: str, split: str, instruction: str,
                report: ConversionReport) -> Iterator[dict[str, Any]]:
    data = read_json_file(path, list, "expected a JSON list of {text, triple_list}")
    for n, item in enumerate(data):
        where = f"{split}[{n}]"
        try:
            text, triples = item["text"], item["triple_list"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            rels, seen = [], set()
            names = {t[0] for t in triples if t and isinstance(t[0], str)} | {
                t[-1] for t in triples if t and isinstance(t[-1], str)}
            for triple in triples:
                subj, rel, obj = triple
                if rel not in REL_LABELS:
                    raise SourceFormatError(path, n + 1, f"{where}: unknown relation {rel!r}")
                key = (subj, rel, obj)
                if key in seen:
                    report.drop(split, "duplicate triple", f"{where}: {list(key)}")
                    continue
                seen.add(key)
                head = locate(text, subj, split, where, report, names - {subj})
                avoid = head["span"][0] if head is not None and subj == obj else None
                tail = locate(text, obj, split, where, report, names - {obj}, avoid)
                if head is None or tail is None:
                    report.drop(split, "entity not found in text", f"{where}: {list(key)}")
                    continue
                rels.append({"relation": REL_LABELS[rel], "head": head, "tail": tail})
        except SourceFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            # the list index stands in for the line: the file is one pretty-printed JSON document
            raise SourceFormatError(path, n + 1, f"{where}: malformed item ({type(exc).__name__}: {exc})") from None
        yield unified_record(f"{dataset}.{split}.{n}", instruction, {"rel": list(RELATIONS)}, text, {"rel": rels})


def _reader(dataset: str, subdir: str):
    def read_splits(
        src_dir: Path, instruction: str = RE_INSTRUCTION, report: ConversionReport | None = None
    ) -> dict[str, Iterator[dict[str, Any]]]:
        """``{split: records}``; ``src_dir`` is the folder with ``*_triples.json`` or its parent (``shared/data/nyt``)."""
        report = report or ConversionReport(dataset)
        return read_split_files(
            source_folder(src_dir, subdir), SPLIT_FILES,
            lambda path, split: _read_split(path, dataset, split, instruction, report), report,
        )

    return read_splits


HOW_TO_TRAIN = (
    "train split missing from every snapshot: download PRGC's NYT data (hy-struggle/PRGC README, data/NYT/"
    "train_triples.json, same files as CasRel's) and put train_triples.json next to val_triples.json"
)

for _name, _subdir, _match in (("nyt", "NYT", "exact match (CasRel/PRGC *_triples.json, no offsets)"),
                               ("nyt-star", "NYT-star", "partial match (last word of each entity)")):
    register(
        Benchmark(
            name=_name,
            task="re",
            read_splits=_reader(_name, _subdir),
            instruction=RE_INSTRUCTION,
            source=f"{_name.upper().replace('-STAR', '*')} {_match}, hy-struggle/PRGC @ 8bbaf340 data/{_subdir}",
            status="real",
            shared_subdir=f"nyt/{_subdir}",
            how_to_obtain=HOW_TO_TRAIN.replace("data/NYT/", f"data/{_subdir}/"),
        )
    )
