"""GLiNER training data (``tokenized_text`` + ``ner``) -> unified NER records.

Format (urchade/GLiNER's training files, e.g. ``pilener_train.json``): a JSON list, or JSON lines, of objects::

    {"tokenized_text": ["Apple", "Inc.", "is", "in", "Cupertino"], "ner": [[0, 1, "organization"], [4, 4, "location"]]}

``ner`` items are ``[start_token, end_token_inclusive, label]``. An optional ``id`` field becomes the record id
(else ``<file stem>.<index>``). Record: ``text`` = tokens joined by single spaces (offsets exact), ``schema.ent`` =
the sorted labels of all splits (after ``label_map``). An entity listed twice is kept once (reported as a drop).
An item that is not ``[int, int, str]`` inside the tokens raises :class:`~processing.registry.SourceFormatError`
naming the file, the line (JSON lines) or list position (JSON list) and the item.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..convert import ConversionReport, TokenText
from ..registry import SourceFormatError
from ._common import AUTO_INSTRUCTION, Dedup, Labels, discover_files, finish, load_json_items

SUFFIXES = (".json", ".jsonl")


def read_splits(
    src_dir: Path,
    instruction: str = AUTO_INSTRUCTION,
    report: ConversionReport | None = None,
    label_map: Any = None,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for one GLiNER file or a folder of them (``train``/``dev``/``test`` in the names)."""
    report = report or ConversionReport("gliner")
    labels = Labels(label_map)
    parsed: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for split, files in discover_files(Path(src_dir), SUFFIXES, report).items():
        items = parsed.setdefault(split, [])
        for path in files:
            for n, (pos, obj) in enumerate(load_json_items(path, ("tokenized_text", "ner"), "a GLiNER example")):
                tokens, ner = obj["tokenized_text"], obj["ner"]
                if not isinstance(tokens, list) or not all(isinstance(t, str) and t.strip() for t in tokens):
                    raise SourceFormatError(path, pos, "field 'tokenized_text': expected a list of non-empty strings")
                if not isinstance(ner, list):
                    raise SourceFormatError(path, pos, f"field 'ner': expected a list, got {type(ner).__name__}")
                tt = TokenText(tokens)
                rid = str(obj["id"]) if obj.get("id") not in (None, "") else f"{path.stem}.{n}"
                dedup = Dedup(report, split, f"{path.name}:{pos}")
                ents = []
                for j, item in enumerate(ner):
                    ok = (isinstance(item, (list, tuple)) and len(item) == 3 and isinstance(item[2], str)
                          and all(isinstance(x, int) and not isinstance(x, bool) for x in item[:2]))
                    if not ok or not 0 <= item[0] <= item[1] < len(tokens) or not item[2]:
                        raise SourceFormatError(path, pos, f"field 'ner[{j}]': expected [start, end_inclusive, label] "
                                                           f"inside the {len(tokens)} tokens, got {item!r}")
                    if dedup.fresh("entity", tuple(item)):
                        ents.append({"type": labels("ent", item[2]), **tt.mention(item[0], item[1] + 1)})
                items.append((rid, tt.text, {"ent": ents}))
    return finish(parsed, labels, instruction)
