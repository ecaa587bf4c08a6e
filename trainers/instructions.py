"""Instruction pools per task type and a seeded per-record / per-epoch instruction sampler.

The paper pre-trains with several instruction phrasings per corpus (Tables 9-10: 42 NER, 9 RE, 40 EE instructions,
5-40 for most classification sets). Mirror's phrasings are not available here, so the pools below are our own
paraphrases, written for this project. The first entry of every pool is the benchmark converters' default instruction
(``processing/*.py``), so ``mode="default"`` reproduces the converted data exactly.

Task types (``TASKS``): ``ner``, ``re``, ``ner_re`` (joint entity + relation schemas), ``ee``, ``absa``,
``discontinuous_ner``, ``hyper_re``, ``mrc``, ``cls``. Registry task names of ``processing.BENCHMARKS`` map onto them
with :func:`canonical_task` (``mner -> ner``, ``mre -> re``).

MRC is special: its ``instruction`` holds the *question* (SPEC §1), so its pool holds templates with a
``{question}`` slot, and the "w/o Inst." mode keeps the bare question (dropping it would drop the task input).

Sampling is a pure function of ``(seed, epoch, record id)`` (:func:`derive_seed`: a BLAKE2 hash, independent of
``PYTHONHASHSEED``, process and worker), so a pre-training run is reproducible and every epoch sees a fresh phrasing.

    >>> sampler = InstructionSampler(mode="sample", seed=1227)
    >>> rec2 = sampler(rec, epoch=0)            # copy of rec with a sampled instruction
    >>> InstructionSampler(mode="none")(rec)    # "w/o Inst.": instruction "" -> no [I] segment
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from modeling_ldnet.vocabulary_ldnet import (
    ABSA_INSTRUCTION,
    CLS_INSTRUCTION,
    EE_INSTRUCTION,
    JOINT_INSTRUCTION,
    NER_INSTRUCTION,
    RE_INSTRUCTION,
)

# ---------------------------------------------------------------------------------------------------------------
# pools
# ---------------------------------------------------------------------------------------------------------------

NER_POOL: tuple[str, ...] = (
    NER_INSTRUCTION,
    "Find all named entities in the text and label each with its type.",
    "Extract every entity mention from the text and assign it one of the given entity types.",
    "Which spans of the text are entities? Give each one a type from the schema.",
    "Locate the entity mentions in the following text and classify them.",
    "Recognize the named entities in the sentence and tag them with their categories.",
    "Identify the mentions of the listed entity types in the text.",
    "Tag each entity in the text with the most suitable type from the label list.",
    "List the entities that appear in the text together with their types.",
    "Perform named entity recognition on the text using the provided types.",
    "Detect entity spans in the passage and decide which type each span belongs to.",
    "Mark every word sequence in the text that names an entity of one of the given types.",
    "Read the text and pull out all entities, labelling them by type.",
    "Annotate the text with entity mentions and their corresponding types.",
    "Spot the entities mentioned in this text and categorize each of them.",
    "Given the entity types below, find all of their mentions in the text.",
    "Extract named entities and their categories from the sentence.",
    "What entities does the text mention, and of which types are they?",
    "Highlight the entity mentions in the text and give their types.",
    "Find the names of things in the text (people, places, organizations and so on) that match the given types.",
    "Segment the entity mentions out of the text and assign each a label.",
    "Scan the sentence for entities belonging to the schema and report them with their types.",
    "Identify and type the entity mentions contained in the input text.",
    "Pick out the spans referring to entities and say which entity type each one has.",
    "Entity recognition: return each mention in the text with its entity type.",
)

RE_POOL: tuple[str, ...] = (
    RE_INSTRUCTION,
    "Extract relation triples (head entity, relation, tail entity) from the text.",
    "Find pairs of entities in the text and the relation that holds between them.",
    "Identify the relationships expressed in the sentence between its entities.",
    "Which entities in the text are related, and how? Use the relation types given.",
    "List every subject, relation, object triple stated in the text.",
    "Determine the head and tail entities of each relation mentioned in the text.",
    "Extract the relational facts in the text using the provided relation labels.",
    "For each relation in the schema, find the entity pairs in the text that it connects.",
    "Perform relation extraction on the sentence: report head, relation type and tail.",
    "Detect the semantic relations between entity mentions in the following text.",
    "Read the text and extract the relations that link its entities.",
    "Find the entity pairs that stand in one of the listed relations and name the relation.",
    "What relations between entities does the text express? Give head, relation and tail.",
    "Identify relation instances in the text: two entity spans and the relation type joining them.",
    "Pull out all relation triples from the passage according to the relation inventory.",
    "Recognize which entities are connected in the text and classify the connection.",
    "Extract the facts in the text as (entity, relation, entity) triples.",
    "Locate pairs of related mentions in the sentence and label their relation.",
    "Annotate the relations holding between the entities of the text.",
    "Relation extraction: output every head entity, relation label and tail entity found in the text.",
    "Determine which relation from the schema links each pair of related entities in the text.",
    "Find the subjects and objects of the relations mentioned in the text.",
    "Given the relation types, extract all of their instances from the sentence.",
)

NER_RE_POOL: tuple[str, ...] = (
    JOINT_INSTRUCTION,
    "Find the entities in the text with their types, and the relations that connect them.",
    "Extract typed entity mentions and the relation triples between them from the text.",
    "Identify all entities and their types, then list the relations holding between pairs of them.",
    "Perform joint entity and relation extraction on the text.",
    "Recognize the entities of the text, classify them, and extract the relations among them.",
    "Label every entity in the sentence with its type and report how the entities are related.",
    "Extract entities (with types) and relations (with head and tail) from the passage.",
    "Which entities does the text mention, of which types, and what relations link them?",
    "Annotate entity mentions, their types and the relations between them.",
    "List the typed entities in the text and the relation triples they take part in.",
    "Jointly find entity spans, entity types and relation triples in the text.",
)

EE_POOL: tuple[str, ...] = (
    EE_INSTRUCTION,
    "Find the event triggers in the text, their event types and the arguments filling each role.",
    "Extract all events from the text together with their participants and roles.",
    "Detect event mentions in the sentence and identify the arguments of each event.",
    "Which events are described in the text? Give the trigger, the event type and the role fillers.",
    "Perform event extraction: locate triggers, classify them, and extract their arguments.",
    "Identify the words that trigger events and the entities playing a role in those events.",
    "List every event in the passage with its trigger word and its arguments by role.",
    "Extract event structures from the text using the given event types and roles.",
    "Find what happened in the text: event triggers, event types and argument roles.",
    "Annotate the event triggers of the text and link each to its arguments.",
    "Recognize the events mentioned in the sentence and fill in their argument roles.",
    "Read the text and extract events: for each, the trigger and who or what took part in which role.",
    "Identify the event types occurring in the text and the arguments associated with them.",
    "Locate the event triggers and extract the role-labelled arguments for each event.",
    "Event extraction: output triggers with their types and the arguments with their roles.",
    "Detect each event described in the text and the participants, times and places involved.",
    "Given the event schema, find every event instance and its arguments in the text.",
    "Extract the trigger words and the argument spans of the events in the passage.",
    "Which spans trigger events in the text, and which spans fill the roles of those events?",
    "Find the events in the sentence and assign their arguments to the listed roles.",
    "Identify occurrences of the given event types in the text and their role fillers.",
    "Mark the event triggers in the text and the entities that take part in each event.",
)

CLS_POOL: tuple[str, ...] = (
    CLS_INSTRUCTION,
    "Choose the label that best describes the text.",
    "Which of the given labels applies to the text?",
    "Assign the correct class from the label list to the input.",
    "Classify the input into one of the provided categories.",
    "Select the most appropriate label for the following text.",
    "Read the text and decide which category it belongs to.",
    "Determine the class of the text from the options given.",
    "Pick the right label for this input.",
    "Categorize the text using one of the candidate labels.",
    "What is the correct label for the text?",
    "Predict the label of the input text.",
    "Label the text with the matching class.",
    "Decide which option from the schema fits the input best.",
    "Text classification: output the label of the input.",
    "Assign the input to the category it most likely belongs to.",
    "From the list of labels, select the one that matches the text.",
    "Given the candidate classes, identify the class of the text.",
    "Which category does the following input fall into?",
    "Choose the correct answer label for the given input.",
    "Classify the following example according to the label set.",
    "Judge the text and return the label that applies.",
    "Determine the most suitable category for the text below.",
    "Read the input carefully and choose its label.",
)

#: sentiment classification (SST-2 style); selected per corpus with ``"pool": "cls_sentiment"`` in a recipe
CLS_SENTIMENT_POOL: tuple[str, ...] = (
    "Please classify the sentiment of the text.",
    "Is the sentiment of the text positive or negative?",
    "Determine the sentiment expressed in the sentence.",
    "What is the polarity of the opinion in the text?",
    "Decide whether the review is favourable or unfavourable.",
    "Classify the emotional tone of the text.",
    "Does the writer feel positively or negatively about the subject?",
    "Label the sentiment of the following sentence.",
    "Sentiment analysis: choose the label that matches the text.",
    "Read the text and judge its sentiment.",
    "Which sentiment label fits the text best?",
    "Identify whether the text expresses a positive or a negative attitude.",
)

#: sentence-pair inference (NLI / paraphrase); the second text is in ``bg``
CLS_PAIR_POOL: tuple[str, ...] = (
    "Please determine whether the first text entails the second one.",
    "Decide how the second text relates to the first one.",
    "Given the two texts, choose the label describing their relation.",
    "Does the first sentence support the second? Pick the matching label.",
    "Compare the two texts and classify their relationship.",
    "Read both texts and decide which label applies to the pair.",
    "Judge the relation between the text and the background sentence.",
    "Classify the sentence pair with one of the given labels.",
    "Determine whether the two inputs agree, using the candidate labels.",
    "What is the relation between the first and the second text?",
    "Choose the label that describes the pair of sentences.",
    "Pair classification: pick the label for the two texts.",
)

ABSA_POOL: tuple[str, ...] = (
    ABSA_INSTRUCTION,
    "Extract aspect-opinion-sentiment triplets from the review.",
    "Find the aspects mentioned in the review, the opinion words about them and the sentiment expressed.",
    "For each aspect term in the text, give the opinion term describing it and its polarity.",
    "Identify (aspect, opinion, sentiment) triplets in the sentence.",
    "Which aspects does the review talk about, with which opinion words and which sentiment?",
    "Perform aspect sentiment triplet extraction on the text.",
    "Extract the targets of opinions in the review, the opinion expressions and their polarity.",
    "Link each aspect in the sentence to its opinion term and classify the sentiment.",
    "Find the aspect terms and opinion terms of the review and whether the opinion is positive, negative or neutral.",
    "List the aspect, opinion and polarity triples expressed in the text.",
    "Detect opinionated aspects in the review and the sentiment of each opinion.",
)

DISCONTINUOUS_NER_POOL: tuple[str, ...] = (
    NER_INSTRUCTION,
    "Find all entity mentions in the text, including mentions made of several separate pieces, and type them.",
    "Extract entities from the text; an entity may be discontinuous or overlap with another one.",
    "Identify the mentions of the given types, joining non-adjacent fragments that form one mention.",
    "Recognize entities in the sentence, including discontinuous and overlapping ones, with their types.",
    "Locate every mention of the listed entity types, even when its words are not contiguous.",
    "List the entities in the text; each entity may consist of one or more text fragments.",
    "Extract the typed mentions of the text, allowing gaps inside a mention.",
    "Find the spans (possibly split into several parts) that refer to entities of the given types.",
    "Annotate all entity mentions, contiguous or discontinuous, and give their types.",
    "Which mentions of the schema types occur in the text? A mention may span separate fragments.",
    "Perform discontinuous named entity recognition on the text.",
)

HYPER_RE_POOL: tuple[str, ...] = (
    "Please extract hyper relations from the text with the given schema.",
    "Extract relation facts together with their qualifiers from the text.",
    "Find each relation triple in the text and the qualifier values attached to it.",
    "Identify n-ary facts: head, relation, tail and any qualifiers such as time or place.",
    "Extract hyper-relational facts (triple plus qualifier-value pairs) from the sentence.",
    "For every relation in the text, give its head, its tail and its qualifiers.",
    "List the relation triples of the text with the extra qualifier information for each.",
    "Detect relations between entities and the qualifiers that refine each relation.",
    "Extract relations and their qualifier attributes according to the schema.",
    "Find the facts stated in the text, including the qualifiers attached to each fact.",
    "Perform hyper-relational extraction: triples and their qualifiers.",
    "Which relation facts and qualifier values does the text contain?",
)

MRC_POOL: tuple[str, ...] = (
    "{question}",
    "Answer the question using a span of the text: {question}",
    "Question: {question}",
    "Find the answer to the following question in the passage. {question}",
    "Read the passage and extract the answer. {question}",
    "{question} Answer with a span from the text.",
    "Please find the text span that answers: {question}",
    "Extract the answer from the context. Question: {question}",
    "Locate the words in the passage that answer the question. {question}",
    "Using the passage, answer: {question}",
    "Reading comprehension. {question}",
    "Which part of the text answers this question? {question}",
)

#: task type -> phrasings (the first one is the converters' default instruction)
INSTRUCTION_POOLS: dict[str, tuple[str, ...]] = {
    "ner": NER_POOL,
    "re": RE_POOL,
    "ner_re": NER_RE_POOL,
    "ee": EE_POOL,
    "absa": ABSA_POOL,
    "discontinuous_ner": DISCONTINUOUS_NER_POOL,
    "hyper_re": HYPER_RE_POOL,
    "mrc": MRC_POOL,
    "cls": CLS_POOL,
}

#: extra pools selectable per corpus (recipe ``"pool"``, record column ``pool``); each is used as a phrasing pool
#: for records of its base task type
EXTRA_POOLS: dict[str, tuple[str, ...]] = {
    "cls_sentiment": CLS_SENTIMENT_POOL,
    "cls_pair": CLS_PAIR_POOL,
}

TASKS: tuple[str, ...] = tuple(INSTRUCTION_POOLS)

#: ``processing.BENCHMARKS[...].task`` (and common aliases) -> our task type
TASK_ALIASES: dict[str, str] = {
    "ner": "ner",
    "mner": "ner",
    "re": "re",
    "mre": "re",
    "joint": "ner_re",
    "ner_re": "ner_re",
    "ee": "ee",
    "event": "ee",
    "absa": "absa",
    "discontinuous_ner": "discontinuous_ner",
    "dner": "discontinuous_ner",
    "hyper_re": "hyper_re",
    "mrc": "mrc",
    "cls": "cls",
    "classification": "cls",
}

INSTRUCTION_MODES = ("sample", "default", "keep", "none")

_POLARITIES = {"positive", "negative", "neutral"}


def canonical_task(task: str | None) -> str | None:
    """A registry / recipe task name -> one of :data:`TASKS` (``None`` stays ``None``)."""
    if task is None or task == "":
        return None
    key = str(task).lower()
    if key not in TASK_ALIASES:
        raise KeyError(f"unknown task type {task!r}; known: {sorted(TASK_ALIASES)}")
    return TASK_ALIASES[key]


def _schema_get(schema: Mapping[str, Any] | None, field: str) -> Any:
    if not schema:
        return None
    v = schema.get(field)
    return v if v else None


def infer_task(record: Mapping[str, Any]) -> str:
    """Task type of a unified record from its schema (dict or Arrow form).

    ``event -> ee``, ``hyper_rel -> hyper_re``, ``discontinuous_ent -> discontinuous_ner``, ``rel`` with ``ent``
    -> ``ner_re``, ``rel`` whose labels are only polarities -> ``absa``, other ``rel -> re``, ``ent -> ner``,
    ``cls -> cls``, no schema -> ``mrc``. A corpus-level task (recipe / registry) takes precedence over this guess.
    """
    schema = record.get("schema") or {}
    if _schema_get(schema, "event"):
        return "ee"
    if _schema_get(schema, "hyper_rel"):
        return "hyper_re"
    if _schema_get(schema, "discontinuous_ent"):
        return "discontinuous_ner"
    rel = _schema_get(schema, "rel")
    if rel:
        if _schema_get(schema, "ent"):
            return "ner_re"
        if set(rel) <= _POLARITIES:
            return "absa"
        return "re"
    if _schema_get(schema, "ent"):
        return "ner"
    if _schema_get(schema, "cls"):
        return "cls"
    return "mrc"


def record_task(record: Mapping[str, Any], task: str | None = None) -> str:
    """``task`` (canonicalised) if given, else the record's ``task`` column, else :func:`infer_task`.

    A corpus marked ``re`` whose records also carry an ``ent`` schema (e.g. SciERC, CoNLL04 ``with_entities``) is
    treated as ``ner_re`` so that the instruction mentions both entities and relations.
    """
    t = canonical_task(task) or canonical_task(record.get("task"))
    if t is None:
        return infer_task(record)
    if t == "re" and _schema_get(record.get("schema") or {}, "ent"):
        return "ner_re"
    return t


# ---------------------------------------------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------------------------------------------


def derive_seed(*parts: Any) -> int:
    """A 64-bit integer seed from ``parts`` (stable across processes, platforms and ``PYTHONHASHSEED``)."""
    h = hashlib.blake2b("\x1f".join(repr(p) for p in parts).encode("utf-8"), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def record_rng(seed: int, epoch: int, record_id: Any, purpose: str) -> random.Random:
    """``random.Random`` for one (seed, epoch, record, purpose); ``purpose`` separates independent draws."""
    return random.Random(derive_seed(purpose, int(seed), int(epoch), str(record_id)))


# ---------------------------------------------------------------------------------------------------------------
# sampler
# ---------------------------------------------------------------------------------------------------------------


class InstructionSampler:
    """Sets a record's instruction from the task pools.

    Args:
        mode: ``"sample"`` (a phrasing drawn per ``(seed, epoch, record id)``), ``"default"`` (the pool's first
            phrasing = the converters' instruction), ``"keep"`` (the record's own instruction), ``"none"`` (the
            paper's "w/o Inst.": ``""``, so the processor emits no ``[I]`` segment; MRC keeps its bare question).
        seed: base seed of ``"sample"``.
        pools: task type -> phrasings; overrides / extends :data:`INSTRUCTION_POOLS` per task.
        fallback_task: task used when a record's task cannot be told (``None``: inferred from its schema).
    """

    def __init__(
        self,
        mode: str = "sample",
        seed: int = 0,
        pools: Mapping[str, Sequence[str]] | None = None,
        fallback_task: str | None = None,
    ) -> None:
        if mode not in INSTRUCTION_MODES:
            raise ValueError(f"instruction mode must be one of {INSTRUCTION_MODES}, got {mode!r}")
        self.mode = mode
        self.seed = int(seed)
        self.pools: dict[str, tuple[str, ...]] = {**INSTRUCTION_POOLS, **EXTRA_POOLS}
        for k, v in (pools or {}).items():
            v = tuple(v)
            if not v or any(not isinstance(s, str) or not s.strip() for s in v):
                raise ValueError(f"instruction pool {k!r} must be a non-empty list of non-empty strings")
            key = TASK_ALIASES.get(str(k).lower(), str(k))
            if key == "mrc" and any("{question}" not in s for s in v):
                raise ValueError("MRC instruction templates need a '{question}' slot")
            self.pools[key] = v
        self.fallback_task = canonical_task(fallback_task)

    def pool(self, task: str) -> tuple[str, ...]:
        """The phrasings of a task type or of a named pool (``"cls_sentiment"``...)."""
        key = TASK_ALIASES.get(str(task).lower(), str(task))
        if key not in self.pools:
            raise KeyError(f"no instruction pool {task!r}; known: {sorted(self.pools)}")
        return self.pools[key]

    def instruction_for(
        self, record: Mapping[str, Any], epoch: int = 0, task: str | None = None, pool: str | None = None
    ) -> str:
        """The instruction ``record`` gets in ``epoch`` (does not modify the record).

        ``pool`` (or the record's ``pool`` column) names a pool other than the task's own (``"cls_sentiment"``).
        """
        t = record_task(record, task or self.fallback_task)
        own = record.get("instruction") or ""
        if t == "mrc":
            question = own
            if self.mode in ("keep", "none"):
                return question
            templates = self.pools["mrc"]
            if self.mode == "default":
                return templates[0].format(question=question)
            rng = record_rng(self.seed, epoch, record.get("id"), "instruction")
            return rng.choice(templates).format(question=question)
        if self.mode == "keep":
            return own
        if self.mode == "none":
            return ""
        phrasings = self.pool(pool or record.get("pool") or t)
        if self.mode == "default":
            return phrasings[0]
        rng = record_rng(self.seed, epoch, record.get("id"), "instruction")
        return rng.choice(phrasings)

    def __call__(
        self, record: Mapping[str, Any], epoch: int = 0, task: str | None = None, pool: str | None = None
    ) -> dict[str, Any]:
        """A shallow copy of ``record`` with its instruction replaced."""
        out = dict(record)
        out["instruction"] = self.instruction_for(record, epoch, task, pool)
        return out


def sample_instruction(
    record: Mapping[str, Any], seed: int = 0, epoch: int = 0, task: str | None = None, mode: str = "sample"
) -> str:
    """Functional form of :meth:`InstructionSampler.instruction_for`."""
    return InstructionSampler(mode=mode, seed=seed).instruction_for(record, epoch, task)


__all__ = [
    "ABSA_POOL",
    "CLS_PAIR_POOL",
    "CLS_POOL",
    "CLS_SENTIMENT_POOL",
    "DISCONTINUOUS_NER_POOL",
    "EE_POOL",
    "EXTRA_POOLS",
    "HYPER_RE_POOL",
    "INSTRUCTION_MODES",
    "INSTRUCTION_POOLS",
    "MRC_POOL",
    "NER_POOL",
    "NER_RE_POOL",
    "RE_POOL",
    "TASKS",
    "TASK_ALIASES",
    "InstructionSampler",
    "canonical_task",
    "derive_seed",
    "infer_task",
    "record_rng",
    "record_task",
    "sample_instruction",
]
