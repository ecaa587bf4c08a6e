"""The unified record ("UDI", SPEC §1): normalisation and validation.

A record is a dict ``{id, instruction, schema, text, bg, ans}`` (+ optional ``image``). Spans are character
offsets ``[start, end)`` into ``text``. Two equivalent forms of ``schema.event`` / ``schema.hyper_rel`` are
accepted: the SPEC's ``{name: [labels]}`` dict and the Arrow-friendly list form ``[{"name": .., "labels": [..]}]``
that ``processing`` stores in ``datasets`` (Arrow cannot hold dicts with data-dependent keys). Every other
field may be absent or ``None`` (``datasets`` fills missing struct fields with ``None``).
"""

from __future__ import annotations

import copy
from typing import Any

SCHEMA_LIST_FIELDS = ("cls", "ent", "discontinuous_ent", "rel")
SCHEMA_DICT_FIELDS = ("hyper_rel", "event")
SCHEMA_FIELDS = SCHEMA_LIST_FIELDS + SCHEMA_DICT_FIELDS
ANS_FIELDS = ("cls", "ent", "discontinuous_ent", "rel", "hyper_rel", "event", "span")


class RecordError(ValueError):
    """A malformed unified record. The message names the record id and the field."""

    def __init__(self, record_id: Any, field: str, message: str) -> None:
        self.record_id = record_id
        self.field = field
        super().__init__(f"record {record_id!r}, field {field!r}: {message}")


def _dict_form(value: Any, record_id: Any, field: str) -> dict[str, list[str]]:
    if value is None:
        return {}
    if isinstance(value, dict):
        out: dict[str, list[str]] = {}
        for k, v in value.items():
            if v is None:  # Arrow struct union: key of another record
                continue
            if not isinstance(k, str) or not isinstance(v, (list, tuple)):
                raise RecordError(record_id, field, f"expected {{str: [str]}}, got {k!r}: {v!r}")
            out[k] = list(v)
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for item in value:
            if not isinstance(item, dict) or "name" not in item:
                raise RecordError(record_id, field, f"list form needs {{'name', 'labels'}} items, got {item!r}")
            out[item["name"]] = list(item.get("labels") or [])
        return out
    raise RecordError(record_id, field, f"expected a dict or a list, got {type(value).__name__}")


def normalize_record(record: dict[str, Any]) -> dict[str, Any]:
    """Return a deep-copied record in canonical SPEC form (dict schemas, all keys present, no ``None``)."""
    if not isinstance(record, dict):
        raise RecordError(None, "<record>", f"expected a dict, got {type(record).__name__}")
    rid = record.get("id")
    out: dict[str, Any] = {
        "id": rid,
        "instruction": record.get("instruction") or "",
        "text": record.get("text") or "",
        "bg": record.get("bg") or "",
    }
    image = record.get("image")
    if image is not None and not (isinstance(image, str) and image == ""):  # path, PIL image, array or tensor
        out["image"] = image
    schema_in = record.get("schema") or {}
    if not isinstance(schema_in, dict):
        raise RecordError(rid, "schema", f"expected a dict, got {type(schema_in).__name__}")
    unknown = set(schema_in) - set(SCHEMA_FIELDS)
    if unknown:
        raise RecordError(rid, "schema", f"unknown schema fields {sorted(unknown)}; allowed: {SCHEMA_FIELDS}")
    schema: dict[str, Any] = {}
    for f in SCHEMA_LIST_FIELDS:
        v = schema_in.get(f)
        if v is None:
            continue
        if not isinstance(v, (list, tuple)):
            raise RecordError(rid, f"schema.{f}", f"expected a list of strings, got {type(v).__name__}")
        schema[f] = list(v)
    for f in SCHEMA_DICT_FIELDS:
        v = _dict_form(schema_in.get(f), rid, f"schema.{f}")
        if v:
            schema[f] = v
    out["schema"] = schema
    ans_in = record.get("ans") or {}
    if not isinstance(ans_in, dict):
        raise RecordError(rid, "ans", f"expected a dict, got {type(ans_in).__name__}")
    unknown = set(ans_in) - set(ANS_FIELDS)
    if unknown:
        raise RecordError(rid, "ans", f"unknown answer fields {sorted(unknown)}; allowed: {ANS_FIELDS}")
    out["ans"] = {k: copy.deepcopy(v) for k, v in ans_in.items() if v}
    return out


def _check_str(v: Any, rid: Any, field: str) -> None:
    if not isinstance(v, str):
        raise RecordError(rid, field, f"expected a string, got {type(v).__name__} {v!r}")


def _check_span(item: Any, text: str, rid: Any, field: str) -> None:
    """An answer item ``{"text", "span": [s, e]}``: in range and ``text[s:e] == item["text"]``."""
    if not isinstance(item, dict):
        raise RecordError(rid, field, f"expected {{'text', 'span'}}, got {item!r}")
    span = item.get("span")
    if (
        not isinstance(span, (list, tuple))
        or len(span) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
    ):
        raise RecordError(rid, f"{field}.span", f"expected [start, end] integers, got {span!r}")
    s, e = span
    if not 0 <= s < e <= len(text):
        raise RecordError(rid, f"{field}.span", f"span {[s, e]} outside text of length {len(text)} (or empty)")
    if "text" in item and item["text"] is not None:
        _check_str(item["text"], rid, f"{field}.text")
        if text[s:e] != item["text"]:
            raise RecordError(rid, f"{field}.text", f"text[{s}:{e}] = {text[s:e]!r} != mention {item['text']!r}")


