"""Label Studio JSON exports (text tasks: spans, relations, choices) -> unified records.

Format: the "JSON" export of a Label Studio project, a list of tasks (a single task object is accepted too)::

    [{"id": 7, "data": {"text": "Jerry Smith lives in New York ."},
      "annotations": [{"id": 3, "was_cancelled": false, "ground_truth": false, "result": [
          {"id": "a1", "from_name": "label", "to_name": "text", "type": "labels",
           "value": {"start": 0, "end": 11, "text": "Jerry Smith", "labels": ["Person"]}},
          {"id": "b2", ..., "type": "labels", "value": {"start": 21, "end": 29, "text": "New York", "labels": ["City"]}},
          {"from_id": "a1", "to_id": "b2", "type": "relation", "direction": "right", "labels": ["lives in"]},
          {"id": "c3", "from_name": "sentiment", "to_name": "text", "type": "choices",
           "value": {"choices": ["Neutral"]}}]}], "predictions": [], ...}]

* ``labels`` results -> ``ans.ent`` (one entity per label of a region; ``value.text`` must equal the text at
  ``[start, end)``; Label Studio counts UTF-16 code units, so offsets after an astral character such as an emoji are
  converted to Python indices -- noted);
* ``relation`` results -> ``ans.rel`` between the regions ``from_id`` / ``to_id`` of the same annotation;
  ``direction: "right"`` (default) = from -> to, ``"left"`` = to -> from, ``"bi"`` kept as from -> to (noted); one
  relation per label; a relation without a label is dropped (reported);
* ``choices`` results -> ``ans.cls``;
* any other result type (``textarea``, ``rating``, ``hypertextlabels`` ...) is dropped with the reason
  ``unsupported result type <type>``.

Annotation choice: cancelled annotations are skipped; of the rest, the ``ground_truth`` one, else the first; every
other annotation is reported as a drop. A task with no usable annotation is dropped (reported); ``predictions`` are
not read. The text is ``data[text_key]`` (default: ``data["text"]``, else the only string field of ``data``).
Record id ``<file stem>.<task id>``; the schema is the sorted union of labels of all splits (after ``label_map``).
Malformed tasks raise :class:`~processing.registry.SourceFormatError` naming the file, the task's 1-based position
in the list, the task id and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..convert import ConversionReport
from ..registry import SourceFormatError
from ._common import AUTO_INSTRUCTION, Dedup, Labels, discover_files, finish, mention

SUFFIXES = (".json",)


def _utf16_to_py(text: str, pos: int) -> int:
    """A JavaScript (UTF-16 code unit) offset into ``text`` -> a Python (code point) offset."""
    units = 0
    for i, ch in enumerate(text):
        if units >= pos:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def _task_text(task: dict[str, Any], text_key: str | None, fail: Any) -> str:
    data = task.get("data")
    if not isinstance(data, dict):
        fail("data", "expected an object holding the task's text")
    if text_key:
        if not isinstance(data.get(text_key), str):
            fail(f"data.{text_key}", "missing or not a string (option text_key)")
        return data[text_key]
    if isinstance(data.get("text"), str):
        return data["text"]
    strings = [k for k, v in data.items() if isinstance(v, str)]
    if len(strings) != 1:
        fail("data", f"cannot tell which field holds the text ({strings or 'no string field'}); pass text_key")
    return data[strings[0]]


def _pick_annotation(task: dict[str, Any], where: str, split: str, report: ConversionReport, fail: Any
                     ) -> dict[str, Any] | None:
    anns = task.get("annotations", task.get("completions", []))
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        fail("annotations", "expected a list of annotation objects")
    usable = [a for a in anns if not a.get("was_cancelled")]
    for a in anns:
        if a.get("was_cancelled"):
            report.drop(split, "cancelled annotation", f"{where} annotation {a.get('id')}")
    if not usable:
        report.drop(split, "task without annotation", where)
        return None
    chosen = next((a for a in usable if a.get("ground_truth")), usable[0])
    for a in usable:
        if a is not chosen:
            report.drop(split, "extra annotation of a task (one is used)", f"{where} annotation {a.get('id')}")
    if not isinstance(chosen.get("result"), list):
        fail(f"annotations[id={chosen.get('id')}].result", "expected a list of results")
    return chosen


def _task(task: Any, pos: int, path: Path, split: str, text_key: str | None, labels: Labels,
          report: ConversionReport) -> tuple[str, str, dict[str, Any]] | None:
    tid = task.get("id", pos) if isinstance(task, dict) else pos
    where = f"{path.name} task {tid}"

    def fail(field: str, msg: str) -> None:
        raise SourceFormatError(path, pos, f"task {tid}, field {field!r}: {msg}")

    if not isinstance(task, dict):
        fail("<task>", f"expected an object, got {type(task).__name__}")
    text = _task_text(task, text_key, fail)
    ann = _pick_annotation(task, where, split, report, fail)
    if ann is None:
        return None
    dedup = Dedup(report, split, where)
    regions: dict[str, list[int]] = {}
    ents: list[dict[str, Any]] = []
    rels: list[dict[str, Any]] = []
    cls: list[str] = []
    relations = []
    for k, res in enumerate(ann["result"]):
        field = f"result[{k}]"
        if not isinstance(res, dict):
            fail(field, "expected an object")
        rtype = res.get("type")
        if rtype == "relation":
            relations.append((field, res))
            continue
        value = res.get("value")
        if rtype == "labels":
            if not isinstance(value, dict):
                fail(f"{field}.value", "expected an object with start, end, text and labels")
            s, e, labs = value.get("start"), value.get("end"), value.get("labels")
            if not (isinstance(s, int) and isinstance(e, int) and 0 <= s < e):
                fail(f"{field}.value", f"expected integer start < end, got start={s!r} end={e!r}")
            if not isinstance(labs, list) or not labs or not all(isinstance(x, str) and x for x in labs):
                fail(f"{field}.value.labels", f"expected a non-empty list of labels, got {labs!r}")
            if "text" in value and text[s:e] != value["text"]:
                ps, pe = _utf16_to_py(text, s), _utf16_to_py(text, e)
                if text[ps:pe] != value["text"]:
                    fail(f"{field}.value.text", f"{value['text']!r} != text[{s}:{e}] = {text[s:e]!r}")
                report.note(split, "UTF-16 offsets converted", f"{where} {field}")
                s, e = ps, pe
            if e > len(text):
                fail(f"{field}.value.end", f"{e} is past the end of the text ({len(text)} characters)")
            if isinstance(res.get("id"), str):
                regions[res["id"]] = [s, e]
            for lab in labs:
                if dedup.fresh("entity", (lab, s, e)):
                    ents.append({"type": labels("ent", lab), **mention(text, s, e)})
        elif rtype == "choices":
            choices = value.get("choices") if isinstance(value, dict) else None
            if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices):
                fail(f"{field}.value.choices", f"expected a list of strings, got {choices!r}")
            for c in choices:
                if dedup.fresh("class", c):
                    cls.append(labels("cls", c))
        else:
            report.drop(split, f"unsupported result type {rtype}", f"{where} {field}")
    for field, res in relations:
        src, dst = res.get("from_id"), res.get("to_id")
        for key, rid in (("from_id", src), ("to_id", dst)):
            if rid not in regions:
                fail(f"{field}.{key}", f"{rid!r} is not the id of a 'labels' region of this annotation")
        direction = res.get("direction", "right")
        if direction not in ("right", "left", "bi"):
            fail(f"{field}.direction", f"expected 'right', 'left' or 'bi', got {direction!r}")
        if direction == "bi":
            report.note(split, "bidirectional relation kept as from_id -> to_id", f"{where} {field}")
        head, tail = (regions[dst], regions[src]) if direction == "left" else (regions[src], regions[dst])
        labs = res.get("labels") or []
        if not isinstance(labs, list) or not all(isinstance(x, str) and x for x in labs):
            fail(f"{field}.labels", f"expected a list of relation labels, got {labs!r}")
        if not labs:
            report.drop(split, "relation without label", f"{where} {src} -> {dst}")
        for lab in labs:
            if dedup.fresh("relation", (lab, *head, *tail)):
                rels.append({"relation": labels("rel", lab), "head": mention(text, *head), "tail": mention(text, *tail)})
    return f"{path.stem}.{tid}", text, {"ent": ents, "rel": rels, "cls": cls}


def read_splits(
    src_dir: Path,
    instruction: str = AUTO_INSTRUCTION,
    report: ConversionReport | None = None,
    text_key: str | None = None,
    label_map: Any = None,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for one Label Studio export or a folder of them (``train``/``dev``/``test`` in names)."""
    report = report or ConversionReport("labelstudio")
    labels = Labels(label_map)
    parsed: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for split, files in discover_files(Path(src_dir), SUFFIXES, report).items():
        items = parsed.setdefault(split, [])
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise SourceFormatError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
            tasks = [data] if isinstance(data, dict) else data
            if not isinstance(tasks, list):
                raise SourceFormatError(path, 1, "expected a Label Studio JSON export (a list of tasks)")
            for pos, task in enumerate(tasks, 1):
                out = _task(task, pos, path, split, text_key, labels, report)
                if out is not None:
                    items.append(out)
    return finish(parsed, labels, instruction)
