"""spaCy component ``"ldnet"``: LDNet universal IE inside a spaCy pipeline.

    import spacy
    nlp = spacy.blank("en")
    nlp.add_pipe("ldnet", config={"model": "runs/demo/model",
                                  "schema": {"ent": ["people", "location"], "rel": ["live in"]},
                                  "threshold": 0.5})
    doc = nlp("Jerry Smith lives in New York .")
    doc.ents, doc.spans["ldnet"], doc._.relations

Registered through the ``spacy_factories`` entry point (so ``add_pipe("ldnet")`` works without importing this module)
and with ``@Language.factory`` when imported. Inference is ``pipeline("universal-ie")``: ``nlp.pipe`` sends
``batch_size`` docs per forward pass, long docs go through the model's sliding windows.

Where the answers go:

* entities: ``doc.spans[spans_key]`` (all of them, overlapping ones included; ``attrs["scores"]`` in span order,
  and ``span._.ldnet_score``), and in ``doc.ents`` the best non-overlapping subset (:func:`select_ents`:
  ``ents_priority="score"`` takes the highest-scored span first, longer then earlier on ties; ``"length"`` is
  ``spacy.util.filter_spans``), leaving out spans that clash with earlier components' ``doc.ents`` unless
  ``overwrite_ents``; the spans left out are counted in ``report`` (``ents_overlapping``, ``ents_conflicting``);
* relations and hyper-relational facts: ``doc._.relations`` (``{"label", "head": Span, "tail": Span, "score"}``,
  plus ``"qualifiers": [{"label", "span"}]`` for facts); events: ``doc._.events`` (``{"label", "trigger": Span,
  "args": [{"role", "span"}], "score"}``); discontinuous entities: ``doc._.discontinuous_ents`` (``{"label",
  "spans": [Span, ...], "score"}``); classes: ``doc._.classes`` (labels) and ``doc.cats`` (1.0 / 0.0 per schema
  class label); MRC answers: ``doc.spans[spans_key + "_answers"]``; the raw ``ans`` dict: ``doc._.ldnet_ans``.

Alignment: LDNet's character offsets come from its own tokenizer (word pieces), so a span may end inside a spaCy
token. Such spans are mapped with ``alignment_mode`` (``"expand"`` by default: the covering spaCy tokens); each one
is listed in ``doc._.ldnet_misaligned`` (original offsets, text and the span it became) and counted in the
component's ``report``. A span that cannot be mapped at all (e.g. ``"contract"`` leaves nothing) is listed in
``doc._.ldnet_unaligned`` and counted, never silently dropped.
"""

from collections import Counter
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import filter_spans, minibatch

# Doc / Span extensions (defaults None: a doc the component has not seen is told apart from one with no answers)
_DOC_EXTENSIONS = ("relations", "events", "classes", "discontinuous_ents", "ldnet_ans", "ldnet_misaligned",
                   "ldnet_unaligned", "ldnet_schema")
for _name in _DOC_EXTENSIONS:
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=None)
if not Span.has_extension("ldnet_score"):
    Span.set_extension("ldnet_score", default=None)

ALIGNMENT_MODES = ("strict", "contract", "expand")
ENTS_PRIORITIES = ("score", "length")


def select_ents(spans: List[Span], scores: List[Optional[float]], priority: str = "score",
                taken: Iterable[Span] = ()) -> Tuple[List[Span], int, int]:
    """The entities of ``doc.ents``: a non-overlapping subset of ``spans`` that does not overlap ``taken`` either.

    ``priority="score"``: greedy by score (a span without a score ranks below every scored one), ties broken as
    ``spacy.util.filter_spans`` does (longer first, then earlier), so with equal or missing scores both agree;
    ``"length"``: exactly ``filter_spans`` (longest first), ignoring scores. Returns ``(chosen sorted by start,
    left out for overlapping a chosen span, left out for clashing with taken)``.
    """
    if priority not in ENTS_PRIORITIES:
        raise ValueError(f"ents_priority must be one of {ENTS_PRIORITIES}, got {priority!r}")
    if len(spans) != len(scores):
        raise ValueError(f"select_ents: {len(spans)} spans but {len(scores)} scores")
    blocked = [(t.start, t.end) for t in taken]
    free = []
    for sp, sc in zip(spans, scores):
        if any(sp.start < e and s < sp.end for s, e in blocked):
            continue
        free.append((sp, sc))
    conflicting = len(spans) - len(free)
    if priority == "length":
        chosen = filter_spans([sp for sp, _ in free])
    else:
        order = sorted(free, key=lambda x: (x[1] is None, -(x[1] or 0.0), -len(x[0]), x[0].start))
        chosen, used = [], set()
        for sp, _ in order:
            if not used.intersection(range(sp.start, sp.end)):
                chosen.append(sp)
                used.update(range(sp.start, sp.end))
        chosen.sort(key=lambda sp: sp.start)
    return chosen, len(free) - len(chosen), conflicting


