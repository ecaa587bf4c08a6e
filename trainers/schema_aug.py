"""Schema augmentation for generalisation: per-record label shuffling and sampled negative labels.

The processor lays schema labels out in the record's own order (SPEC §2), and every record of a converted corpus
carries the same label list in the same order. A model can then learn "the 2nd ``[LM]`` is *location*" instead of
reading the label text. During (pre-)training, per record and per epoch, :class:`SchemaAugmenter`:

* **shuffles** the label order inside every schema field (``cls``, ``ent``, ``discontinuous_ent``, ``rel``, the
  relation / event-type keys of ``hyper_rel`` / ``event`` and, optionally, the qualifier / role lists inside them);
  the processor's fixed *field* order (cls, ent, discontinuous ent, rel, hyper rel, event) is part of the format
  and is kept;
* adds **negative labels** with probability ``negative_rate``: 1 to ``max_negatives`` labels of the same field drawn
  from the inventory of the same task type (:class:`LabelPool`, collected over the whole pre-training mix, so an NER
  record may be shown e.g. *gene* or *disease* from another NER corpus); event types / hyper relations come with
  their pooled role / qualifier lists;
* optionally **drops non-gold labels** (``drop_nongold_rate``: each label absent from the record's answers is
  removed with that probability), never a gold one, and never the last label of a field;
* optionally **drops a whole field with its answers** (``drop_field_rate``): a joint entity + relation record is
  then shown as relation-only or entity-only, the partial schemas users write (``{"rel": [...]}`` alone). Without
  it a joint-trained model has never seen a relation-only schema and answers it poorly.

Gold labels are never removed and answers are never changed (except a field dropped whole, answers included), so
the gold span graph is the same up to positions.
All draws come from ``record_rng(seed, epoch, record id, "schema")``: deterministic per seed, fresh every epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modeling_ldnet.schema import normalize_record
from modeling_ldnet.vocabulary_ldnet import SCHEMA_DICT_FIELDS, SCHEMA_LIST_FIELDS

from .instructions import record_rng, record_task

LIST_FIELDS, DICT_FIELDS = SCHEMA_LIST_FIELDS, SCHEMA_DICT_FIELDS
FIELDS = LIST_FIELDS + DICT_FIELDS
_RECORD_KEYS = ("id", "instruction", "schema", "text", "bg", "ans", "image")


@dataclass
class SchemaAugConfig:
    """Knobs of :class:`SchemaAugmenter` (all off = identity).

    Attributes:
        shuffle: shuffle the label order inside every schema field.
        shuffle_inner: also shuffle the role / qualifier lists of events / hyper relations.
        negative_rate: probability that a record gets negative labels.
        max_negatives: a record that gets negatives gets ``1..max_negatives`` of them (uniform), over its fields.
        drop_nongold_rate: probability of removing each label that no gold answer uses (0 = never).
        drop_field_rate: probability that a record whose schema has several fields loses one of them (uniform over
            its fields), answers of that field included (0 = never).
        negative_fields: schema fields that may receive negatives (``cls`` is left out by default: adding an
            unrelated class changes a classification task's meaning).
    """

    shuffle: bool = True
    shuffle_inner: bool = True
    negative_rate: float = 0.0
    max_negatives: int = 4
    drop_nongold_rate: float = 0.0
    drop_field_rate: float = 0.0
    negative_fields: tuple[str, ...] = ("ent", "discontinuous_ent", "rel", "hyper_rel", "event")

    def __post_init__(self) -> None:
        for name in ("negative_rate", "drop_nongold_rate", "drop_field_rate"):
            v = getattr(self, name)
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if int(self.max_negatives) < 0:
            raise ValueError("max_negatives must be >= 0")
        self.negative_fields = tuple(self.negative_fields)
        bad = set(self.negative_fields) - set(FIELDS)
        if bad:
            raise ValueError(f"unknown negative_fields {sorted(bad)}; allowed: {FIELDS}")

    @property
    def is_identity(self) -> bool:
        return (not self.shuffle and self.negative_rate == 0.0 and self.drop_nongold_rate == 0.0
                and self.drop_field_rate == 0.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["negative_fields"] = list(self.negative_fields)
        return d


# ---------------------------------------------------------------------------------------------------------------
# gold labels and the label pool
# ---------------------------------------------------------------------------------------------------------------


def gold_labels(record: Mapping[str, Any]) -> dict[str, Any]:
    """Labels the record's answers use: ``{field: set}`` for list fields and ``{field: {key: set(inner)}}`` for
    ``hyper_rel`` (relation -> qualifier labels) / ``event`` (event type -> roles). SPEC-form answers."""
    ans = record.get("ans") or {}
    out: dict[str, Any] = {f: set() for f in LIST_FIELDS}
    out["hyper_rel"], out["event"] = {}, {}
    out["cls"].update(ans.get("cls") or [])
    out["ent"].update(e["type"] for e in ans.get("ent") or [])
    out["discontinuous_ent"].update(e["type"] for e in ans.get("discontinuous_ent") or [])
    out["rel"].update(r["relation"] for r in ans.get("rel") or [])
    for h in ans.get("hyper_rel") or []:
        out["hyper_rel"].setdefault(h["relation"], set()).update(q["label"] for q in h.get("qualifiers") or [])
    for e in ans.get("event") or []:
        out["event"].setdefault(e["event_type"], set()).update(a["role"] for a in e.get("args") or [])
    return out


def pool_group(task: str, field_name: str) -> str:
    """Inventory a (task, field) draws negatives from: joint ``ner_re`` records share entity types with ``ner``
    and relation types with ``re``; every other task type has its own inventory (ABSA polarities stay apart from
    relation types)."""
    if task == "ner_re":
        return "ner" if field_name == "ent" else "re"
    return task


@dataclass
class LabelPool:
    """Label inventory per ``(task type, schema field)`` — the source of negative labels.

    ``lists[task][field]`` is an ordered list of labels (first-seen order); ``dicts[task][field][key]`` the ordered
    inner labels (roles / qualifiers) of an event type / hyper relation.
    """

    lists: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    dicts: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any], task: str | None = None) -> None:
        rec = normalize_record(dict(record))
        t = record_task(record, task)
        schema = rec["schema"]
        for f in LIST_FIELDS:
            if schema.get(f):
                bucket = self.lists.setdefault(pool_group(t, f), {}).setdefault(f, [])
                seen = set(bucket)
                bucket.extend(x for x in dict.fromkeys(schema[f]) if x not in seen)
        for f in DICT_FIELDS:
            for key, inner in (schema.get(f) or {}).items():
                bucket = self.dicts.setdefault(pool_group(t, f), {}).setdefault(f, {}).setdefault(key, [])
                seen = set(bucket)
                bucket.extend(x for x in dict.fromkeys(inner) if x not in seen)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], task: str | None = None) -> LabelPool:
        """Pool of ``records`` (each record's task: ``task``, else its ``task`` column, else inferred)."""
        pool = cls()
        for r in records:
            pool.add(r, task)
        return pool

    @classmethod
    def from_schemas(cls, items: Iterable[tuple[str, Mapping[str, Any]]]) -> LabelPool:
        """Pool from ``(task, schema)`` pairs (e.g. one distinct schema per corpus: much faster than all records)."""
        pool = cls()
        for t, schema in items:
            pool.add({"id": "_", "schema": dict(schema)}, t)
        return pool

    def candidates(self, task: str, field_name: str) -> list[str]:
        """Labels of ``field_name`` known for ``task``'s inventory (:func:`pool_group`)."""
        g = pool_group(task, field_name)
        if field_name in LIST_FIELDS:
            return list(self.lists.get(g, {}).get(field_name, []))
        return list(self.dicts.get(g, {}).get(field_name, {}))

    def inner(self, task: str, field_name: str, key: str) -> list[str]:
        return list(self.dicts.get(pool_group(task, field_name), {}).get(field_name, {}).get(key, []))

    def to_dict(self) -> dict[str, Any]:
        return {"lists": self.lists, "dicts": self.dicts}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelPool:
        return cls(lists={k: dict(v) for k, v in d.get("lists", {}).items()},
                   dicts={k: dict(v) for k, v in d.get("dicts", {}).items()})


# ---------------------------------------------------------------------------------------------------------------
# the augmenter
# ---------------------------------------------------------------------------------------------------------------


class SchemaAugmenter:
    """Applies :class:`SchemaAugConfig` to records (see the module docstring).

    Args:
        config: the knobs (or a dict of them).
        pool: negative-label source; without one no negatives are added.
        seed: base seed; draws depend on ``(seed, epoch, record id)`` only.
    """

    def __init__(self, config: SchemaAugConfig | Mapping[str, Any] | None = None, pool: LabelPool | None = None,
                 seed: int = 0) -> None:
        if config is None:
            config = SchemaAugConfig()
        elif isinstance(config, Mapping):
            config = SchemaAugConfig(**config)
        self.config = config
        self.pool = pool
        self.seed = int(seed)

    def __call__(self, record: Mapping[str, Any], epoch: int = 0, task: str | None = None) -> dict[str, Any]:
        """A new SPEC-form record (deep copy) with the augmented schema; ``ans`` is unchanged.

        Extra columns of the input (``task``, ``corpus``, ``pool``...) are carried over.
        """
        rec = normalize_record(dict(record))
        for k, v in record.items():
            if k not in _RECORD_KEYS:
                rec[k] = v
        cfg = self.config
        if cfg.is_identity:
            return rec
        rng = record_rng(self.seed, epoch, rec["id"], "schema")
        t = record_task(record, task)
        schema = rec["schema"]
        gold = gold_labels(rec)
        # 0. a whole field with its answers (a joint record seen as a relation-only / entity-only one)
        if cfg.drop_field_rate > 0:
            fields = [f for f in FIELDS if schema.get(f)]
            if len(fields) > 1 and rng.random() < cfg.drop_field_rate:
                f = rng.choice(fields)
                schema.pop(f)
                rec["ans"] = {k: v for k, v in (rec.get("ans") or {}).items() if k != f}
                if rec.get("descriptions"):
                    rec["descriptions"] = [d for d in rec["descriptions"] if d.get("task") != f]
                gold = gold_labels(rec)
        original = {f: set(schema.get(f) or []) for f in FIELDS}  # negatives never re-add a dropped label

        # 1. drop non-gold labels (never a gold one; a field is never emptied: that would turn the record into a
        #    different task, e.g. span-only [TP] mode)
        if cfg.drop_nongold_rate > 0:
            for f in LIST_FIELDS:
                if schema.get(f):
                    kept_list = [x for x in schema[f] if x in gold[f] or rng.random() >= cfg.drop_nongold_rate]
                    schema[f] = kept_list or [rng.choice(schema[f])]
            for f in DICT_FIELDS:
                if schema.get(f):
                    kept = {}
                    for key, inner in schema[f].items():
                        if key in gold[f] or rng.random() >= cfg.drop_nongold_rate:
                            g = gold[f].get(key, set())
                            kept[key] = [x for x in inner if x in g or rng.random() >= cfg.drop_nongold_rate]
                    if not kept:
                        key = rng.choice(list(schema[f]))
                        kept[key] = list(schema[f][key])
                    schema[f] = kept

        # 2. negatives from the same task's inventory (only into fields the record already uses)
        if self.pool is not None and cfg.negative_rate > 0 and cfg.max_negatives > 0 and rng.random() < cfg.negative_rate:
            options: list[tuple[str, str]] = []
            for f in cfg.negative_fields:
                if not original[f]:
                    continue
                present = set(schema[f]) | original[f]
                options += [(f, x) for x in self.pool.candidates(t, f) if x not in present]
            if options:
                n = rng.randint(1, min(cfg.max_negatives, len(options)))
                for f, label in rng.sample(options, n):
                    if f in LIST_FIELDS:
                        schema[f].append(label)
                    else:
                        schema[f][label] = self.pool.inner(t, f, label)

        # 3. shuffle label order inside each field
        if cfg.shuffle:
            for f in LIST_FIELDS:
                if len(schema.get(f) or []) > 1:
                    rng.shuffle(schema[f])
            for f in DICT_FIELDS:
                if schema.get(f):
                    keys = list(schema[f])
                    rng.shuffle(keys)
                    new = {}
                    for key in keys:
                        inner = list(schema[f][key])
                        if cfg.shuffle_inner and len(inner) > 1:
                            rng.shuffle(inner)
                        new[key] = inner
                    schema[f] = new
        rec["schema"] = {f: schema[f] for f in FIELDS if schema.get(f)}
        return rec


def permute_schema(record: Mapping[str, Any], order: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Reorder a record's schema labels by a global rank ``order[field][label]`` (labels without a rank keep their
    relative order after the ranked ones). Used by the label-order robustness benchmark: one permutation of the
    label inventory applied to every record."""
    rec = normalize_record(dict(record))
    schema = rec["schema"]
    for f in FIELDS:
        if not schema.get(f):
            continue
        rank = order.get(f, {})
        big = len(rank)
        keys = list(schema[f])
        keys = sorted(keys, key=lambda x: (rank.get(x, big), keys.index(x)))
        if f in LIST_FIELDS:
            schema[f] = keys
        else:
            inner_rank = order.get(f"{f}.inner", {})
            ib = len(inner_rank)
            new = {}
            for k in keys:
                inner = list(schema[f][k])
                new[k] = sorted(inner, key=lambda x: (inner_rank.get(x, ib), inner.index(x)))
            schema[f] = new
    return rec


def rename_labels(record: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``record`` with label strings renamed everywhere (schema and answers; labels not in ``mapping``
    are kept). Used to evaluate on label names a model never saw (zero-shot with unseen label strings)."""
    rec = normalize_record(dict(record))
    m = lambda x: mapping.get(x, x)
    schema = rec["schema"]
    for f in LIST_FIELDS:
        if schema.get(f):
            schema[f] = [m(x) for x in schema[f]]
    for f in DICT_FIELDS:
        if schema.get(f):
            schema[f] = {m(k): [m(x) for x in v] for k, v in schema[f].items()}
    ans = rec["ans"]
    ans_keys = {"cls": None, "ent": "type", "discontinuous_ent": "type", "rel": "relation", "hyper_rel": "relation",
                "event": "event_type"}
    for f, key in ans_keys.items():
        if not ans.get(f):
            continue
        if key is None:
            ans[f] = [m(x) for x in ans[f]]
            continue
        for it in ans[f]:
            it[key] = m(it[key])
            for q in it.get("qualifiers") or []:
                q["label"] = m(q["label"])
            for a in it.get("args") or []:
                a["role"] = m(a["role"])
    return rec


def schema_labels(records: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Label inventory per field (``event.inner`` = roles, ``hyper_rel.inner`` = qualifiers) of ``records``."""
    out: dict[str, list[str]] = {}
    for r in records:
        rec = normalize_record(dict(r))
        for f in FIELDS:
            vals = rec["schema"].get(f) or []
            bucket = out.setdefault(f, [])
            bucket.extend(x for x in vals if x not in bucket)
            if f in DICT_FIELDS:
                ib = out.setdefault(f"{f}.inner", [])
                for labs in (rec["schema"].get(f) or {}).values():
                    ib.extend(x for x in labs if x not in ib)
    return {k: v for k, v in out.items() if v}


def random_label_order(records: Iterable[Mapping[str, Any]], seed: int) -> dict[str, dict[str, int]]:
    """A random global rank over the label inventory of ``records`` (for :func:`permute_schema`); ``seed`` 0 is
    the identity (first-seen order)."""
    rng = random.Random(seed)
    out: dict[str, dict[str, int]] = {}
    for f, labels in schema_labels(records).items():
        labels = list(labels)
        if seed != 0:
            rng.shuffle(labels)
        out[f] = {x: i for i, x in enumerate(labels)}
    return out


__all__ = [
    "DICT_FIELDS",
    "FIELDS",
    "LIST_FIELDS",
    "LabelPool",
    "SchemaAugConfig",
    "SchemaAugmenter",
    "gold_labels",
    "permute_schema",
    "pool_group",
    "random_label_order",
    "rename_labels",
    "schema_labels",
]
