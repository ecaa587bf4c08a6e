"""SQuAD v1.1 / v2.0 extractive reading comprehension -> unified MRC records (``ans.span``, empty schema).

Source format: the official SQuAD JSON (Rajpurkar et al. 2016/2018; https://rajpurkar.github.io/SQuAD-explorer/,
files ``train-v1.1.json`` / ``dev-v1.1.json`` and ``train-v2.0.json`` / ``dev-v2.0.json``)::

    {"version": "v2.0", "data": [{"title": "...", "paragraphs": [{"context": "...", "qas": [
        {"id": "...", "question": "...", "answers": [{"text": "...", "answer_start": 123}, ...],
         "is_impossible": false, "plausible_answers": [...]}]}]}]}

Unified record (SPEC §1, MRC): ``instruction`` = the question, ``text`` = the context, ``schema`` = ``{}`` (so the
processor emits ``[TP]``), ``ans.span`` = the distinct gold answers ``{text, span}``. An unanswerable v2.0 question
(``is_impossible``) gets ``ans.span == []`` (``plausible_answers`` are ignored). Dev questions list up to 3
(often identical) annotator answers: identical (text, start) pairs are merged silently (they are the same item);
distinct ones are all kept. An answer whose ``answer_start`` does not point at its text is re-anchored to the
occurrence of the text nearest to ``answer_start`` (noted); if the text does not occur, the answer is dropped
(reason ``"answer text not in context"``). The ``--instruction`` option does not apply (each question is its own
instruction). Ids ``squad_v1.<split>.<n>`` / ``squad_v2.<split>.<n>`` in file order; split files: train =
``train-v{1.1,2.0}.json``, dev = ``dev-v{1.1,2.0}.json`` (also accepted: ``train.json`` / ``dev.json``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .convert import ConversionReport, read_json_file, unified_record
from .registry import Benchmark, SourceFormatError, register


def _anchor(context: str, text: str, start: int) -> int | None:
    """Start of ``text`` in ``context``: ``start`` if it matches, else the nearest occurrence, else ``None``."""
    if context[start : start + len(text)] == text:
        return start
    best, i = None, context.find(text)
    while text and i >= 0:
        if best is None or abs(i - start) < abs(best - start):
            best = i
        i = context.find(text, i + 1)
    return best


def _read_file(path: Path, dataset: str, split: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
    data = read_json_file(path, dict, "expected {'version', 'data': [articles]}")
    if not isinstance(data.get("data"), list):
        raise SourceFormatError(path, 1, "expected {'version', 'data': [articles]}")
    n = 0
    for a, article in enumerate(data["data"]):
        try:
            paragraphs = article["paragraphs"]
        except (KeyError, TypeError):
            raise SourceFormatError(path, 1, f"data[{a}] has no 'paragraphs'") from None
        for p, para in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            try:
                context, qas = para["context"], para["qas"]
                items = []
                for q in qas:
                    answers, seen = [], set()
                    if not q.get("is_impossible", False):
                        for ans in q.get("answers") or []:
                            text, start = ans["text"], int(ans["answer_start"])
                            s = _anchor(context, text, start)
                            if s is None:
                                report.drop(split, "answer text not in context", f"{q['id']}: {text!r}")
                                continue
                            if s != start:
                                report.note(split, "answer_start re-anchored", f"{q['id']}: {start} -> {s}")
                            if (s, text) in seen:
                                continue  # the same answer given by another annotator: one item
                            seen.add((s, text))
                            answers.append({"text": text, "span": [s, s + len(text)]})
                    items.append((q["question"], answers))
            except (KeyError, TypeError, ValueError) as exc:
                raise SourceFormatError(path, 1, f"{where}: malformed ({type(exc).__name__}: {exc})") from None
            for question, answers in items:
                yield unified_record(f"{dataset}.{split}.{n}", question.strip(), {}, context, {"span": answers})
                n += 1


def _reader(dataset: str, version: str):
    files = {"train": (f"train-v{version}.json", "train.json"), "dev": (f"dev-v{version}.json", "dev.json")}

    def read_splits(
        src_dir: Path, instruction: str = "", report: ConversionReport | None = None
    ) -> dict[str, Iterator[dict[str, Any]]]:
        """``{split: records}`` for the SQuAD JSON files in ``src_dir`` (``instruction`` is ignored)."""
        report = report or ConversionReport(dataset)
        out = {}
        for split, names in files.items():
            path = next((Path(src_dir) / f for f in names if (Path(src_dir) / f).is_file()), None)
            if path is None:
                report.missing(split, Path(src_dir) / names[0])
                continue
            out[split] = _read_file(path, dataset, split, report)
        return out

    return read_splits


for _name, _version in (("squad_v1", "1.1"), ("squad_v2", "2.0")):
    register(
        Benchmark(
            name=_name,
            task="mrc",
            read_splits=_reader(_name, _version),
            instruction="",
            source=f"official SQuAD v{_version} JSON (rajpurkar.github.io/SQuAD-explorer)",
            status="fixture",
            how_to_obtain=(
                f"download train-v{_version}.json and dev-v{_version}.json from "
                f"https://rajpurkar.github.io/SQuAD-explorer/ (or the rajpurkar/squad"
                f"{'_v2' if _version == '2.0' else ''} dataset on the Hugging Face Hub, exported to the same JSON)"
            ),
        )
    )
