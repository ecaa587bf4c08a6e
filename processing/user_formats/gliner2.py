"""GLiNER2 training data (JSONL: ``input`` + ``output``) -> unified records (entities, relations, classes).

Format (GLiNER2's training tutorial): one object a line (or a JSON list), ``{"input": text, "output": {...}}`` or
``{"text": text, "schema": {...}}``, where the dict holds any of

* ``entities``: ``{type: [mention, ...]}`` — a mention is a string (located in the text, below) or
  ``{"text", "start", "end"}`` with character offsets (checked against the text);
* ``entity_descriptions``: ``{type: description}`` -> label descriptions of ``ent`` (GLiNER2's described schema);
* ``relations``: ``[{relation: {"head": mention, "tail": mention}}, ...]``;
* ``classifications``: ``[{"task", "labels", "true_label": label | [labels], "multi_label"?, "label_descriptions"?}]``
  -> ``cls`` (the labels of every task; the true labels are the gold classes);
* ``json_structures`` / ``json_descriptions``: GLiNER2's JSON records, not supported by LDNet yet: **dropped and
  counted** (``"json structure (not supported)"``), never silently.

Locating string mentions (no offsets): entities follow Pile-NER's policy (``processing.pilener``: every occurrence on
word boundaries is tagged, an occurrence inside a longer mention of the same type is skipped, repeated strings are
noted ``"ambiguous mention (every occurrence tagged)"``, a string not found is dropped and counted); a relation's
head and tail take WebNLG's closest-pair rule (``processing.webnlg.locate_pair``: ambiguous pairs noted, unplaced
ones dropped and counted). Unknown keys of ``output`` raise :class:`~processing.registry.SourceFormatError` naming
the file, the line and the key. Record id: ``id`` of the item, else ``<file stem>.<index>``; ``schema`` = the sorted
labels of every split (after ``label_map``), with the descriptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..convert import ConversionReport
from ..pilener import passage_entities
from ..registry import SourceFormatError
from ..webnlg import locate_pair
from ._common import AUTO_INSTRUCTION, Dedup, Labels, discover_files, load_json_items, pick_instruction

SUFFIXES = (".json", ".jsonl")
OUTPUT_KEYS = ("entities", "entity_descriptions", "relations", "classifications", "json_structures",
               "json_descriptions")
STRUCTURE = "json structure (not supported)"
AMBIGUOUS_PAIR = "ambiguous relation argument (closest pair used)"


def _example(obj: dict, path: Path, pos: int) -> tuple[str, dict]:
    text = obj.get("input", obj.get("text"))
    out = obj.get("output", obj.get("schema"))
    if not isinstance(text, str):
        raise SourceFormatError(path, pos, "field 'input' (or 'text'): expected a string")
    if not isinstance(out, dict):
        raise SourceFormatError(path, pos, "field 'output' (or 'schema'): expected an object")
    unknown = sorted(set(out) - set(OUTPUT_KEYS))
    if unknown:
        raise SourceFormatError(path, pos, f"field 'output.{unknown[0]}': unknown key (allowed: {list(OUTPUT_KEYS)})")
    return text, out


def _offset_mention(text: str, m: dict, where: str, path: Path, pos: int) -> dict[str, Any]:
    s, e = m.get("start"), m.get("end")
    ok = all(isinstance(x, int) and not isinstance(x, bool) for x in (s, e)) and 0 <= s < e <= len(text)
    if not ok or text[s:e] != m.get("text"):
        raise SourceFormatError(path, pos, f"{where}: {m!r:.80} is not [start, end) of its text in the input")
    return {"text": text[s:e], "span": [s, e]}


def read_splits(
    src_dir: Path,
    instruction: str = AUTO_INSTRUCTION,
    report: ConversionReport | None = None,
    label_map: Any = None,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for one GLiNER2 file or a folder of them (``train``/``dev``/``test`` in the names)."""
    report = report or ConversionReport("gliner2")
    labels = Labels(label_map)
    descriptions: dict[str, str] = {}
    parsed: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for split, files in discover_files(Path(src_dir), SUFFIXES, report).items():
        items = parsed.setdefault(split, [])
        for path in files:
            for n, (pos, obj) in enumerate(load_json_items(path, (), "a GLiNER2 example")):
                text, out = _example(obj, path, pos)
                rid = str(obj["id"]) if obj.get("id") not in (None, "") else f"{path.stem}.{n}"
                where = f"{path.name}:{pos}"
                items.append((rid, text, _answers(text, out, where, split, labels, descriptions, report, path, pos)))
    schema = labels.schema()
    if descriptions and "ent" in schema:
        schema["ent"] = {lab: descriptions.get(lab) for lab in schema["ent"]}
    inst = pick_instruction(instruction, schema)

    def gen(rows: list[tuple[str, str, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        for rid, text, ans in rows:
            yield {"id": rid, "instruction": inst, "schema": schema, "text": text, "bg": "",
                   "ans": {k: v for k, v in ans.items() if k in schema and v}}

    return {split: gen(rows) for split, rows in parsed.items()}


def _answers(text: str, out: dict, where: str, split: str, labels: Labels, descriptions: dict[str, str],
             report: ConversionReport, path: Path, pos: int) -> dict[str, Any]:
    ans: dict[str, list] = {"ent": [], "rel": [], "cls": []}
    dedup = Dedup(report, split, where)
    ents = out.get("entities") or {}
    if not isinstance(ents, dict):
        raise SourceFormatError(path, pos, "field 'output.entities': expected {type: [mentions]}")
    for typ, mentions in ents.items():
        if not isinstance(mentions, list):
            raise SourceFormatError(path, pos, f"field 'output.entities.{typ}': expected a list of mentions")
        lab = labels("ent", typ)
        strings = [m for m in mentions if isinstance(m, str)]
        found = passage_entities(text, lab, strings, where, split, report)
        for j, m in enumerate(mentions):
            if isinstance(m, dict):
                found.append({"type": lab, **_offset_mention(text, m, f"output.entities.{typ}[{j}]", path, pos)})
            elif not isinstance(m, str):
                raise SourceFormatError(path, pos, f"field 'output.entities.{typ}[{j}]': expected a string or "
                                                   "{text, start, end}")
        ans["ent"] += [e for e in found if dedup.fresh("entity", (e["type"], *e["span"]))]
    for typ, desc in (out.get("entity_descriptions") or {}).items():
        lab = labels("ent", typ)
        if not isinstance(desc, str) or not desc.strip():
            raise SourceFormatError(path, pos, f"field 'output.entity_descriptions.{typ}': expected a non-empty string")
        if descriptions.setdefault(lab, desc) != desc:
            report.note(split, "two descriptions of one label (first kept)", f"{where} {lab!r}")
    for j, item in enumerate(out.get("relations") or []):
        if not isinstance(item, dict) or len(item) != 1:
            raise SourceFormatError(path, pos, f"field 'output.relations[{j}]': expected {{relation: {{head, tail}}}}")
        (rel, args), = item.items()
        if not isinstance(args, dict) or not {"head", "tail"} <= set(args):
            raise SourceFormatError(path, pos, f"field 'output.relations[{j}].{rel}': expected {{head, tail}}")
        head, tail = args["head"], args["tail"]
        if isinstance(head, dict) and isinstance(tail, dict):
            h = _offset_mention(text, head, f"output.relations[{j}].head", path, pos)
            t = _offset_mention(text, tail, f"output.relations[{j}].tail", path, pos)
        elif isinstance(head, str) and isinstance(tail, str):
            others = {e["text"] for e in ans["ent"]} | {head, tail}
            place = locate_pair(text, head, tail, others)
            if place.reason is not None:
                report.drop(split, place.reason, f"{where} {rel!r}: {[head, tail]}")
                continue
            if place.ambiguous:
                report.note(split, AMBIGUOUS_PAIR, f"{where} {rel!r}: {[head, tail]}")
            h = {"text": text[place.head[0]:place.head[1]], "span": place.head}
            t = {"text": text[place.tail[0]:place.tail[1]], "span": place.tail}
        else:
            raise SourceFormatError(path, pos, f"field 'output.relations[{j}].{rel}': head and tail must both be "
                                               "strings or both {text, start, end}")
        r = {"relation": labels("rel", rel), "head": h, "tail": t}
        if dedup.fresh("relation", (r["relation"], *h["span"], *t["span"])):
            ans["rel"].append(r)
    for j, task in enumerate(out.get("classifications") or []):
        if not isinstance(task, dict) or not isinstance(task.get("labels"), list) or "true_label" not in task:
            raise SourceFormatError(path, pos, f"field 'output.classifications[{j}]': expected {{task, labels, "
                                               "true_label}")
        true = task["true_label"] if isinstance(task["true_label"], list) else [task["true_label"]]
        bad = [x for x in true if x not in task["labels"]]
        if bad:
            raise SourceFormatError(path, pos, f"field 'output.classifications[{j}].true_label': {bad[0]!r} is not one "
                                               f"of its labels {task['labels']}")
        for lab in task["labels"]:
            labels("cls", lab)
        ans["cls"] += [labels("cls", x) for x in true if labels("cls", x) not in ans["cls"]]
    for key in ("json_structures", "json_descriptions"):
        for _ in out.get(key) or []:
            report.drop(split, STRUCTURE, f"{where} {key}")
    return ans
