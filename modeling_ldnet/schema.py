"""The unified record ("UDI", SPEC §1): normalisation and validation.

A record is a dict ``{id, instruction, schema, text, bg, ans}`` (+ optional ``image``). Spans are character
offsets ``[start, end)`` into ``text``. Two equivalent forms of ``schema.event`` / ``schema.hyper_rel`` are
accepted: the SPEC's ``{name: [labels]}`` dict and the Arrow-friendly list form ``[{"name": .., "labels": [..]}]``
that ``processing`` stores in ``datasets`` (Arrow cannot hold dicts with data-dependent keys). Every other
field may be absent or ``None`` (``datasets`` fills missing struct fields with ``None``).

Label descriptions (GLiNER2's convention): a list field (``cls``, ``ent``, ``discontinuous_ent``, ``rel``) may be a
``{label: description}`` dict instead of a list, ``None`` marking a bare label (``{"ent": {"disease": "a disorder of
the body", "person": None}}``). The normalised record keeps the label list and carries the descriptions beside the
schema, in schema order, as ``descriptions: [{"task", "label", "description"}]`` (the key is present only when a
label has one). That list is also accepted as input, at the top level (SPEC form) or as ``schema.descriptions`` (the
Arrow form of ``processing.features``); a description of a label that is not in the schema describes nothing and is
not part of the normalised record (schema augmentation drops labels, and their descriptions with them).
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterator
from typing import Any

from .vocabulary_ldnet import ANS_FIELDS, SCHEMA_DICT_FIELDS, SCHEMA_LIST_FIELDS
from .vocabulary_ldnet import TASK_FIELDS as SCHEMA_FIELDS

OVERFLOW_MODES = ("window", "error", "truncate")
#: the key of the descriptions list: top level of a normalised record, ``schema.descriptions`` in the Arrow form
DESCRIPTIONS = "descriptions"
#: the key of the typed relation arguments of a normalised record: ``[{"relation", "head": [types], "tail": [types]}]``
ARG_TYPES = "arg_types"
_ARG_KEYS = ("head", "tail", "description")
#: the schema fields whose labels may carry a description
DESCRIBED_FIELDS: tuple[str, ...] = SCHEMA_LIST_FIELDS
#: Common spellings of schema fields, for "did you mean" hints.
_FIELD_ALIASES = {
    "entity": "ent", "entities": "ent", "ents": "ent", "ner": "ent", "relation": "rel", "relations": "rel",
    "rels": "rel", "events": "event", "classes": "cls", "labels": "cls", "class": "cls", "classification": "cls",
    "discontinuous": "discontinuous_ent", "hyper_relation": "hyper_rel", "qualifiers": "hyper_rel",
}


class RecordError(ValueError):
    """A malformed unified record. The message names the record id and the field."""

    def __init__(self, record_id: Any, field: str, message: str) -> None:
        self.record_id = record_id
        self.field = field
        super().__init__(f"record {record_id!r}, field {field!r}: {message}")


def _unknown_fields_message(unknown: set, allowed: tuple[str, ...], what: str) -> str:
    hints = []
    for k in sorted(unknown, key=repr):
        guess = _FIELD_ALIASES.get(str(k).lower()) or next(iter(difflib.get_close_matches(str(k), allowed, 1)), None)
        hints.append(f"{k!r} (did you mean {guess!r}?)" if guess else repr(k))
    return f"unknown {what} {', '.join(hints)}; allowed: {list(allowed)}"


def check_schema_fields(schema: Any, where: str = "schema") -> None:
    """Raise ``ValueError`` naming ``where`` when ``schema`` is not a dict or has a key outside :data:`SCHEMA_FIELDS`
    (checked before anything reads the schema, so a typo is never mistaken for an empty schema)."""
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise TypeError(f"{where}: expected a dict like {{'ent': [...], 'rel': [...]}}, got {type(schema).__name__}")
    unknown = set(schema) - set(SCHEMA_FIELDS) - {DESCRIPTIONS}
    if unknown:
        raise ValueError(f"{where}: {_unknown_fields_message(unknown, SCHEMA_FIELDS, 'schema fields')}")


def schema_labels(schema: dict[str, Any]) -> dict[str, list[str]]:
    """``{task: [labels]}`` of a normalised schema, first-seen order; an event type and its roles (a relation and
    its qualifiers) are all labels of ``event`` (``hyper_rel``): each is a tag the model reads."""
    out: dict[str, list[str]] = {}
    for f in SCHEMA_LIST_FIELDS:
        if schema.get(f):
            out[f] = list(dict.fromkeys(schema[f]))
    for f in SCHEMA_DICT_FIELDS:
        if schema.get(f):
            out[f] = list(dict.fromkeys(x for name, inner in schema[f].items() for x in [name, *inner]))
    return out


# -- argument validation (shared by the processor and the pipeline) ---------------------------------------------


def check_int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """An integer argument in ``[minimum, maximum]`` (bools, non-integral floats and strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        isinstance(value, float) and not value.is_integer()
    ):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_threshold(value: Any, name: str = "threshold", channels: int = 3) -> float | tuple[float, ...]:
    """A probability threshold strictly inside ``(0, 1)`` (0 keeps every link, 1 none: both are mistakes), or one
    such value per span-graph channel (calibrated thresholds, ``LDNetConfig.decode_channel_thresholds``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != channels:
            raise ValueError(f"{name} needs one value or {channels} per-channel values, got {len(value)}")
        return tuple(float(check_threshold(v, f"{name}[{i}]")) for i, v in enumerate(value))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(value).__name__} {value!r}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return value


def check_overflow(value: Any, name: str = "overflow") -> str:
    if value not in OVERFLOW_MODES:
        raise ValueError(f"{name} must be one of {list(OVERFLOW_MODES)}, got {value!r}")
    return value


def _text_field(record: dict, field: str, rid: Any) -> str:
    """``None``/absent -> ``""``; a string as is; anything else (``0``, ``[]``, bytes) is an error, never ``""``."""
    value = record.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(rid, field, f"expected a string, got {type(value).__name__} {value!r:.80}")
    return value


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


def _description(rid: Any, field: str, label: Any, desc: Any) -> str:
    """A label's description: a non-empty string (``None`` = a bare label is handled by the caller)."""
    if not isinstance(desc, str):
        raise RecordError(rid, field, f"the description of label {label!r} must be a string (or None for a label "
                                      f"without one), got {type(desc).__name__} {desc!r:.60}")
    if not desc.strip():
        raise RecordError(rid, field, f"empty description of label {label!r}; use None for a label without one")
    if "\x00" in desc:
        raise RecordError(rid, field, f"the description of label {label!r} contains a NUL character")
    return desc


