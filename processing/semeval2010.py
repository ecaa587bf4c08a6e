"""SemEval-2010 Task 8 (9 directed relations between two marked nominals, + ``Other``) -> unified joint NER + RE records.

Source format (``shared/data/semeval2010_task8/SOURCE.md``; the official ``SemEval2010_task8_all_data`` release via
roomylee/cnn-relation-extraction @ 88110201): blocks of four **CRLF** lines::

    1<TAB>"The system ... an arrayed <e1>configuration</e1> of antenna <e2>elements</e2>."
    Component-Whole(e2,e1)
    Comment: Not a collection: there is structure here, organisation.
    <blank>

Splits: train = ``SemEval2010_task8_training/TRAIN_FILE.TXT`` (8000, ids 1..8000), test =
``SemEval2010_task8_testing_keys/TEST_FILE_FULL.TXT`` (2717, ids 8001..10717). There is **no official dev split** and
none is made here (papers hold out 800 or 1000 train sentences; do that downstream, e.g. ``ds.train_test_split``).

Unified record (id ``semeval2010_task8.<split>.<sentence id>``): ``text`` = the sentence with its outer pair of
quotes and the four ``<e1>``/``</e1>``/``<e2>``/``</e2>`` markers removed (nothing else changes; the nominals' char
spans are exact). ``schema.ent = ["entity"]``: both nominals are entities of the neutral type ``entity`` (the
task gives no types); ``schema.rel`` = the 9 relations verbalised (``Cause-Effect -> cause effect``, ...,
:data:`RELATIONS`). A label ``Rel(e1,e2)`` gives ``head = e1, tail = e2``; ``Rel(e2,e1)`` gives ``head = e2,
tail = e1`` -- the head always fills the relation's first role (the cause of ``cause effect``, the component of
``component whole``). ``Other`` gives a record with the two entities and no relation (real "no relation"
supervision: 1410 train / 454 test). A block that does not follow the format (missing or repeated marker, label
not ``Rel(e1,e2)`` / ``Rel(e2,e1)`` / ``Other``, unknown relation, no comment line) raises
:class:`SourceFormatError` naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import JOINT_INSTRUCTION

from .convert import ConversionReport, register_split_files, unified_record
from .registry import SourceFormatError

SPLIT_FILES = {
    "train": "SemEval2010_task8_training/TRAIN_FILE.TXT",
    "test": "SemEval2010_task8_testing_keys/TEST_FILE_FULL.TXT",
}
DATASET = "semeval2010_task8"
ENTITY = "entity"

#: upstream relation -> label (official order of the task description)
REL_LABELS = {
    "Cause-Effect": "cause effect",
    "Instrument-Agency": "instrument agency",
    "Product-Producer": "product producer",
    "Content-Container": "content container",
    "Entity-Origin": "entity origin",
    "Entity-Destination": "entity destination",
    "Component-Whole": "component whole",
    "Member-Collection": "member collection",
    "Message-Topic": "message topic",
}
RELATIONS = list(REL_LABELS.values())

_LABEL = re.compile(r"^(?P<rel>[A-Za-z-]+)\((?P<first>e[12]),(?P<second>e[12])\)$")
_MARKER = re.compile(r"</?e[12]>")


def strip_markers(sentence: str, path: Path, line: int) -> tuple[str, dict[str, list[int]]]:
    """``'a <e1>b</e1> c <e2>d</e2>'`` -> ``('a b c d', {"e1": [2, 3], "e2": [6, 7]})``; each marker exactly once,
    opening before closing, the two nominals non-empty and disjoint (else :class:`SourceFormatError`)."""
    out: list[str] = []
    pos, length = 0, 0
    opened: dict[str, int] = {}
    spans: dict[str, list[int]] = {}
    for m in _MARKER.finditer(sentence):
        out.append(sentence[pos:m.start()])
        length += m.start() - pos
        pos = m.end()
        tag = m.group()
        name = tag.strip("</>")
        if not tag.startswith("</"):
            if name in opened:
                raise SourceFormatError(path, line, f"marker {tag} repeated")
            opened[name] = length
        else:
            if name not in opened or name in spans:
                raise SourceFormatError(path, line, f"marker {tag} without a single opening <{name}>")
            spans[name] = [opened[name], length]
    out.append(sentence[pos:])
    if sorted(spans) != ["e1", "e2"]:
        raise SourceFormatError(path, line, f"expected one <e1>..</e1> and one <e2>..</e2>, found {sorted(spans)}")
    (s1, e1), (s2, e2) = spans["e1"], spans["e2"]
    if s1 >= e1 or s2 >= e2 or (s1 < e2 and s2 < e1):
        raise SourceFormatError(path, line, f"empty or overlapping nominals {spans}")
    return "".join(out), spans


def iter_blocks(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number of the block's first line, its non-blank lines)`` for each blank-line separated block."""
    block: list[str] = []
    start = 0
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if line.strip():
                if not block:
                    start = lineno
                block.append(line)
            elif block:
                yield start, block
                block = []
    if block:
        yield start, block


def _read_split(path: Path, split: str, instruction: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
    for start, block in iter_blocks(path):
        if len(block) != 3 or not block[2].startswith("Comment:"):
            raise SourceFormatError(path, start, f"expected 3 lines (id<TAB>\"sentence\", label, Comment:), got "
                                                 f"{len(block)}: {block[:3]!r}")
        sid, tab, quoted = block[0].partition("\t")
        if not tab or not sid.strip().isdigit():
            raise SourceFormatError(path, start, f"expected id<TAB>\"sentence\", got {block[0][:80]!r}")
        quoted = quoted.strip()
        if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
            raise SourceFormatError(path, start, "sentence is not wrapped in double quotes")
        text, spans = strip_markers(quoted[1:-1], path, start)  # only the outer pair of quotes is stripped
        ents = {k: {"text": text[s:e], "span": [s, e]} for k, (s, e) in spans.items()}
        label = block[1].strip()
        rels = []
        if label != "Other":
            m = _LABEL.match(label)
            if m is None or {m["first"], m["second"]} != {"e1", "e2"}:
                raise SourceFormatError(path, start + 1, f"label {label!r} is not Rel(e1,e2), Rel(e2,e1) or Other")
            if m["rel"] not in REL_LABELS:
                raise SourceFormatError(path, start + 1, f"unknown relation {m['rel']!r}; expected {sorted(REL_LABELS)}")
            rels.append({"relation": REL_LABELS[m["rel"]], "head": ents[m["first"]], "tail": ents[m["second"]]})
        ans = {"ent": [{"type": ENTITY, **ents[k]} for k in ("e1", "e2")], "rel": rels}
        yield unified_record(f"{DATASET}.{split}.{sid.strip()}", instruction, {"ent": [ENTITY], "rel": RELATIONS},
                             text, ans)


read_splits = register_split_files(
    DATASET, "re", SPLIT_FILES, _read_split, JOINT_INSTRUCTION,
    "SemEval-2010 Task 8 official release (TRAIN_FILE.TXT, TEST_FILE_FULL.TXT; inline <e1>/<e2> markers), "
    "roomylee/cnn-relation-extraction @ 88110201",
    shared_subdir="semeval2010_task8",
).read_splits