def _class_labels(schema: Dict[str, Any]) -> List[str]:
    """The class labels a schema asks for: ``cls``, or every task's labels of a GLiNER2 schema (docs/gliner2.md)."""
    from modeling_ldnet.gliner2_ldnet import is_gliner2_schema, parse_gliner2_schema

    if is_gliner2_schema(schema):
        return list(dict.fromkeys(lab for task in parse_gliner2_schema(schema).tasks for lab in task.labels))
    return list(schema.get("cls") or [])


class LDNetComponent:
    """The pipeline component (see the module docstring). ``doc._.ldnet_schema``, when set, overrides the schema
    for that doc."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        model: str,
        schema: Optional[Dict[str, Any]],
        instruction: Optional[str],
        threshold: Optional[float],
        batch_size: int,
        spans_key: str,
        alignment_mode: str,
        overwrite_ents: bool,
        device: Optional[str],
        dtype: Optional[str],
        ents_priority: str = "score",
    ) -> None:
        # imported here: spaCy imports this module for every pipeline (entry point), torch only when used
        from .extract import load_pipeline

        if not model:
            raise ValueError(f"{name}: config 'model' is required (a saved LDNet folder)")
        if alignment_mode not in ALIGNMENT_MODES:
            raise ValueError(f"{name}: alignment_mode must be one of {ALIGNMENT_MODES}, got {alignment_mode!r}")
        if batch_size < 1:
            raise ValueError(f"{name}: batch_size must be >= 1, got {batch_size}")
        if ents_priority not in ENTS_PRIORITIES:
            raise ValueError(f"{name}: ents_priority must be one of {ENTS_PRIORITIES}, got {ents_priority!r}")
        self.name = name
        self.ie = load_pipeline(model, device=device or "cpu", dtype=dtype)
        self.schema = schema
        self.instruction = instruction
        self.threshold = threshold
        self.batch_size = batch_size
        self.spans_key = spans_key
        self.alignment_mode = alignment_mode
        self.overwrite_ents = overwrite_ents
        self.ents_priority = ents_priority
        self.report: Counter = Counter()
        #: labels of the schemas run so far that the model never saw in training (``{task: [labels]}``; the pipeline's
        #: ``last_report.unseen_labels``, also logged as a warning once per batch); empty for a generalist model
        self.unseen_labels: Dict[str, List[str]] = {}

    # -- running ------------------------------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, stream: Iterable[Doc], batch_size: Optional[int] = None) -> Iterator[Doc]:
        """``batch_size`` docs (the component's config; spaCy's larger buffer size is not a forward size) per
        forward pass."""
        from .extract import run_records

        for docs in minibatch(stream, size=self.batch_size):
            records = [self._record(doc, i) for i, doc in enumerate(docs)]
            answers = run_records(self.ie, records, self.threshold)
            unseen = getattr(getattr(self.ie, "last_report", None), "unseen_labels", None) or {}
            for task, labels in unseen.items():
                known = self.unseen_labels.setdefault(task, [])
                known.extend(x for x in labels if x not in known)
            if unseen:
                self.report["docs_with_unseen_labels"] += len(docs)
            for doc, ans in zip(docs, answers):
                self.set_annotations(doc, ans)
                yield doc

    def _record(self, doc: Doc, index: int) -> Dict[str, Any]:
        schema = doc._.ldnet_schema if doc._.ldnet_schema is not None else self.schema
        if schema is None and not self.instruction:
            raise ValueError(f"{self.name}: no schema (set config 'schema' or doc._.ldnet_schema) for doc {index}")
        rec: Dict[str, Any] = {"id": index, "text": doc.text, "schema": schema or {}}
        if self.instruction is not None:
            rec["instruction"] = self.instruction
        return rec

    # -- answers -> spaCy objects -----------------------------------------------------------------------------
    def set_annotations(self, doc: Doc, ans: Dict[str, Any]) -> None:
        misaligned: List[Dict[str, Any]] = []
        unaligned: List[Dict[str, Any]] = []
        cache: Dict[Tuple[int, int, str], Optional[Span]] = {}

        def span(start: int, end: int, label: str = "") -> Optional[Span]:
            key = (start, end, label)
            if key not in cache:
                cache[key] = self._align(doc, start, end, label, misaligned, unaligned)
            return cache[key]

        ents: List[Tuple[Span, float]] = []
        for e in ans.get("ent", []):
            sp = span(*e["span"], e["type"])
            if sp is not None:
                sp._.ldnet_score = e.get("score")
                ents.append((sp, e.get("score")))
        ent_at = {(sp.start_char, sp.end_char): sp for sp, _ in ents}

        def arg(d: Dict[str, Any]) -> Optional[Span]:
            # a relation / event argument: the entity span with those offsets when there is one, else an unlabeled span
            s, e = d["span"]
            return ent_at.get((s, e)) or span(s, e)

        relations = []
        for r in ans.get("rel", []):
            head, tail = arg(r["head"]), arg(r["tail"])
            if head is not None and tail is not None:
                relations.append({"label": r["relation"], "head": head, "tail": tail, "score": r.get("score")})
        for r in ans.get("hyper_rel", []):
            head, tail = arg(r["head"]), arg(r["tail"])
            quals = [{"label": q["label"], "span": sp} for q in r.get("qualifiers", []) if (sp := arg(q)) is not None]
            if head is not None and tail is not None:
                relations.append({"label": r["relation"], "head": head, "tail": tail, "qualifiers": quals,
                                  "score": r.get("score")})
        events = []
        for ev in ans.get("event", []):
            trigger = span(*ev["trigger"]["span"], ev["event_type"])
            args = [{"role": a["role"], "span": sp} for a in ev.get("args", []) if (sp := arg(a)) is not None]
            if trigger is not None:
                events.append({"label": ev["event_type"], "trigger": trigger, "args": args, "score": ev.get("score")})
        discontinuous = []
        for d in ans.get("discontinuous_ent", []):
            parts = [span(s, e, d["type"]) for s, e in d["span"]]
            if all(p is not None for p in parts):
                discontinuous.append({"label": d["type"], "spans": parts, "score": d.get("score")})
        answers = [sp for a in ans.get("span", []) if (sp := span(*a["span"])) is not None]

        doc.spans[self.spans_key] = SpanGroup(
            doc, name=self.spans_key, spans=[sp for sp, _ in ents], attrs={"scores": [s for _, s in ents]}
        )
        if answers:
            doc.spans[self.spans_key + "_answers"] = SpanGroup(doc, name=self.spans_key + "_answers", spans=answers)
        self._set_ents(doc, [sp for sp, _ in ents], [s for _, s in ents])
        classes = list(ans.get("cls", []))
        schema = doc._.ldnet_schema if doc._.ldnet_schema is not None else (self.schema or {})
        for label in _class_labels(schema):
            doc.cats[label] = 1.0 if label in classes else 0.0
        doc._.relations = relations
        doc._.events = events
        doc._.classes = classes
        doc._.discontinuous_ents = discontinuous
        doc._.ldnet_ans = ans
        doc._.ldnet_misaligned = misaligned
        doc._.ldnet_unaligned = unaligned

    def _set_ents(self, doc: Doc, spans: List[Span], scores: List[Optional[float]]) -> None:
        # doc.ents cannot hold overlaps: the best non-overlapping spans go there, all of them stay in doc.spans
        taken = () if self.overwrite_ents else doc.ents
        chosen, overlapping, conflicting = select_ents(spans, scores, self.ents_priority, taken)
        self.report["ents_overlapping"] += overlapping  # left out of doc.ents for a better overlapping span
        self.report["ents_conflicting"] += conflicting  # left out for an earlier component's entity
        doc.ents = sorted([*taken, *chosen], key=lambda s: s.start)

    def _align(self, doc: Doc, start: int, end: int, label: str, misaligned: list, unaligned: list) -> Optional[Span]:
        sp = doc.char_span(start, end, label=label, alignment_mode="strict")
        if sp is not None:
            return sp
        item = {"span": [start, end], "text": doc.text[start:end], "label": label}
        sp = None if self.alignment_mode == "strict" else doc.char_span(
            start, end, label=label, alignment_mode=self.alignment_mode)
        if sp is None or len(sp) == 0:
            self.report["unaligned"] += 1
            unaligned.append(item)
            return None
        self.report["misaligned"] += 1
        misaligned.append({**item, "aligned_to": [sp.start_char, sp.end_char]})
        return sp


@Language.factory(
    "ldnet",
    default_config={
        "model": None,
        "schema": None,
        "instruction": None,
        "threshold": None,
        "batch_size": 8,
        "spans_key": "ldnet",
        "alignment_mode": "expand",
        "overwrite_ents": False,
        "ents_priority": "score",
        "device": None,
        "dtype": None,
    },
    assigns=["doc.ents", "doc.spans", "doc.cats", "doc._.relations", "doc._.events", "doc._.classes"],
)
def make_ldnet(
    nlp: Language,
    name: str,
    model: Optional[str],
    schema: Optional[Dict[str, Any]],
    instruction: Optional[str],
    threshold: Optional[float],
    batch_size: int,
    spans_key: str,
    alignment_mode: str,
    overwrite_ents: bool,
    device: Optional[Union[str, int]],
    dtype: Optional[str],
    ents_priority: str,
) -> LDNetComponent:
    """The ``"ldnet"`` factory: ``nlp.add_pipe("ldnet", config={"model": ..., "schema": ..., "threshold": ...})``."""
    return LDNetComponent(nlp, name, model, schema, instruction, threshold, batch_size, spans_key, alignment_mode,
                          overwrite_ents, device, dtype, ents_priority)


__all__ = ["ENTS_PRIORITIES", "LDNetComponent", "make_ldnet", "select_ents"]
