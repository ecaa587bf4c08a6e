"""ASTE (aspect sentiment triplet extraction; SemEval 14lap/14res/15res/16res) -> unified ABSA records.

Two copies of the same data are read (``shared/data/aste/SOURCE.md``):

* ``aste-<ds>`` -- ASTE-Data-V2 (Xu et al., EMNLP 2020; xuuuluuu/SemEval-Triplet-data @ d0df6600
  ``ASTE-Data-V2-EMNLP2020/<ds>/{train,dev,test}_triplets.txt``): one sentence a line,
  ``<space-tokenised sentence>####<Python literal [([aspect token ids], [opinion token ids], 'POS'|'NEG'|'NEU')]>``;
  token ids are 0-based and contiguous (a span is ``ids[0] .. ids[-1]``).
* ``aste-pengb-<ds>`` -- the BARTABSA copy (yhcc/BARTABSA @ 13168eaa ``data/pengb/<ds>/{train,dev,test}_convert.json``)
  that UIE / Mirror / LDNet train on: a JSON list of ``{"words", "aspects": [{"from", "to", "polarity"}],
  "opinions": [{"from", "to"}]}``, ``to`` exclusive, ``aspects[i]`` paired with ``opinions[i]``.

Both give identical sentences and triplets on every split (checked by ``tests/test_processing_aste.py``).

Unified record (SPEC §1 ABSA example, UIE convention): an RE record with ``schema.rel = ["positive", "negative",
"neutral"]``, ``head`` = aspect term, ``tail`` = opinion term, ``relation`` = polarity. ``text`` = the tokens joined
by single spaces. A triplet repeated verbatim in the same sentence (3 in the V2 files) is kept once and reported as a
drop ("duplicate triplet"). Ids: ``<name>.<split>.<line index>`` (e.g. ``aste-14res.train.0``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import ABSA_INSTRUCTION

from .convert import ConversionReport, TokenText, read_json_file, read_split_files, unified_record
from .registry import Benchmark, SourceFormatError, register

POLARITY = {"POS": "positive", "NEG": "negative", "NEU": "neutral"}
LABELS = ["positive", "negative", "neutral"]
DATASETS = ("14lap", "14res", "15res", "16res")
SPLITS = ("train", "dev", "test")

Triplet = tuple[int, int, int, int, str]  # aspect [s, e), opinion [s, e) token spans, polarity key


def _span_of(ids: Any, n_tokens: int, path: Path, lineno: int, what: str) -> tuple[int, int]:
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise SourceFormatError(path, lineno, f"{what} token ids must be a non-empty list of ints, got {ids!r}")
    if ids != list(range(ids[0], ids[-1] + 1)):
        raise SourceFormatError(path, lineno, f"{what} token ids {ids} are not contiguous")
    if not 0 <= ids[0] <= ids[-1] < n_tokens:
        raise SourceFormatError(path, lineno, f"{what} token ids {ids} outside the sentence ({n_tokens} tokens)")
    return ids[0], ids[-1] + 1


def parse_v2_line(line: str, path: Path, lineno: int) -> tuple[list[str], list[Triplet]]:
    """One ASTE-V2 line -> (tokens, triplets). Raises :class:`SourceFormatError` naming file and line."""
    parts = line.rstrip("\r\n").split("####")
    if len(parts) != 2:
        raise SourceFormatError(path, lineno, "expected '<sentence>####<triplets>' (exactly one '####')")
    sentence, raw = parts
    tokens = sentence.split(" ")
    if not sentence or any(t == "" for t in tokens):
        raise SourceFormatError(path, lineno, "empty sentence or empty token (double space)")
    try:
        triplets = ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise SourceFormatError(path, lineno, f"triplet list is not a Python literal: {exc}") from None
    if not isinstance(triplets, list):
        raise SourceFormatError(path, lineno, f"expected a list of triplets, got {type(triplets).__name__}")
    out = []
    for t in triplets:
        if not isinstance(t, tuple) or len(t) != 3:
            raise SourceFormatError(path, lineno, f"expected (aspect ids, opinion ids, polarity), got {t!r}")
        a = _span_of(t[0], len(tokens), path, lineno, "aspect")
        o = _span_of(t[1], len(tokens), path, lineno, "opinion")
        if t[2] not in POLARITY:
            raise SourceFormatError(path, lineno, f"unknown polarity {t[2]!r}; expected one of {sorted(POLARITY)}")
        out.append((a[0], a[1], o[0], o[1], t[2]))
    return tokens, out


def iter_v2(path: Path) -> Iterator[tuple[int, list[str], list[Triplet]]]:
    """``(line number, tokens, triplets)`` for every non-blank line of an ASTE-V2 file."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            tokens, triplets = parse_v2_line(line, path, lineno)
            yield lineno, tokens, triplets


