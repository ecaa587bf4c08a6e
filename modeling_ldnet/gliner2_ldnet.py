"""GLiNER2-style schemas in, GLiNER2's result dict out (``pipeline(..., output_format="gliner2")``).

A GLiNER2 schema (the dict its ``Schema`` builder produces, or written by hand) is mapped onto LDNet's schema:

* ``entities``: ``["person", ...]`` or ``{"person": "a human being" | None | {"description", "threshold", "dtype"}}``
  -> ``ent`` with label descriptions (``dtype`` ``"str"`` keeps the best mention only, ``"list"`` all of them);
* ``relations``: the same forms (``description``, ``threshold``) -> ``rel``;
* ``classifications``: ``[{"task", "labels", "multi_label", "cls_threshold", "label_descriptions", "top_k"}]`` (or
  ``{task: labels | config}``); each task is its own ``cls`` pass over the text, so two tasks may share a label
  name. A single-label task answers its best class above the threshold (GLiNER2: the best class), a multi-label one
  every class above it;
* ``structures`` (GLiNER2's JSON records), ``entity_attributes`` and a task's ``prompt`` / ``examples`` /
  ``class_act``: not supported by LDNet yet; refused with a message that says so.

A label's own ``threshold`` filters the decoded items of that label by score (a value below the pass's threshold
decodes that pass again at the lower value, so nothing the label allows is missed). Errors are ``ValueError`` naming
the key path (``entities.person.threshold``), raised before any work.

Output (``output_format="gliner2"``): ``{"entities": {type: [text, ...]}, "relation_extraction": {relation:
[(head, tail), ...]}, task: class | [classes]}``, every requested type present (``[]`` when nothing was found);
``include_confidence`` turns each value into ``{"text", "confidence"}`` (classes: ``{"label", "confidence"}``),
``include_spans`` adds ``"start"`` / ``"end"`` (character offsets). Without spans, repeated mentions of a type are
listed once (GLiNER2's behaviour); with spans every occurrence is kept, in text order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .schema import DESCRIPTIONS, check_schema_fields

#: keys of a GLiNER2 schema dict
GLINER2_KEYS: tuple[str, ...] = ("entities", "relations", "classifications", "structures", "entity_attributes")
#: ``output_format`` values of the pipeline
OUTPUT_FORMATS: tuple[str, ...] = ("ldnet", "gliner2")
_ENTITY_KEYS = ("description", "threshold", "dtype")
_RELATION_KEYS = ("description", "threshold")
_TASK_KEYS = ("task", "labels", "multi_label", "cls_threshold", "threshold", "label_descriptions", "top_k")
#: GLiNER2 task keys that steer its own prompt / activation: refused (saying so) rather than ignored
_TASK_UNSUPPORTED = ("prompt", "examples", "class_act")
_DTYPES = ("list", "str")
#: the smallest threshold the decoder takes (thresholds are probabilities in (0, 1); GLiNER2 allows 0)
_MIN_THRESHOLD = 1e-4


def is_gliner2_schema(schema: Any) -> bool:
    """True for a non-empty dict whose keys are all GLiNER2 keys (``entities``, ``relations``, ...)."""
    return isinstance(schema, Mapping) and bool(schema) and set(schema) <= set(GLINER2_KEYS)


def _where(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _threshold(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{where}: a threshold must be a number in [0, 1], got {value!r:.60}")
    return float(value)


def _label(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError(f"{where}: a label must be a non-empty string, got {value!r:.60}")
    return value


def _description(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: a description must be a non-empty string (or null), got {value!r:.60}")
    return value


@dataclass
class ClassificationTask:
    """One GLiNER2 classification task: its labels (with descriptions), single/multi-label and threshold."""

    name: str
    labels: dict[str, str | None]
    multi_label: bool = False
    threshold: float = 0.5
    top_k: int | None = None  # at most this many classes (best first)


@dataclass
class Gliner2Plan:
    """A GLiNER2 schema mapped onto LDNet: the extraction schema, the classification passes and the per-label
    settings (``thresholds[(task, label)]`` with task ``ent`` / ``rel``, ``dtypes[entity]``)."""

    entities: dict[str, str | None] = field(default_factory=dict)
    relations: dict[str, str | None] = field(default_factory=dict)
    tasks: list[ClassificationTask] = field(default_factory=list)
    thresholds: dict[tuple[str, str], float] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)

    def extraction_schema(self) -> dict[str, Any] | None:
        """The LDNet schema of the entity / relation pass (``{label: description}`` dicts), or None."""
        out: dict[str, Any] = {}
        if self.entities:
            out["ent"] = dict(self.entities)
        if self.relations:
            out["rel"] = dict(self.relations)
        return out or None


def _labels_with_config(value: Any, path: str, keys: tuple[str, ...], plan: Gliner2Plan, task: str) -> dict[str, str | None]:
    """``entities`` / ``relations``: a list of labels or ``{label: description | None | config}``."""
    out: dict[str, str | None] = {}
    if isinstance(value, (list, tuple)):
        for i, lab in enumerate(value):
            lab = _label(lab, f"{path}[{i}]")
            if lab in out:
                raise ValueError(f"{path}[{i}]: duplicate label {lab!r}")
            out[lab] = None
    elif isinstance(value, Mapping):
        for lab, conf in value.items():
            where = _where(path, lab)
            _label(lab, where)
            if isinstance(conf, Mapping):
                unknown = sorted(set(conf) - set(keys), key=str)
                if unknown:
                    raise ValueError(f"{_where(where, unknown[0])}: unknown key (allowed: {list(keys)})")
                out[lab] = _description(conf.get("description"), _where(where, "description"))
                if conf.get("threshold") is not None:
                    plan.thresholds[(task, lab)] = _threshold(conf["threshold"], _where(where, "threshold"))
                if "dtype" in conf:
                    if conf["dtype"] not in _DTYPES:
                        raise ValueError(f"{_where(where, 'dtype')}: must be one of {list(_DTYPES)}, got {conf['dtype']!r:.40}")
                    plan.dtypes[lab] = conf["dtype"]
            else:
                out[lab] = _description(conf, where)
    else:
        raise ValueError(f"{path}: expected a list of labels or a {{label: description}} dict, got {type(value).__name__}")
    if not out:
        raise ValueError(f"{path}: no labels")
    return out


def _task(name: Any, conf: Any, where: str) -> ClassificationTask:
    if isinstance(conf, (list, tuple)):
        conf = {"labels": conf}
    if not isinstance(conf, Mapping):
        raise ValueError(f"{where}: expected a task dict {{'task', 'labels', ...}}, got {type(conf).__name__}")
    unsupported = sorted(set(conf) & set(_TASK_UNSUPPORTED))
    if unsupported:
        raise ValueError(f"{_where(where, unsupported[0])}: GLiNER2's prompt / activation options are not supported by "
                         "LDNet (its tasks read the labels, with their descriptions)")
    unknown = sorted(set(conf) - set(_TASK_KEYS), key=str)
    if unknown:
        raise ValueError(f"{_where(where, unknown[0])}: unknown key (allowed: {list(_TASK_KEYS)})")
    name = _label(name if name is not None else conf.get("task"), _where(where, "task"))
    raw = conf.get("labels")
    labels: dict[str, str | None] = {}
    if isinstance(raw, Mapping):
        for lab, desc in raw.items():
            labels[_label(lab, _where(where, f"labels.{lab}"))] = _description(desc, _where(where, f"labels.{lab}"))
    elif isinstance(raw, (list, tuple)):
        for i, lab in enumerate(raw):
            lab = _label(lab, _where(where, f"labels[{i}]"))
            if lab in labels:
                raise ValueError(f"{_where(where, f'labels[{i}]')}: duplicate label {lab!r}")
            labels[lab] = None
    else:
        raise ValueError(f"{_where(where, 'labels')}: expected a list of labels, got {type(raw).__name__}")
    if not labels:
        raise ValueError(f"{_where(where, 'labels')}: no labels")
    descs = conf.get("label_descriptions") or {}
    if not isinstance(descs, Mapping):
        raise ValueError(f"{_where(where, 'label_descriptions')}: expected a {{label: description}} dict")
    for lab, desc in descs.items():
        if lab not in labels:
            raise ValueError(f"{_where(where, f'label_descriptions.{lab}')}: not one of the task's labels {list(labels)}")
        labels[lab] = _description(desc, _where(where, f"label_descriptions.{lab}"))
    multi = conf.get("multi_label", False)
    if not isinstance(multi, bool):
        raise ValueError(f"{_where(where, 'multi_label')}: must be true or false, got {multi!r:.40}")
    top_k = conf.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"{_where(where, 'top_k')}: must be an integer >= 1, got {top_k!r:.40}")
    thr_key = "cls_threshold" if "cls_threshold" in conf else "threshold"
    thr = conf.get(thr_key)
    return ClassificationTask(name, labels, multi, 0.5 if thr is None else _threshold(thr, _where(where, thr_key)),
                              top_k)


def parse_gliner2_schema(schema: Any, path: str = "") -> Gliner2Plan:
    """Validate a GLiNER2 schema dict and map it onto LDNet (:class:`Gliner2Plan`); ``ValueError`` names the key
    path (prefixed with ``path``)."""
    if not isinstance(schema, Mapping):
        raise ValueError(f"{path or 'schema'}: expected a GLiNER2 schema dict, got {type(schema).__name__}")
    unknown = sorted(set(schema) - set(GLINER2_KEYS), key=str)
    if unknown:
        raise ValueError(f"{_where(path, unknown[0])}: unknown GLiNER2 schema key (allowed: {list(GLINER2_KEYS)})")
    plan = Gliner2Plan()
    if schema.get("entity_attributes"):
        raise ValueError(f"{_where(path, 'entity_attributes')}: GLiNER2 entity attributes are not supported by LDNet "
                         "yet; ask for them as entity types or classes")
    if schema.get("structures"):
        raise ValueError(f"{_where(path, 'structures')}: GLiNER2 JSON structures are not supported by LDNet yet; "
                         "extract their fields as entities and relations (or events) instead")
    if schema.get("entities") is not None:
        plan.entities = _labels_with_config(schema["entities"], _where(path, "entities"), _ENTITY_KEYS, plan, "ent")
    if schema.get("relations") is not None:
        plan.relations = _labels_with_config(schema["relations"], _where(path, "relations"), _RELATION_KEYS, plan, "rel")
    tasks = schema.get("classifications")
    if tasks is not None:
        where = _where(path, "classifications")
        if isinstance(tasks, Mapping):
            plan.tasks = [_task(name, conf, _where(where, name)) for name, conf in tasks.items()]
        elif isinstance(tasks, (list, tuple)):
            plan.tasks = [_task(None, conf, f"{where}[{i}]") for i, conf in enumerate(tasks)]
        else:
            raise ValueError(f"{where}: expected a list of tasks, got {type(tasks).__name__}")
        names = [t.name for t in plan.tasks]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"{where}: duplicate task {dup!r}")
    if not (plan.entities or plan.relations or plan.tasks):
        raise ValueError(f"{path or 'schema'}: nothing to extract (no entities, relations or classifications)")
    return plan


def plan_from_ldnet_schema(schema: Mapping[str, Any]) -> Gliner2Plan:
    """An LDNet schema's entity / relation / class labels as a plan (for ``output_format="gliner2"`` on our schema;
    its classes are one multi-label task named ``classification``)."""
    def labels(v: Any) -> dict[str, str | None]:
        return dict(v) if isinstance(v, Mapping) else dict.fromkeys(v or [])

    plan = Gliner2Plan(entities=labels(schema.get("ent")), relations=labels(schema.get("rel")))
    if schema.get("cls"):
        plan.tasks = [ClassificationTask("classification", labels(schema["cls"]), multi_label=True, threshold=0.0)]
    return plan


def decode_threshold(base: Any, plan: Gliner2Plan, kind: str) -> float | None:
    """The lower threshold a pass must be decoded at for the plan's own label thresholds of ``kind``
    (``"extraction"`` or a classification task's name), or None when the call's threshold is enough."""
    floor = min(base) if isinstance(base, (list, tuple)) else float(base)
    if kind == "extraction":
        wanted = [t for (_, _), t in plan.thresholds.items()]
    else:
        wanted = [t.threshold for t in plan.tasks if t.name == kind]
    low = min(wanted, default=floor)
    return max(low, _MIN_THRESHOLD) if low < floor else None


def _keep(item: dict, task: str, label: str, plan: Gliner2Plan) -> bool:
    own = plan.thresholds.get((task, label))
    return own is None or item.get("score", 1.0) >= own


def merge_extraction(normal: dict, low: dict | None, plan: Gliner2Plan, base: Any) -> dict:
    """The entity / relation answer under the plan's label thresholds: labels with their own threshold come from the
    ``low`` pass (decoded at the lowest one) when there is one, filtered by score; the others from ``normal``."""
    floor = min(base) if isinstance(base, (list, tuple)) else float(base)
    out: dict[str, Any] = {k: v for k, v in normal.items() if k not in ("ent", "rel")}
    for task, key in (("ent", "type"), ("rel", "relation")):
        items = []
        for src_name, src in (("normal", normal), ("low", low)):
            if src is None:
                continue
            for item in src.get(task, []):
                own = plan.thresholds.get((task, item[key]))
                from_low = low is not None and own is not None and own < floor
                if (src_name == "low") == from_low and _keep(item, task, item[key], plan):
                    items.append(item)
        if items:
            out[task] = items
    return out


def classify(answer: dict, task: ClassificationTask) -> dict[str, float]:
    """``{class: score}`` of one task's pass (``cls`` + ``cls_scores``), above the task's threshold, best first; a
    single-label task keeps its best class only."""
    scores = answer.get("cls_scores") or {}
    found = [(lab, float(scores.get(lab, 1.0))) for lab in answer.get("cls", []) if lab in task.labels]
    found = sorted((x for x in found if x[1] >= task.threshold), key=lambda x: -x[1])
    return dict(found[: task.top_k] if task.multi_label else found[:1])


def to_gliner2_output(
    extraction: dict | None,
    classes: Mapping[str, dict[str, float]],
    plan: Gliner2Plan,
    include_confidence: bool = False,
    include_spans: bool = False,
) -> dict[str, Any]:
    """GLiNER2's result dict of one text (see the module docstring)."""

    def value(text: str, score: float | None, span: Sequence[int] | None) -> Any:
        if not (include_confidence or include_spans):
            return text
        v: dict[str, Any] = {"text": text}
        if include_confidence:
            v["confidence"] = score
        if include_spans and span is not None:
            v["start"], v["end"] = int(span[0]), int(span[1])
        return v

    ans = extraction or {}
    out: dict[str, Any] = {}
    if plan.entities:
        ents: dict[str, list] = {lab: [] for lab in plan.entities}
        seen: set[tuple[str, str]] = set()
        for e in sorted(ans.get("ent", []), key=lambda e: (-e.get("score", 0.0), e["span"][0])):
            if e["type"] not in ents or (not include_spans and (e["type"], e["text"]) in seen):
                continue
            seen.add((e["type"], e["text"]))
            ents[e["type"]].append((e["span"][0], value(e["text"], e.get("score"), e["span"])))
        entities: dict[str, Any] = {}
        for lab, found in ents.items():
            if plan.dtypes.get(lab) == "str":  # the best mention (found is best-first)
                entities[lab] = found[0][1] if found else None
            else:
                entities[lab] = [v for _, v in sorted(found, key=lambda x: x[0])]
        out["entities"] = entities
    if plan.relations:
        rels: dict[str, list] = {lab: [] for lab in plan.relations}
        for r in sorted(ans.get("rel", []), key=lambda r: (r["head"]["span"][0], r["tail"]["span"][0])):
            if r["relation"] not in rels:
                continue
            score = r.get("score")
            if include_confidence or include_spans:
                pair = {"head": value(r["head"]["text"], score, r["head"]["span"]),
                        "tail": value(r["tail"]["text"], score, r["tail"]["span"])}
            else:
                pair = (r["head"]["text"], r["tail"]["text"])
            rels[r["relation"]].append(pair)
        out["relation_extraction"] = rels
    for task in plan.tasks:
        found = classes.get(task.name, {})
        vals = [{"label": lab, "confidence": s} if include_confidence else lab for lab, s in found.items()]
        out[task.name] = vals if task.multi_label else (vals[0] if vals else None)
    return out


#: one pass of a call: (input index, pass name, LDNet record, threshold or None for the call's)
Job = tuple[int, str, dict, "float | None"]


def expand_inputs(items: Sequence[Any], call_schema: Any, base: Any, single: bool) -> tuple[list[Gliner2Plan], list[Job]]:
    """The plan of every input (texts or records; a record's own schema wins over ``call_schema``) and the LDNet
    passes to run: for a GLiNER2 schema an entity / relation pass (plus one at a lower threshold when a label asks
    for it) and one ``cls`` pass per task; for an LDNet schema shown in GLiNER2's shape, one pass. ``base``: the
    call's threshold. Raises ``ValueError`` naming ``schema`` / ``inputs[i].schema`` and the key path."""
    plans: list[Gliner2Plan] = []
    jobs: list[Job] = []
    for i, x in enumerate(items):
        rec = {"text": x} if isinstance(x, str) else dict(x)
        schema = rec.pop("schema", None)
        schema = call_schema if schema is None else schema
        where = "schema" if single or schema is call_schema else f"inputs[{i}].schema"
        if is_gliner2_schema(schema):
            plan = parse_gliner2_schema(schema, where)
            extraction = plan.extraction_schema()
            if extraction:
                jobs.append((i, "extraction", {**rec, "schema": extraction}, None))
                low = decode_threshold(base, plan, "extraction")
                if low is not None:
                    jobs.append((i, "extraction_low", {**rec, "schema": extraction}, low))
            for task in plan.tasks:
                jobs.append((i, f"task:{task.name}", {**rec, "schema": {"cls": dict(task.labels)}},
                             decode_threshold(base, plan, task.name)))
        else:  # an LDNet schema shown in GLiNER2's shape: one pass, as the model was trained
            check_schema_fields(schema, f"universal-ie: {where}")
            other = sorted(k for k, v in (schema or {}).items() if v and k not in ("ent", "rel", "cls", DESCRIPTIONS))
            if other:
                raise ValueError(f"universal-ie: {where}.{other[0]} has no GLiNER2 output form (entities, relations "
                                 "and classes only); use output_format='ldnet'")
            plan = plan_from_ldnet_schema(schema or {})
            jobs.append((i, "extraction", {**rec, "schema": schema}, None))
        plans.append(plan)
    return plans, jobs


def assemble_outputs(plans: Sequence[Gliner2Plan], results: Mapping[tuple[int, str], dict], base: Any,
                     output_format: str, include_confidence: bool = False, include_spans: bool = False,
                     cls_scores: bool = False) -> list[dict]:
    """One answer per input from the passes' answers (``results[(input index, pass name)]``, decoded with scores and
    ``cls_scores``): GLiNER2's result dict, or LDNet's unified ``ans`` (classes of every task in ``cls``, plus
    ``cls_scores`` when asked)."""
    out = []
    for i, plan in enumerate(plans):
        main = results.get((i, "extraction"), {})
        extraction = merge_extraction(main, results.get((i, "extraction_low")), plan, base)
        classes = {t.name: classify(results.get((i, f"task:{t.name}"), main), t) for t in plan.tasks}
        if output_format == "gliner2":
            out.append(to_gliner2_output(extraction, classes, plan, include_confidence, include_spans))
            continue
        ans = {k: v for k, v in extraction.items() if k not in ("cls", "cls_scores")}
        labels = {lab: s for found in classes.values() for lab, s in found.items()}
        if labels:
            ans["cls"] = list(labels)
            if cls_scores:
                ans["cls_scores"] = labels
        out.append(ans)
    return out


__all__ = [
    "GLINER2_KEYS",
    "OUTPUT_FORMATS",
    "ClassificationTask",
    "Gliner2Plan",
    "Job",
    "assemble_outputs",
    "classify",
    "decode_threshold",
    "expand_inputs",
    "is_gliner2_schema",
    "merge_extraction",
    "parse_gliner2_schema",
    "plan_from_ldnet_schema",
    "to_gliner2_output",
]