def _check_label(label: Any, allowed: Any, rid: Any, field: str) -> None:
    _check_str(label, rid, field)
    if label not in allowed:
        raise RecordError(rid, field, f"label {label!r} is not in the schema {list(allowed)!r}")


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate one record; return the canonical form or raise :class:`RecordError`.

    Checks: types of every field, every span inside ``text`` with ``text[s:e] == mention``, every label in the
    record's own schema, event roles legal for their event type, hyper-relation qualifiers legal for the relation.
    """
    r = normalize_record(record)
    rid = r["id"]
    if not isinstance(rid, (str, int)) or rid == "":
        raise RecordError(rid, "id", "expected a non-empty string (or int) id")
    for f in ("instruction", "text", "bg"):
        _check_str(r[f], rid, f)
    schema, ans, text = r["schema"], r["ans"], r["text"]
    for f in SCHEMA_LIST_FIELDS:
        for i, lab in enumerate(schema.get(f, [])):
            _check_str(lab, rid, f"schema.{f}[{i}]")
            if lab == "":
                raise RecordError(rid, f"schema.{f}[{i}]", "empty label")
    for f in SCHEMA_DICT_FIELDS:
        for k, labs in schema.get(f, {}).items():
            if k == "":
                raise RecordError(rid, f"schema.{f}", "empty label")
            for i, lab in enumerate(labs):
                _check_str(lab, rid, f"schema.{f}[{k!r}][{i}]")
    for i, lab in enumerate(ans.get("cls", [])):
        _check_label(lab, schema.get("cls", []), rid, f"ans.cls[{i}]")
    for i, it in enumerate(ans.get("ent", [])):
        if not isinstance(it, dict):
            raise RecordError(rid, f"ans.ent[{i}]", f"expected a dict, got {it!r}")
        _check_label(it.get("type"), schema.get("ent", []), rid, f"ans.ent[{i}].type")
        _check_span(it, text, rid, f"ans.ent[{i}]")
    for i, it in enumerate(ans.get("discontinuous_ent", [])):
        if not isinstance(it, dict):
            raise RecordError(rid, f"ans.discontinuous_ent[{i}]", f"expected a dict, got {it!r}")
        _check_label(it.get("type"), schema.get("discontinuous_ent", []), rid, f"ans.discontinuous_ent[{i}].type")
        spans = it.get("span")
        if not isinstance(spans, (list, tuple)) or not spans:
            raise RecordError(rid, f"ans.discontinuous_ent[{i}].span", f"expected [[s, e], ...], got {spans!r}")
        for j, sp in enumerate(spans):
            _check_span({"span": sp}, text, rid, f"ans.discontinuous_ent[{i}].span[{j}]")
    for i, it in enumerate(ans.get("rel", [])):
        if not isinstance(it, dict):
            raise RecordError(rid, f"ans.rel[{i}]", f"expected a dict, got {it!r}")
        _check_label(it.get("relation"), schema.get("rel", []), rid, f"ans.rel[{i}].relation")
        _check_span(it.get("head"), text, rid, f"ans.rel[{i}].head")
        _check_span(it.get("tail"), text, rid, f"ans.rel[{i}].tail")
    for i, it in enumerate(ans.get("hyper_rel", [])):
        if not isinstance(it, dict):
            raise RecordError(rid, f"ans.hyper_rel[{i}]", f"expected a dict, got {it!r}")
        hr = schema.get("hyper_rel", {})
        _check_label(it.get("relation"), hr, rid, f"ans.hyper_rel[{i}].relation")
        _check_span(it.get("head"), text, rid, f"ans.hyper_rel[{i}].head")
        _check_span(it.get("tail"), text, rid, f"ans.hyper_rel[{i}].tail")
        for j, q in enumerate(it.get("qualifiers") or []):
            if not isinstance(q, dict):
                raise RecordError(rid, f"ans.hyper_rel[{i}].qualifiers[{j}]", f"expected a dict, got {q!r}")
            _check_label(q.get("label"), hr[it["relation"]], rid, f"ans.hyper_rel[{i}].qualifiers[{j}].label")
            _check_span(q, text, rid, f"ans.hyper_rel[{i}].qualifiers[{j}]")
    for i, it in enumerate(ans.get("event", [])):
        if not isinstance(it, dict):
            raise RecordError(rid, f"ans.event[{i}]", f"expected a dict, got {it!r}")
        ev = schema.get("event", {})
        _check_label(it.get("event_type"), ev, rid, f"ans.event[{i}].event_type")
        _check_span(it.get("trigger"), text, rid, f"ans.event[{i}].trigger")
        for j, a in enumerate(it.get("args") or []):
            if not isinstance(a, dict):
                raise RecordError(rid, f"ans.event[{i}].args[{j}]", f"expected a dict, got {a!r}")
            _check_label(a.get("role"), ev[it["event_type"]], rid, f"ans.event[{i}].args[{j}].role")
            _check_span(a, text, rid, f"ans.event[{i}].args[{j}]")
    for i, it in enumerate(ans.get("span", [])):
        _check_span(it, text, rid, f"ans.span[{i}]")
    return r
