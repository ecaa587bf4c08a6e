"""ADE (adverse drug events, ADE-Corpus-V2, SpERT version) -> unified joint NER + RE records.

Source format (``shared/data/ade/SOURCE.md``; Coopercoppers/PFN @ 6173b3e6 ``data/ADE/raw/``, SpERT's files
unchanged): ``ade_full.json`` (4272 sentences) and ``ade_split_{0..9}_test.json`` (the 10 cross-validation test
folds, which partition ``ade_full``), each a JSON **list** of SpERT sentences ``{"tokens", "entities": [{"type",
"start", "end"}], "relations": [{"type", "head", "tail"}], "orig_id"}`` -- the sentence layout of CoNLL04, converted
by ``processing.conll04.spert_record`` (the CoNLL04 file is a ``{split: list}`` object, hence no
``read_spert_json`` here). The per-fold train files were not staged: train_k = every ``ade_full`` sentence whose
``orig_id`` is not in test_k (SOURCE.md checked that this equals SpERT's ``ade_split_k_train.json``).

Option ``fold`` (CLI ``--fold``):

* ``"full"`` (default; the pre-training mix): one split ``train`` = all of ``ade_full.json`` in file order, ids
  ``ade.train.<n>``;
* ``0`` .. ``9``: ``train`` = ``ade_full`` minus fold k's test sentences (file order), ``test`` =
  ``ade_split_k_test.json`` (file order), ids ``ade-fold<k>.<split>.<n>``. The standard protocol (SpERT, PFN,
  UIE) reports the mean over the 10 folds. There is no dev split.

Records are joint (``schema.ent`` + ``schema.rel``, instruction ``JOINT_INSTRUCTION``) by default;
``with_entities=False`` gives relation triplets only. Labels: ``Drug -> drug``, ``Adverse-Effect -> adverse
effect``; the one relation keeps the upstream direction (head = the adverse effect, tail = the drug, all 6821
relations) and is named ``adverse effect of`` so that "head *adverse effect of* tail" reads the right way round.
The 120 nested pairs (a drug inside an adverse-effect span) are kept (spans, not BIO).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import JOINT_INSTRUCTION, RE_INSTRUCTION

from .conll04 import spert_record
from .convert import ConversionReport, as_bool, read_json_file, source_folder
from .registry import Benchmark, SourceFormatError, register

ENT_LABELS = {"Drug": "drug", "Adverse-Effect": "adverse effect"}
REL_LABELS = {"Adverse-Effect": "adverse effect of"}
FULL = "ade_full.json"
FOLDS = 10


def fold_test_file(fold: int) -> str:
    """The staged test file of ``fold``."""
    return f"ade_split_{fold}_test.json"


def parse_fold(value: Any) -> int | None:
    """``"full"`` / ``None`` -> ``None``; ``0``..``9`` (int or digit string) -> the fold; anything else ValueError."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "full"):
        return None
    try:
        fold = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"fold: expected 'full' or an integer 0..{FOLDS - 1}, got {value!r}") from None
    if isinstance(value, bool) or not 0 <= fold < FOLDS or str(fold) != str(value).strip():
        raise ValueError(f"fold: expected 'full' or an integer 0..{FOLDS - 1}, got {value!r}")
    return fold


def _orig_ids(path: Path, sents: list[Any]) -> list[Any]:
    """``orig_id`` of every sentence; a missing or repeated one raises :class:`SourceFormatError`."""
    ids, seen = [], set()
    for n, sent in enumerate(sents):
        oid = sent.get("orig_id") if isinstance(sent, dict) else None
        if oid is None:
            raise SourceFormatError(path, n + 1, f"[{n}]: sentence without orig_id")
        if oid in seen:
            raise SourceFormatError(path, n + 1, f"[{n}]: orig_id {oid!r} repeated")
        seen.add(oid)
        ids.append(oid)
    return ids


def read_splits(
    src_dir: Path,
    instruction: str = JOINT_INSTRUCTION,
    report: ConversionReport | None = None,
    fold: Any = "full",
    with_entities: Any = True,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` from ``src_dir`` (the folder holding ``ade_full.json``, or its parent)."""
    report = report or ConversionReport("ade")
    k = parse_fold(fold)
    joint = as_bool(with_entities, "with_entities")
    if not joint and instruction == JOINT_INSTRUCTION:  # the default instruction follows the task
        instruction = RE_INSTRUCTION
    src = source_folder(src_dir, "ade")
    full_path = src / FULL
    if not full_path.is_file():
        report.missing("train", full_path)
        if k is not None:
            report.missing("test", src / fold_test_file(k))
        return {}
    full = read_json_file(full_path, list, "expected a JSON list of SpERT sentences")
    full_ids = _orig_ids(full_path, full)
    dataset = "ade" if k is None else f"ade-fold{k}"

    def gen(split: str, sents: list[Any], path: Path) -> Iterator[dict[str, Any]]:
        for n, sent in enumerate(sents):
            yield spert_record(sent, dataset=dataset, split=split, n=n, instruction=instruction,
                               ent_labels=ENT_LABELS, rel_labels=REL_LABELS, with_entities=joint, path=path,
                               report=report)

    if k is None:
        return {"train": gen("train", full, full_path)}
    test_path = src / fold_test_file(k)
    if not test_path.is_file():
        raise FileNotFoundError(f"ade: fold {k} needs {test_path} (its train split is ade_full minus that file)")
    test = read_json_file(test_path, list, "expected a JSON list of SpERT sentences")
    test_ids = _orig_ids(test_path, test)
    known = set(full_ids)
    for n, oid in enumerate(test_ids):
        if oid not in known:  # the folds partition ade_full: anything else means mismatched files
            raise SourceFormatError(test_path, n + 1, f"[{n}]: orig_id {oid!r} is not in {FULL}")
    held = set(test_ids)
    train = [s for s, oid in zip(full, full_ids) if oid not in held]
    return {"train": gen("train", train, full_path), "test": gen("test", test, test_path)}


register(
    Benchmark(
        name="ade",
        task="re",
        read_splits=read_splits,
        instruction=JOINT_INSTRUCTION,
        source="ADE-Corpus-V2, SpERT JSON (ade_full.json + ade_split_{0..9}_test.json), Coopercoppers/PFN @ 6173b3e6 "
               "data/ADE/raw",
        status="real",
        shared_subdir="ade",
        options={
            "fold": "'full' (default: all of ade_full.json as train, for the mix) or 0..9 (train = ade_full minus "
                    "fold k's test, test = ade_split_k_test.json)",
            "with_entities": "emit schema.ent/ans.ent too (joint NER+RE; default true); false: relation triplets only",
        },
    )
)
