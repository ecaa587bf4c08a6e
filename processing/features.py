"""Explicit ``datasets.Features`` for the unified record (SPEC §1) and the dict <-> Arrow conversion.

Arrow needs fixed struct keys, so ``schema.event`` / ``schema.hyper_rel`` (``{name: [labels]}`` in the SPEC) are
stored as ``[{"name", "labels"}]`` lists. ``modeling_ldnet.schema.normalize_record`` reads both forms, so a
``DatasetDict`` row can be fed to the processor as is.

Label descriptions (a normalised record's top-level ``descriptions: [{"task", "label", "description"}]``) are stored
as ``schema.descriptions``: a struct field, so folders written before descriptions existed still cast to
:data:`UNIFIED_FEATURES` (the field reads as ``None``), and ``to_spec_record`` puts them back at the top level.
"""

from __future__ import annotations

from typing import Any

from datasets import Features, List, Value

from modeling_ldnet.schema import DESCRIPTIONS, normalize_schema
from modeling_ldnet.vocabulary_ldnet import ANS_FIELDS, SCHEMA_DICT_FIELDS, SCHEMA_LIST_FIELDS

_SPAN = {"text": Value("string"), "span": List(Value("int32"))}
_NAMED = List({"name": Value("string"), "labels": List(Value("string"))})
_DESCRIBED = List({"task": Value("string"), "label": Value("string"), "description": Value("string")})

UNIFIED_FEATURES = Features(
    {
        "id": Value("string"),
        "instruction": Value("string"),
        "schema": {
            "cls": List(Value("string")),
            "ent": List(Value("string")),
            "discontinuous_ent": List(Value("string")),
            "rel": List(Value("string")),
            "hyper_rel": _NAMED,
            "event": _NAMED,
            DESCRIPTIONS: _DESCRIBED,
        },
        "text": Value("string"),
        "bg": Value("string"),
        "image": Value("string"),
        "ans": {
            "cls": List(Value("string")),
            "ent": List({"type": Value("string"), "text": Value("string"), "span": List(Value("int32"))}),
            "discontinuous_ent": List(
                {"type": Value("string"), "text": Value("string"), "span": List(List(Value("int32")))}
            ),
            "rel": List({"relation": Value("string"), "head": _SPAN, "tail": _SPAN}),
            "hyper_rel": List(
                {
                    "relation": Value("string"),
                    "head": _SPAN,
                    "tail": _SPAN,
                    "qualifiers": List({"label": Value("string"), "text": Value("string"), "span": List(Value("int32"))}),
                }
            ),
            "event": List(
                {
                    "event_type": Value("string"),
                    "trigger": _SPAN,
                    "args": List({"role": Value("string"), "text": Value("string"), "span": List(Value("int32"))}),
                }
            ),
            "span": List(_SPAN),
        },
    }
)

_SCHEMA_LISTS, _ANS_FIELDS = SCHEMA_LIST_FIELDS, ANS_FIELDS


def to_arrow_record(record: dict[str, Any]) -> dict[str, Any]:
    """SPEC-form record -> a row matching :data:`UNIFIED_FEATURES` (every key present). Any schema form of
    ``modeling_ldnet.schema`` is read (``{label: description}`` dicts included: nothing is dropped)."""
    schema, descriptions = normalize_schema(record.get("schema"), record.get("id"), record.get(DESCRIPTIONS))
    ans = record.get("ans") or {}
    out_schema: dict[str, Any] = {f: list(schema.get(f) or []) for f in _SCHEMA_LISTS}
    for f in SCHEMA_DICT_FIELDS:
        out_schema[f] = [{"name": k, "labels": list(v)} for k, v in (schema.get(f) or {}).items()]
    out_schema[DESCRIPTIONS] = [dict(d) for d in descriptions]
    return {
        "id": str(record["id"]),
        "instruction": record.get("instruction") or "",
        "schema": out_schema,
        "text": record.get("text") or "",
        "bg": record.get("bg") or "",
        "image": record.get("image") or "",
        "ans": {f: list(ans.get(f) or []) for f in _ANS_FIELDS},
    }


def to_spec_record(row: dict[str, Any]) -> dict[str, Any]:
    """A :data:`UNIFIED_FEATURES` row -> compact SPEC-form record (dict schemas, empty fields dropped)."""
    schema = row.get("schema") or {}
    out_schema: dict[str, Any] = {f: list(schema[f]) for f in _SCHEMA_LISTS if schema.get(f)}
    for f in SCHEMA_DICT_FIELDS:
        if schema.get(f):
            out_schema[f] = {d["name"]: list(d["labels"] or []) for d in schema[f]}
    ans = {f: v for f, v in (row.get("ans") or {}).items() if v}
    out = {
        "id": row["id"],
        "instruction": row.get("instruction") or "",
        "schema": out_schema,
        "text": row.get("text") or "",
        "bg": row.get("bg") or "",
        "ans": ans,
    }
    described = [dict(d) for d in schema.get(DESCRIPTIONS) or [] if d and d.get("description") is not None]
    if described:
        out[DESCRIPTIONS] = described
    if row.get("image"):
        out["image"] = row["image"]
    return out