def _listed_descriptions(value: Any, rid: Any, field: str) -> Iterator[tuple[str, Any, str]]:
    """``(task, label, description)`` of a ``descriptions`` list (``None`` entries / descriptions: Arrow fill)."""
    if value is None:
        return
    if not isinstance(value, (list, tuple)):
        raise RecordError(rid, field, f"expected a list of {{'task', 'label', 'description'}}, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not {"task", "label"} <= set(item):
            raise RecordError(rid, f"{field}[{i}]", f"expected {{'task', 'label', 'description'}}, got {item!r:.80}")
        if item["task"] not in DESCRIBED_FIELDS:
            raise RecordError(rid, f"{field}[{i}].task", f"labels of {list(DESCRIBED_FIELDS)} may carry descriptions, "
                                                         f"got {item['task']!r}")
        if item.get("description") is not None:
            yield item["task"], item["label"], _description(rid, f"{field}[{i}]", item["label"], item["description"])


def normalize_schema(schema: Any, record_id: Any = None, extra_descriptions: Any = None) -> tuple[dict, list[dict]]:
    """``(schema, descriptions)``: the canonical schema (label lists, ``{name: [labels]}`` dicts) and its label
    descriptions ``[{"task", "label", "description"}]`` in schema order; raises :class:`RecordError` naming
    ``record_id`` and the field. Accepts every schema form of this module (``{label: description}`` dicts,
    ``schema.descriptions``); ``extra_descriptions`` is a record's top-level ``descriptions`` list."""
    rid = record_id
    schema_in = {} if schema is None else schema  # only None means "absent": [] or "" is a type error
    if not isinstance(schema_in, dict):
        raise RecordError(rid, "schema", f"expected a dict, got {type(schema_in).__name__}")
    unknown = set(schema_in) - set(SCHEMA_FIELDS) - {DESCRIPTIONS}
    if unknown:
        raise RecordError(rid, "schema", _unknown_fields_message(unknown, SCHEMA_FIELDS, "schema fields"))
    out: dict[str, Any] = {}
    described: dict[tuple[str, Any], str] = {}
    for f in SCHEMA_LIST_FIELDS:
        v = schema_in.get(f)
        if v is None:
            continue
        if isinstance(v, dict):  # {label: description or None}; rel: or {"head", "tail", "description"}
            for lab, desc in v.items():
                if f == "rel" and isinstance(desc, dict):  # typed arguments (relation_arg_types)
                    desc = desc.get("description")
                if desc is not None:
                    described[(f, lab)] = _description(rid, f"schema.{f}[{lab!r}]", lab, desc)
            out[f] = list(v)
        elif isinstance(v, (list, tuple)):
            out[f] = list(v)
        else:
            raise RecordError(rid, f"schema.{f}", f"expected a list of strings or a {{label: description}} dict, got "
                                                  f"{type(v).__name__}")
    for f in SCHEMA_DICT_FIELDS:
        v = _dict_form(schema_in.get(f), rid, f"schema.{f}")
        if v:
            out[f] = v
    listed = [*_listed_descriptions(schema_in.get(DESCRIPTIONS), rid, f"schema.{DESCRIPTIONS}"),
              *_listed_descriptions(extra_descriptions, rid, DESCRIPTIONS)]
    for task, lab, desc in listed:
        if described.setdefault((task, lab), desc) != desc:
            raise RecordError(rid, DESCRIPTIONS, f"label {task}:{lab!r} has two different descriptions "
                                                 f"{described[(task, lab)]!r:.60} and {desc!r:.60}")
    descriptions = [
        {"task": f, "label": lab, "description": described[(f, lab)]}
        for f in DESCRIBED_FIELDS
        for lab in dict.fromkeys(out.get(f, []))
        if (f, lab) in described
    ]
    return out, descriptions


def relation_arg_types(schema: Any, record_id: Any, ent_labels: list[str]) -> list[dict]:
    """``[{"relation", "head", "tail"}]`` of a schema's typed relations (``{"rel": {"work for": {"head": ["person"],
    "tail": ["organization"]}}}``; a missing side allows any type). Every type must be one of ``ent_labels`` (the
    schema's entity labels): a :class:`RecordError` names the relation and the type otherwise."""
    rel = schema.get("rel") if isinstance(schema, dict) else None
    out = []
    for lab, spec in (rel.items() if isinstance(rel, dict) else ()):
        if not isinstance(spec, dict):
            continue
        where = f"schema.rel[{lab!r}]"
        unknown = sorted(set(spec) - set(_ARG_KEYS), key=str)
        if unknown:
            raise RecordError(record_id, where, f"unknown key {unknown[0]!r} (allowed: {list(_ARG_KEYS)})")
        item: dict[str, Any] = {"relation": lab}
        for side in ("head", "tail"):
            types = spec.get(side)
            if types is None:
                continue
            if not isinstance(types, (list, tuple)) or not types or not all(isinstance(t, str) for t in types):
                raise RecordError(record_id, f"{where}.{side}", f"expected a non-empty list of entity types, got {types!r:.60}")
            missing = [t for t in types if t not in ent_labels]
            if missing:
                raise RecordError(record_id, f"{where}.{side}", f"argument type {missing[0]!r} of relation {lab!r} is "
                                                                f"not one of the schema's entity labels {ent_labels}")
            item[side] = list(types)
        if len(item) > 1:
            out.append(item)
    return out


def with_default_arg_types(schema: Any, defaults: dict[str, dict[str, list[str]]] | None) -> Any:
    """``schema`` with a model's default argument types (``config.relation_arg_types``) on its relation labels that
    declare none: each side cut to the schema's entity labels (a side left with none of them makes the relation
    untyped); a label's own typed form and its description are kept. Schemas without entity labels (nothing to
    check the arguments against) or without relation labels come back unchanged."""
    if not defaults or not isinstance(schema, dict) or not schema.get("ent") or not schema.get("rel"):
        return schema
    ents = set(schema["ent"])
    rel = schema["rel"]
    specs = dict(rel) if isinstance(rel, dict) else {label: None for label in rel}
    changed = False
    for label, spec in specs.items():
        if isinstance(spec, dict) and (spec.get("head") is not None or spec.get("tail") is not None):
            continue  # typed by the caller
        default = defaults.get(label)
        if not default:
            continue
        typed = {side: [t for t in types if t in ents] for side, types in default.items()}
        if any(not types for types in typed.values()):
            continue  # the schema cannot extract every type the model allows on that side: no check possible
        specs[label] = {**typed, **({"description": spec} if isinstance(spec, str) else spec or {})}
        changed = True
    return {**schema, "rel": specs} if changed else schema


def normalize_record(record: dict[str, Any]) -> dict[str, Any]:
    """Return a deep-copied record in canonical SPEC form (dict schemas, all keys present, no ``None``; plus
    ``descriptions`` when a schema label has one, see the module docstring)."""
    if not isinstance(record, dict):
        raise RecordError(None, "<record>", f"expected a dict, got {type(record).__name__}")
    rid = record.get("id")
    out: dict[str, Any] = {
        "id": rid,
        "instruction": _text_field(record, "instruction", rid),
        "text": _text_field(record, "text", rid),
        "bg": _text_field(record, "bg", rid),
    }
    image = record.get("image")
    if image is not None and not (isinstance(image, str) and image == ""):  # path, PIL image, array or tensor
        out["image"] = image
    schema, descriptions = normalize_schema(record.get("schema"), rid, record.get(DESCRIPTIONS))
    out["schema"] = schema
    ans_in = record.get("ans")
    ans_in = {} if ans_in is None else ans_in
    if not isinstance(ans_in, dict):
        raise RecordError(rid, "ans", f"expected a dict, got {type(ans_in).__name__}")
    unknown = set(ans_in) - set(ANS_FIELDS)
    if unknown:
        raise RecordError(rid, "ans", _unknown_fields_message(unknown, ANS_FIELDS, "answer fields"))
    out["ans"] = {k: copy.deepcopy(v) for k, v in ans_in.items() if v}
    if descriptions:
        out[DESCRIPTIONS] = descriptions
    arg_types = relation_arg_types(record.get("schema"), rid, schema.get("ent", []))
    if arg_types:
        out[ARG_TYPES] = arg_types
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


def _check_labels(labels: list, rid: Any, field: str) -> None:
    """Schema labels: strings, not empty or whitespace only, no NUL, no label twice in one field (a label the
    model would read as nothing, or read twice, is a mistake in the schema)."""
    first: dict[str, int] = {}
    for i, lab in enumerate(labels):
        _check_str(lab, rid, f"{field}[{i}]")
        if lab == "":
            raise RecordError(rid, f"{field}[{i}]", "empty label")
        if not lab.strip():
            raise RecordError(rid, f"{field}[{i}]", f"label {lab!r} is whitespace only")
        if "\x00" in lab:
            raise RecordError(rid, f"{field}[{i}]", f"label {lab!r} contains a NUL character")
        j = first.setdefault(lab, i)
        if j != i:
            raise RecordError(rid, f"{field}[{i}]", f"duplicate label {lab!r} (also {field}[{j}])")


def _check_label(label: Any, allowed: Any, rid: Any, field: str) -> None:
    _check_str(label, rid, field)
    if label not in allowed:
        raise RecordError(rid, field, f"label {label!r} is not in the schema {list(allowed)!r}")


def _dict_items(items: Any, rid: Any, field: str) -> Iterator[tuple[int, dict]]:
    """``enumerate(items)``, raising on the first item that is not a dict (named ``field[i]``)."""
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise RecordError(rid, f"{field}[{i}]", f"expected a dict, got {it!r}")
        yield i, it


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate one record; return the canonical form or raise :class:`RecordError`.

    Checks: types of every field, every span inside ``text`` with ``text[s:e] == mention``, every label in the
    record's own schema, event roles legal for their event type, hyper-relation qualifiers legal for the relation.
    """
    if isinstance(record, dict) and record.get("text") is None:
        # a misspelt, missing or null ``text`` would otherwise silently become "" (and an empty answer)
        what = "missing" if "text" not in record else "None"
        raise RecordError(record.get("id"), "text", f'{what} (use "" for a record without text)')
    r = normalize_record(record)
    rid = r["id"]
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
        raise RecordError(rid, "id", "expected a non-empty string (or int) id")
    for f in ("instruction", "text", "bg"):
        _check_str(r[f], rid, f)
    schema, ans, text = r["schema"], r["ans"], r["text"]
    for f in SCHEMA_LIST_FIELDS:
        _check_labels(schema.get(f, []), rid, f"schema.{f}")
    for f in SCHEMA_DICT_FIELDS:
        names = schema.get(f, {})
        _check_labels(list(names), rid, f"schema.{f}")
        for k, labs in names.items():
            _check_labels(labs, rid, f"schema.{f}[{k!r}]")
    for i, lab in enumerate(ans.get("cls", [])):
        _check_label(lab, schema.get("cls", []), rid, f"ans.cls[{i}]")
    for i, it in _dict_items(ans.get("ent", []), rid, "ans.ent"):
        _check_label(it.get("type"), schema.get("ent", []), rid, f"ans.ent[{i}].type")
        _check_span(it, text, rid, f"ans.ent[{i}]")
    for i, it in _dict_items(ans.get("discontinuous_ent", []), rid, "ans.discontinuous_ent"):
        _check_label(it.get("type"), schema.get("discontinuous_ent", []), rid, f"ans.discontinuous_ent[{i}].type")
        spans = it.get("span")
        if not isinstance(spans, (list, tuple)) or not spans:
            raise RecordError(rid, f"ans.discontinuous_ent[{i}].span", f"expected [[s, e], ...], got {spans!r}")
        for j, sp in enumerate(spans):
            _check_span({"span": sp}, text, rid, f"ans.discontinuous_ent[{i}].span[{j}]")
    for i, it in _dict_items(ans.get("rel", []), rid, "ans.rel"):
        _check_label(it.get("relation"), schema.get("rel", []), rid, f"ans.rel[{i}].relation")
        _check_span(it.get("head"), text, rid, f"ans.rel[{i}].head")
        _check_span(it.get("tail"), text, rid, f"ans.rel[{i}].tail")
    for i, it in _dict_items(ans.get("hyper_rel", []), rid, "ans.hyper_rel"):
        hr = schema.get("hyper_rel", {})
        _check_label(it.get("relation"), hr, rid, f"ans.hyper_rel[{i}].relation")
        _check_span(it.get("head"), text, rid, f"ans.hyper_rel[{i}].head")
        _check_span(it.get("tail"), text, rid, f"ans.hyper_rel[{i}].tail")
        for j, q in _dict_items(it.get("qualifiers") or [], rid, f"ans.hyper_rel[{i}].qualifiers"):
            _check_label(q.get("label"), hr[it["relation"]], rid, f"ans.hyper_rel[{i}].qualifiers[{j}].label")
            _check_span(q, text, rid, f"ans.hyper_rel[{i}].qualifiers[{j}]")
    for i, it in _dict_items(ans.get("event", []), rid, "ans.event"):
        ev = schema.get("event", {})
        _check_label(it.get("event_type"), ev, rid, f"ans.event[{i}].event_type")
        _check_span(it.get("trigger"), text, rid, f"ans.event[{i}].trigger")
        for j, a in _dict_items(it.get("args") or [], rid, f"ans.event[{i}].args"):
            _check_label(a.get("role"), ev[it["event_type"]], rid, f"ans.event[{i}].args[{j}].role")
            _check_span(a, text, rid, f"ans.event[{i}].args[{j}]")
    for i, it in enumerate(ans.get("span", [])):
        _check_span(it, text, rid, f"ans.span[{i}]")
    return r
