"""spaCy ``.spacy`` files (``DocBin``) -> unified records (entities from ``doc.ents`` and ``doc.spans``, classes).

Format: ``spacy.tokens.DocBin().to_disk("train.spacy")`` -- what ``spacy convert`` and spaCy's training recipes
write. Per ``Doc``:

* ``doc.ents`` -> ``ans.ent`` (``ent.label_``, ``[ent.start_char, ent.end_char)``);
* every span group ``doc.spans[key]`` (or only the keys in ``spans_key``, comma separated; ``spans_key=""``
  reads none) -> ``ans.ent`` too: span groups may overlap, which the unified record allows. A span already in
  ``doc.ents`` (or in another group) with the same label is kept once (noted); a span without a label is dropped
  (reported);
* ``doc.cats`` -> ``ans.cls``: every category whose score is ``>= cats_threshold`` (default 0.5); all category
  names go to ``schema.cls``.

``text`` = ``doc.text`` (spaCy's whitespace kept, offsets exact). Id ``<file stem>.<doc index>``. The schema is
the sorted union of labels of all splits (after ``label_map``). spaCy is imported only when this reader runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..convert import ConversionReport, as_bool
from ..registry import SourceFormatError
from ._common import AUTO_INSTRUCTION, Labels, discover_files, finish, mention

SUFFIXES = (".spacy",)


def read_docbin(path: Path) -> list[Any]:
    """The ``Doc`` objects of one ``.spacy`` file (a fresh shared ``Vocab``; no pipeline needed)."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    try:
        return list(DocBin().from_disk(path).get_docs(Vocab()))
    except Exception as exc:  # msgpack / zlib errors: the file is not a DocBin
        raise SourceFormatError(path, 1, f"not a spaCy DocBin file ({type(exc).__name__}: {exc})") from None


def read_splits(
    src_dir: Path,
    instruction: str = AUTO_INSTRUCTION,
    report: ConversionReport | None = None,
    spans_key: str | None = None,
    ents: Any = True,
    cats_threshold: Any = 0.5,
    label_map: Any = None,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for one ``.spacy`` file or a folder of them (``train``/``dev``/``test`` in the names)."""
    report = report or ConversionReport("spacy")
    keys = None if spans_key is None else [k.strip() for k in str(spans_key).split(",") if k.strip()]
    use_ents = as_bool(ents, "spacy: ents")
    try:
        threshold = float(cats_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"spacy: cats_threshold must be a number, got {cats_threshold!r}") from None
    labels = Labels(label_map)
    parsed: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    groups_seen: set[str] = set()
    for split, files in discover_files(Path(src_dir), SUFFIXES, report).items():
        items = parsed.setdefault(split, [])
        for path in files:
            for n, doc in enumerate(read_docbin(path)):
                where = f"{path.name} doc {n}"
                text = doc.text
                found: list[tuple[str, int, int, str]] = []  # (label, start, end, source)
                if use_ents:
                    found += [(e.label_, e.start_char, e.end_char, "doc.ents") for e in doc.ents]
                groups_seen.update(doc.spans)
                for key in doc.spans if keys is None else keys:
                    if key not in doc.spans:
                        continue  # a group may be absent from some docs
                    found += [(s.label_, s.start_char, s.end_char, f"doc.spans[{key!r}]") for s in doc.spans[key]]
                ans_ents, seen = [], set()
                for lab, s, e, source in found:
                    if not lab:
                        report.drop(split, "span without a label", f"{where} {source} [{s}, {e})")
                        continue
                    if s >= e:
                        report.drop(split, "empty span", f"{where} {source} {lab} [{s}, {e})")
                        continue
                    if (lab, s, e) in seen:
                        report.note(split, "span in doc.ents and doc.spans (or two groups), kept once",
                                    f"{where} {source} {lab} [{s}, {e})")
                        continue
                    seen.add((lab, s, e))
                    ans_ents.append({"type": labels("ent", lab), **mention(text, s, e)})
                cls = []
                for cat, score in doc.cats.items():
                    name = labels("cls", cat)
                    if score >= threshold:
                        cls.append(name)
                items.append((f"{path.stem}.{n}", text, {"ent": ans_ents, "cls": cls}))
    missing = [k for k in keys or () if k not in groups_seen]
    if missing:
        raise ValueError(f"spacy: spans_key {missing} is in no doc (span groups found: {sorted(groups_seen)})")
    return finish(parsed, labels, instruction)
