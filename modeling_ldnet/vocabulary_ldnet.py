"""The shared vocabulary of LDNet: task fields of a schema / answer, and the paper-style default instructions.

The one home of these names: ``modeling_ldnet`` (schema, pipeline, model card), ``processing`` (converters),
``trainers`` and the metric import them from here. Shipped as remote code: no imports at all.
"""

from __future__ import annotations

#: schema fields holding a list of labels (SPEC §1)
SCHEMA_LIST_FIELDS: tuple[str, ...] = ("cls", "ent", "discontinuous_ent", "rel")
#: schema fields holding ``{name: [role / qualifier labels]}``
SCHEMA_DICT_FIELDS: tuple[str, ...] = ("hyper_rel", "event")
#: the task fields, in SPEC order: what a schema can ask for
TASK_FIELDS: tuple[str, ...] = SCHEMA_LIST_FIELDS + SCHEMA_DICT_FIELDS
#: the ``ans`` fields: the tasks plus ``span`` (extractive QA, asked for by an empty schema)
ANS_FIELDS: tuple[str, ...] = TASK_FIELDS + ("span",)

NER_INSTRUCTION = "Please identify possible entities from the given text and determine their types."
RE_INSTRUCTION = "Please determine the two entities mentioned in the text and specify the nature of their relationship."
JOINT_INSTRUCTION = (
    "Please identify possible entities from the given text and determine their types, "
    "then determine the relationships between them."
)
HYPER_RE_INSTRUCTION = "Please determine the relational facts in the text and the qualifiers of each fact."
EE_INSTRUCTION = "Please identify the events and their arguments in the text."
ABSA_INSTRUCTION = "Please identify the aspect terms, opinion terms and their sentiment polarity in the text."
CLS_INSTRUCTION = "Please classify the text."

#: Paper-style default instructions by schema task (``"ent+rel"``: a joint entity + relation schema); the converters'
#: default wording (``processing/``) and the first phrasing of each instruction pool (``trainers.instructions``).
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "ent": NER_INSTRUCTION,
    "discontinuous_ent": NER_INSTRUCTION,
    "rel": RE_INSTRUCTION,
    "ent+rel": JOINT_INSTRUCTION,
    "hyper_rel": HYPER_RE_INSTRUCTION,
    "event": EE_INSTRUCTION,
    "cls": CLS_INSTRUCTION,
}

__all__ = [
    "ABSA_INSTRUCTION",
    "ANS_FIELDS",
    "CLS_INSTRUCTION",
    "DEFAULT_INSTRUCTIONS",
    "EE_INSTRUCTION",
    "HYPER_RE_INSTRUCTION",
    "JOINT_INSTRUCTION",
    "NER_INSTRUCTION",
    "RE_INSTRUCTION",
    "SCHEMA_DICT_FIELDS",
    "SCHEMA_LIST_FIELDS",
    "TASK_FIELDS",
]
