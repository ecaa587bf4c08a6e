"""brat standoff (``DOC.txt`` + ``DOC.ann``) -> unified records (entities, discontinuous entities, relations, events).

Format (https://brat.nlplab.org/standoff.html). Offsets are character offsets into ``DOC.txt`` read as is (no
newline translation: brat counts a ``\\r``), ``[start, end)``. One annotation a line, tab separated::

    T1	Person 0 11	Jerry Smith                       text-bound: id, "TYPE START END[;START END]...", text
    T2	Disorder 7 13;24 31	cramps arms                fragments are joined by a space in the text column
    R1	Lives_in Arg1:T1 Arg2:T3                          relation: exactly two arguments (first = head)
    E1	Attack:T4 Attacker:T1 Target:T5 Target2:T6        event: TYPE:TRIGGER, then ROLE:ID (ID = T or E)
    A1	Negation E1                                       attribute / M1 modification   (validated, dropped)
    N1	Reference T1 Wikipedia:534366	Barack Obama     normalization                 (validated, dropped)
    #1	AnnotatorNotes T1	some note                       note                          (validated, dropped)
    *	Equiv T1 T2                                       equivalence                   (validated, dropped)

Mapping:

* a ``T`` that is some event's trigger -> that event's ``trigger``; a ``T`` typed like an event but named by no
  ``E`` line is dropped (reported: a trigger without its event); every other ``T`` -> an entity. With
  ``discontinuous="auto"`` (default) all entities go to ``ans.discontinuous_ent`` (contiguous ones as one-part
  lists) when any entity of the loaded files has several fragments, else to ``ans.ent``; ``true`` / ``false``
  force it (``false`` drops multi-fragment entities, reported);
* ``R`` -> ``ans.rel`` (an argument that is an event uses its trigger's span);
* ``E`` -> ``ans.event``; a nested event argument (``Cause:E2``) uses ``E2``'s trigger span; role names lose
  brat's repetition suffix (``Theme2`` -> ``Theme``, noted) unless ``strip_role_numbers=false``;
* ``A``/``M``/``N``/``#``/``*`` lines have no counterpart in the unified record: each is checked (its ids must
  exist) and reported as a drop with its kind, never ignored silently.

Items the record cannot hold are dropped with a reason: a relation or event argument that is a discontinuous
entity, a discontinuous trigger. The ``text`` column of a ``T`` line must equal the document text at its offsets
(fragments joined by ``" "``), else :class:`~processing.registry.SourceFormatError` names the ``.ann`` file and
line; so does any malformed line or unknown id.

A source is a ``.ann`` / ``.txt`` file or a folder searched recursively; documents under a folder named
``train`` / ``dev`` (``valid``...) / ``test`` form that split, others go to ``train``. One record per document with
``segment="document"`` (default; long texts are windowed by the processor) or per non-blank line with
``segment="line"`` (an item spanning two lines is dropped, reported). Id: the document path relative to the
source without suffix (``+ ".<line index>"`` per line).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..convert import ConversionReport, as_bool
from ..registry import SourceFormatError
from ._common import AUTO_INSTRUCTION, Dedup, Labels, finish, mention, split_of

_ID = r"[A-Za-z#]\d+\S*"
_T_RE = re.compile(r"^(?P<type>\S+) (?P<frags>\d+ \d+(?:;\d+ \d+)*)$")
_ARG_RE = re.compile(rf"^(?P<role>[^:\s]+):(?P<id>{_ID})$")
_DROPPED_KINDS = {"A": "attribute (A line)", "M": "modification (M line)", "N": "normalization (N line)",
                  "#": "note (# line)", "*": "equivalence (* line)"}


@dataclass
class _Doc:
    """The parsed annotations of one document."""

    text: str
    ents: dict[str, tuple[str, list[tuple[int, int]], int]] = field(default_factory=dict)  # id -> (type, frags, line)
    rels: list[tuple[str, str, str, int]] = field(default_factory=list)  # (type, head id, tail id, line)
    events: dict[str, tuple[str, str, list[tuple[str, str]], int]] = field(default_factory=dict)
    others: list[tuple[str, list[str], int]] = field(default_factory=list)  # (kind, referenced ids, line)
    rel_ids: set[str] = field(default_factory=set)


def parse_ann(ann: Path, text: str) -> _Doc:
    """Parse one ``.ann`` file against its document text; every malformed line raises SourceFormatError."""
    doc = _Doc(text)
    with ann.open(encoding="utf-8", newline="") as fh:
        lines = fh.read().split("\n")
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        cols = line.split("\t")
        ident = cols[0]
        kind = ident[:1]
        if kind in ("T", "R", "E") and (ident in doc.ents or ident in doc.events or ident in doc.rel_ids):
            raise SourceFormatError(ann, lineno, f"id {ident!r} is used twice")
        if kind == "T":
            m = _T_RE.match(cols[1]) if len(cols) >= 3 else None
            if not m:
                raise SourceFormatError(ann, lineno, f"bad text-bound annotation {line!r} "
                                                     "(expected 'T<n>\\tTYPE START END[;START END]*\\tTEXT')")
            frags = [(int(a), int(b)) for a, b in (f.split(" ") for f in m["frags"].split(";"))]
            for s, e in frags:
                if not 0 <= s < e <= len(text):
                    raise SourceFormatError(ann, lineno, f"{ident}: fragment [{s}, {e}) outside the text "
                                                         f"({len(text)} characters) or empty")
            got = " ".join(text[s:e] for s, e in frags)
            if got != "\t".join(cols[2:]):
                raise SourceFormatError(ann, lineno, f"{ident}: text column {cols[2]!r} != document text {got!r} "
                                                     "at its offsets (was the .txt re-encoded or its newlines changed?)")
            doc.ents[ident] = (m["type"], frags, lineno)
        elif kind == "R":
            parts = cols[1].split(" ") if len(cols) >= 2 else []
            args = [_ARG_RE.match(p) for p in parts[1:]]
            if len(parts) != 3 or not all(args):
                raise SourceFormatError(ann, lineno, f"bad relation {line!r} (expected 'R<n>\\tTYPE Arg1:ID Arg2:ID')")
            doc.rels.append((parts[0], args[0]["id"], args[1]["id"], lineno))
            doc.rel_ids.add(ident)
        elif kind == "E":
            parts = cols[1].split(" ") if len(cols) >= 2 else []
            args = [_ARG_RE.match(p) for p in parts]
            if not parts or not all(args):
                raise SourceFormatError(ann, lineno, f"bad event {line!r} (expected 'E<n>\\tTYPE:TRIGGER ROLE:ID ...')")
            doc.events[ident] = (args[0]["role"], args[0]["id"], [(a["role"], a["id"]) for a in args[1:]], lineno)
        elif kind in ("A", "M"):
            parts = cols[1].split(" ") if len(cols) >= 2 else []
            if len(parts) not in (2, 3):
                raise SourceFormatError(ann, lineno, f"bad attribute {line!r} (expected 'A<n>\\tNAME ID [VALUE]')")
            doc.others.append((kind, [parts[1]], lineno))
        elif kind == "N":
            parts = cols[1].split(" ") if len(cols) >= 2 else []
            if len(parts) != 3:
                raise SourceFormatError(ann, lineno, f"bad normalization {line!r} (expected 'N<n>\\tReference ID "
                                                     "DB:ENTRY\\tTEXT')")
            doc.others.append((kind, [parts[1]], lineno))
        elif kind == "#":
            parts = cols[1].split(" ") if len(cols) >= 2 else []
            if len(parts) != 2:
                raise SourceFormatError(ann, lineno, f"bad note {line!r} (expected '#<n>\\tAnnotatorNotes ID\\tNOTE')")
            doc.others.append((kind, [parts[1]], lineno))
        elif kind == "*":
            parts = cols[1].split(" ") if len(cols) >= 2 else []
            if len(parts) < 3:
                raise SourceFormatError(ann, lineno, f"bad equivalence {line!r} (expected '*\\tEquiv ID ID ...')")
            doc.others.append((kind, parts[1:], lineno))
        else:
            raise SourceFormatError(ann, lineno, f"unknown annotation line {line!r} (brat ids start with T, R, E, "
                                                 "A, M, N, # or *)")
    known = set(doc.ents) | set(doc.events)
    for etype, trig, args, lineno in doc.events.values():
        if trig not in doc.ents:
            raise SourceFormatError(ann, lineno, f"event {etype}: trigger {trig!r} is not a T annotation")
        for role, target in args:
            if target not in known:
                raise SourceFormatError(ann, lineno, f"event {etype}: argument {role}:{target} does not exist")
    for rtype, head, tail, lineno in doc.rels:
        for target in (head, tail):
            if target not in known:
                raise SourceFormatError(ann, lineno, f"relation {rtype}: argument {target!r} does not exist")
    referable = known | doc.rel_ids
    for kind, refs, lineno in doc.others:
        for ref in refs:
            if ref not in referable:
                raise SourceFormatError(ann, lineno, f"{_DROPPED_KINDS[kind]} refers to {ref!r}, which does not exist")
    return doc


def _documents(src: Path, report: ConversionReport) -> dict[str, list[tuple[str, Path, Path]]]:
    """``{split: [(doc id, txt, ann)]}`` for a ``.ann``/``.txt`` file or a folder searched recursively."""
    if src.is_file():
        base = src.with_suffix("")
        pairs = [base]
        root = src.parent
    else:
        pairs = sorted(p.with_suffix("") for p in src.rglob("*.ann"))
        root = src
        if not pairs:
            raise FileNotFoundError(f"{src}: no .ann file (brat standoff)")
        for txt in sorted(src.rglob("*.txt")):
            if not txt.with_suffix(".ann").is_file():
                report.drop("train", "document without .ann file", str(txt.relative_to(src)))
    out: dict[str, list[tuple[str, Path, Path]]] = {}
    for base in pairs:
        txt, ann = base.with_suffix(".txt"), base.with_suffix(".ann")
        if not txt.is_file():
            raise FileNotFoundError(f"{ann}: its document {txt} does not exist")
        if not ann.is_file():
            raise FileNotFoundError(f"{txt}: its annotation file {ann} does not exist")
        rel = base.relative_to(root)
        split = next((s for s in (split_of(p) for p in rel.parts[:-1]) if s), None) or "train"
        out.setdefault(split, []).append((rel.as_posix(), txt, ann))
    return out


def _line_segments(text: str) -> list[tuple[int, int]]:
    """``[(start, end)]`` of the non-blank lines of ``text`` (``\\r`` excluded)."""
    out, pos = [], 0
    for line in text.split("\n"):
        end = pos + len(line.rstrip("\r"))
        if line.strip():
            out.append((pos, end))
        pos += len(line) + 1
    return out


def _segment(rid: str, text: str, ans: dict[str, Any], split: str, report: ConversionReport
             ) -> list[tuple[str, str, dict[str, Any]]]:
    """Cut one document record into one record per non-blank line; items spanning two lines are dropped."""
    segs = _line_segments(text)

    def spans_of(kind: str, item: dict[str, Any]) -> list[list[int]]:
        if kind == "discontinuous_ent":
            return [list(s) for s in item["span"]]
        if kind == "rel":
            return [item["head"]["span"], item["tail"]["span"]]
        if kind == "event":
            return [item["trigger"]["span"]] + [a["span"] for a in item["args"]]
        return [item["span"]]

    def shift(kind: str, item: dict[str, Any], off: int, seg_text: str) -> dict[str, Any]:
        def m(sp: list[int]) -> dict[str, Any]:
            return mention(seg_text, sp[0] - off, sp[1] - off)

        if kind == "discontinuous_ent":
            spans = [[s - off, e - off] for s, e in item["span"]]
            return {"type": item["type"], "text": " ".join(seg_text[s:e] for s, e in spans), "span": spans}
        if kind == "rel":
            return {"relation": item["relation"], "head": m(item["head"]["span"]), "tail": m(item["tail"]["span"])}
        if kind == "event":
            return {"event_type": item["event_type"], "trigger": m(item["trigger"]["span"]),
                    "args": [{"role": a["role"], **m(a["span"])} for a in item["args"]]}
        return {"type": item["type"], **m(item["span"])}

    per_seg: list[dict[str, list[Any]]] = [{} for _ in segs]
    for kind, items in ans.items():
        for item in items:
            spans = spans_of(kind, item)
            k = next((i for i, (a, b) in enumerate(segs) if all(a <= s and e <= b for s, e in spans)), None)
            if k is None:
                report.drop(split, f"{kind} spans two lines (segment=line)", f"{rid} {spans}")
                continue
            per_seg[k].setdefault(kind, []).append(shift(kind, item, segs[k][0], text[segs[k][0]:segs[k][1]]))
    return [(f"{rid}.{i}", text[a:b], per_seg[i]) for i, (a, b) in enumerate(segs)]


def read_splits(
    src_dir: Path,
    instruction: str = AUTO_INSTRUCTION,
    report: ConversionReport | None = None,
    discontinuous: Any = "auto",
    strip_role_numbers: Any = True,
    segment: str = "document",
    label_map: Any = None,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for a brat document (``.ann``/``.txt``) or a folder of them."""
    report = report or ConversionReport("brat")
    if segment not in ("document", "line"):
        raise ValueError(f"brat: segment must be 'document' or 'line', got {segment!r}")
    auto_disc = str(discontinuous).strip().lower() == "auto"
    force_disc = None if auto_disc else as_bool(discontinuous, "brat: discontinuous (auto, true or false)")
    strip_roles = as_bool(strip_role_numbers, "brat: strip_role_numbers")
    docs: dict[str, list[tuple[str, Path, _Doc]]] = {}
    for split, pairs in _documents(Path(src_dir), report).items():
        for rid, txt, ann in pairs:
            with txt.open(encoding="utf-8", newline="") as fh:  # brat offsets count every character, \r included
                text = fh.read()
            docs.setdefault(split, []).append((rid, ann, parse_ann(ann, text)))
    triggers = {(id(d), ev[1]) for split_docs in docs.values() for _, _, d in split_docs for ev in d.events.values()}
    # a T typed like an event but named by no E line is a trigger without its event, not an entity
    event_types = {ev[0] for split_docs in docs.values() for _, _, d in split_docs for ev in d.events.values()}
    if force_disc is None:
        disc = any(len(frags) > 1 for split_docs in docs.values() for _, _, d in split_docs
                   for eid, (etype, frags, _) in d.ents.items()
                   if (id(d), eid) not in triggers and etype not in event_types)
    else:
        disc = force_disc
    labels = Labels(label_map)
    parsed: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for split, split_docs in docs.items():
        items = parsed.setdefault(split, [])
        for rid, ann, d in split_docs:
            text = d.text
            dedup = Dedup(report, split, str(rid))
            where = ann.name

            def contiguous(ref: str, what: str, lineno: int, d: _Doc = d, where: str = where) -> list[int] | None:
                """The single span of a T (or of an E's trigger); None (+ drop) if it has several fragments."""
                tid = d.events[ref][1] if ref in d.events else ref
                frags = d.ents[tid][1]
                if len(frags) > 1:
                    report.drop(split, f"{what} is discontinuous", f"{where}:{lineno} {ref}")
                    return None
                return list(frags[0])

            ans: dict[str, list[Any]] = {"ent": [], "discontinuous_ent": [], "rel": [], "event": []}
            for eid, (etype, frags, lineno) in d.ents.items():
                if (id(d), eid) in triggers:
                    continue
                if etype in event_types:
                    report.drop(split, "trigger without an event (no E line)", f"{where}:{lineno} {eid}")
                    continue
                if disc:
                    key = (etype, tuple(frags))
                    if dedup.fresh("entity", key):
                        ans["discontinuous_ent"].append({"type": labels("discontinuous_ent", etype),
                                                         "text": " ".join(text[s:e] for s, e in frags),
                                                         "span": [list(f) for f in frags]})
                elif len(frags) > 1:
                    report.drop(split, "discontinuous entity (discontinuous=false)", f"{where}:{lineno} {eid}")
                elif dedup.fresh("entity", (etype, *frags[0])):
                    ans["ent"].append({"type": labels("ent", etype), **mention(text, *frags[0])})
            for rtype, head, tail, lineno in d.rels:
                h = contiguous(head, "relation argument", lineno)
                t = contiguous(tail, "relation argument", lineno)
                if h is None or t is None or not dedup.fresh("relation", (rtype, *h, *t)):
                    continue
                ans["rel"].append({"relation": labels("rel", rtype), "head": mention(text, *h),
                                   "tail": mention(text, *t)})
            for eid, (etype, trig, args, lineno) in d.events.items():
                tspan = contiguous(trig, "event trigger", lineno)
                if tspan is None:
                    continue
                ev_type = labels("event", etype)
                ev_args = []
                for role, target in args:
                    if strip_roles and re.fullmatch(r".*\D\d+", role):
                        report.note(split, "numbered role name stripped (Theme2 -> Theme)", f"{where}:{lineno} {role}")
                        role = role.rstrip("0123456789")
                    sp = contiguous(target, "event argument", lineno)
                    if sp is not None and dedup.fresh("event argument", (eid, role, *sp)):
                        ev_args.append({"role": labels.role(ev_type, role), **mention(text, *sp)})
                if dedup.fresh("event", (etype, *tspan, tuple((a["role"], *a["span"]) for a in ev_args))):
                    labels.roles.setdefault(ev_type, set())
                    ans["event"].append({"event_type": ev_type, "trigger": mention(text, *tspan), "args": ev_args})
            for kind, refs, lineno in d.others:
                report.drop(split, f"{_DROPPED_KINDS[kind]} not representable", f"{where}:{lineno} {' '.join(refs)}")
            ans = {k: v for k, v in ans.items() if v}
            if segment == "line":
                items.extend(_segment(rid, text, ans, split, report))
            else:
                items.append((rid, text, ans))
    return finish(parsed, labels, instruction)