def iter_pengb(path: Path) -> Iterator[tuple[int, list[str], list[Triplet]]]:
    """``(item index + 1, tokens, triplets)`` for every item of a BARTABSA ``*_convert.json`` file.

    The file is one JSON list; the "line" reported in errors is the 1-based item number for structural errors.
    """
    items = read_json_file(path, list, "expected a JSON list of sentences")
    for k, it in enumerate(items, 1):
        try:
            tokens = list(it["words"])
            aspects, opinions = it["aspects"], it["opinions"]
        except (KeyError, TypeError):
            raise SourceFormatError(path, k, "item needs 'words', 'aspects' and 'opinions'") from None
        if len(aspects) != len(opinions):
            raise SourceFormatError(path, k, f"{len(aspects)} aspects but {len(opinions)} opinions")
        triplets = []
        for a, o in zip(aspects, opinions):
            if a.get("index") != o.get("index"):
                raise SourceFormatError(path, k, f"aspect index {a.get('index')} paired with opinion {o.get('index')}")
            for x, what in ((a, "aspect"), (o, "opinion")):
                if not (isinstance(x.get("from"), int) and isinstance(x.get("to"), int)
                        and 0 <= x["from"] < x["to"] <= len(tokens)):
                    raise SourceFormatError(path, k, f"{what} span [{x.get('from')}, {x.get('to')}) invalid")
            if a.get("polarity") not in POLARITY:
                raise SourceFormatError(path, k, f"unknown polarity {a.get('polarity')!r}")
            triplets.append((a["from"], a["to"], o["from"], o["to"], a["polarity"]))
        yield k, tokens, triplets


def to_record(name: str, split: str, n: int, tokens: list[str], triplets: list[Triplet], instruction: str,
              report: ConversionReport, where: str) -> dict[str, Any]:
    tt = TokenText(tokens)
    rels, seen = [], set()
    for t in triplets:
        if t in seen:
            report.drop(split, "duplicate triplet", f"{where}: {t}")
            continue
        seen.add(t)
        rels.append({"relation": POLARITY[t[4]], "head": tt.mention(t[0], t[1]), "tail": tt.mention(t[2], t[3])})
    return unified_record(f"{name}.{split}.{n}", instruction, {"rel": list(LABELS)}, tt.text, {"rel": rels})


def _reader(name: str, dataset: str, copy: str) -> Any:
    def read_splits(src_dir: Path, instruction: str = ABSA_INSTRUCTION, report: ConversionReport | None = None
                    ) -> dict[str, Iterator[dict[str, Any]]]:
        rep = report or ConversionReport(name)
        files = {split: f"{split}_triplets.txt" if copy == "v2" else f"{split}_convert.json" for split in SPLITS}
        return read_split_files(_dataset_dir(Path(src_dir), dataset, copy), files,
                                lambda path, split: _records(name, split, path, copy, instruction, rep), rep)

    read_splits.__doc__ = f"``{{split: records}}`` for {name} (ASTE {copy} copy of {dataset})."
    return read_splits


def _dataset_dir(src: Path, dataset: str, copy: str) -> Path:
    """Accept ``shared/data/aste``, ``shared/data/aste/<copy>`` or the dataset folder itself."""
    for cand in (src / copy / dataset, src / dataset, src):
        marker = "train_triplets.txt" if copy == "v2" else "train_convert.json"
        if (cand / marker).is_file() or (cand / marker.replace("train", "test")).is_file():
            return cand
    return src / copy / dataset


def _records(name: str, split: str, path: Path, copy: str, instruction: str, report: ConversionReport
             ) -> Iterator[dict[str, Any]]:
    it = iter_v2(path) if copy == "v2" else iter_pengb(path)
    for n, (lineno, tokens, triplets) in enumerate(it):
        yield to_record(name, split, n, tokens, triplets, instruction, report, f"{path.name}:{lineno}")


for _ds in DATASETS:
    for _copy, _name, _src in (
        ("v2", f"aste-{_ds}", "xuuuluuu/SemEval-Triplet-data @ d0df6600 ASTE-Data-V2-EMNLP2020 (sentence####triplets)"),
        ("pengb", f"aste-pengb-{_ds}", "yhcc/BARTABSA @ 13168eaa data/pengb (*_convert.json, the UIE/Mirror copy)"),
    ):
        register(
            Benchmark(
                name=_name,
                task="absa",
                read_splits=_reader(_name, _ds, _copy),
                instruction=ABSA_INSTRUCTION,
                source=_src,
                status="real",
                shared_subdir=f"aste/{_copy}/{_ds}",
            )
        )
