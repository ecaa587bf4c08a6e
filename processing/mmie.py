"""Multimodal IE, text side: Twitter-2015 / Twitter-2017 (multimodal NER) and MNRE (multimodal RE).

Only the text is staged (``shared/data/{twitter2015,twitter2017,mnre}/SOURCE.md``); the images live on Google Drive.
Option ``image_dir``: when given, every record gets ``"image": <path of its image file>`` and a record whose image
file does not exist raises ``FileNotFoundError`` naming the record id and the path; without it the records are
text-only (``image`` is ``""`` in the Arrow form, absent in the SPEC form).

**Twitter-2015 / 2017** (jefferyYu/UMT @ f478ee65 ``data/twitter{2015,2017}/{train,valid,test}.txt``): an
``IMGID:<id>`` line, then one ``token<TAB>tag`` line per token (BIO / IOB2), a blank line between tweets. Record:
``text`` = tokens joined by single spaces; ``schema.ent`` = ``["person", "location", "organization",
"miscellaneous"]`` (twitter2015's ``OTHER`` -> ``miscellaneous``, as LDNet's ``data/txt2json.py`` maps it to misc;
the names match the CoNLL-2003 converter so the label sets are shared); image ``<image_dir>/<id>.jpg``.

**MNRE** (thecharm/MNRE @ 354211ed ``mnre_txt/mnre_{train,val,test}.txt``, v2): one Python-dict repr a line
``{'token': [...], 'h': {'name', 'pos': [s, e)}, 't': {...}, 'img_id': '....jpg', 'relation': '/per/per/peer'}``;
one record per line (= per entity pair, the published instance counts). ``text`` = tokens joined by single spaces,
head / tail char spans from the ``pos`` token spans (their text must equal ``name``). Relation labels are LDNet's
(``data/txt2json.py``): the last path segment with ``_`` -> space (``/per/org/member_of`` -> ``member of``); note
that ``/per/per/alternate_names`` and ``/org/org/alternate_names`` both become ``alternate names`` there. Option
``raw_labels=True`` keeps the upstream names. ``None`` pairs produce no relation (``ans.rel == []``) but the record
is kept. ``schema.rel`` = the 22 non-``None`` labels of the MNRE v2 inventory (:data:`MNRE_RELATIONS`). Images:
``<image_dir>/<img_id>``, or ``<image_dir>/<split folder>/<img_id>`` (MNRE's ``img_org/{train,val,test}/`` layout).

Ids: ``<name>.<split>.<n>`` (n = tweet / line index from 0).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION, RE_INSTRUCTION

from .conll03 import decode_tags
from .convert import ConversionReport, TokenText, as_bool, read_split_files, unified_record
from .registry import Benchmark, SourceFormatError, register

MNER_INSTRUCTION, MRE_INSTRUCTION = NER_INSTRUCTION, RE_INSTRUCTION

NER_LABELS = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous",
              "OTHER": "miscellaneous"}
NER_SCHEMA = ["person", "location", "organization", "miscellaneous"]
TWITTER_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}

# MNRE v2 relation inventory (thecharm/MNRE README / LDNet data/txt2json.py order), "None" excluded
MNRE_RELATIONS = [
    "/per/per/parent", "/per/per/siblings", "/per/per/couple", "/per/per/neighbor", "/per/per/peer",
    "/per/per/charges", "/per/per/alumi", "/per/per/alternate_names", "/per/org/member_of",
    "/per/loc/place_of_residence", "/per/loc/place_of_birth", "/org/org/alternate_names", "/org/org/subsidiary",
    "/org/loc/locate_at", "/loc/loc/contain", "/per/misc/present_in", "/per/misc/awarded", "/per/misc/race",
    "/per/misc/religion", "/per/misc/nationality", "/misc/misc/part_of", "/misc/loc/held_on",
]
MNRE_NONE = "None"
MNRE_FILES = {"train": "mnre_train.txt", "dev": "mnre_val.txt", "test": "mnre_test.txt"}
MNRE_IMAGE_SUBDIRS = {"train": "train", "dev": "val", "test": "test"}


def short_relation(raw: str) -> str:
    """LDNet's label text for an MNRE relation: ``/per/org/member_of`` -> ``member of``."""
    return raw.split("/")[-1].replace("_", " ")


def mnre_schema(raw_labels: bool = False) -> list[str]:
    """``schema.rel`` for MNRE records (order kept, duplicates after shortening removed)."""
    labels = MNRE_RELATIONS if raw_labels else [short_relation(r) for r in MNRE_RELATIONS]
    return list(dict.fromkeys(labels))


def _image(record_id: str, image_dir: str | Path | None, candidates: list[str]) -> str | None:
    """Path of the record's image (first existing candidate under ``image_dir``), ``None`` without ``image_dir``."""
    if image_dir is None:
        return None
    paths = [Path(image_dir) / c for c in candidates]
    for p in paths:
        if p.is_file():
            return str(p)
    raise FileNotFoundError(f"record {record_id!r}: image file {paths[0]} not found"
                            + (f" (also tried {', '.join(map(str, paths[1:]))})" if len(paths) > 1 else ""))


# ------------------------------------------------------------------------------------------------------------------
# Twitter-2015 / 2017
# ------------------------------------------------------------------------------------------------------------------


def iter_tweets(path: Path) -> Iterator[tuple[str, list[tuple[int, str, str]]]]:
    """``(image id, [(line number, token, tag)])`` per tweet of a UMT file."""
    img: str | None = None
    rows: list[tuple[int, str, str]] = []
    img_line = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if line.startswith("IMGID:"):
                if img is not None or rows:
                    raise SourceFormatError(path, lineno, "IMGID line inside a tweet (missing blank line)")
                img, img_line = line[len("IMGID:"):].strip(), lineno
                if not img:
                    raise SourceFormatError(path, lineno, "empty IMGID")
                continue
            if not line.strip():
                if img is not None or rows:
                    if not rows:
                        raise SourceFormatError(path, img_line, f"tweet {img} has no tokens")
                    yield img or "", rows
                img, rows = None, []
                continue
            if img is None:
                raise SourceFormatError(path, lineno, "token line before any IMGID line")
            cols = line.split("\t")
            if len(cols) != 2 or cols[0] == "":
                raise SourceFormatError(path, lineno, f"expected 'token<TAB>tag', got {line!r}")
            rows.append((lineno, cols[0], cols[1]))
    if img is not None or rows:
        if not rows:
            raise SourceFormatError(path, img_line, f"tweet {img} has no tokens")
        yield img or "", rows


def _twitter_records(name: str, path: Path, split: str, instruction: str, report: ConversionReport,
                     image_dir: str | Path | None) -> Iterator[dict[str, Any]]:
    for n, (img, rows) in enumerate(iter_tweets(path)):
        lines = [r[0] for r in rows]
        tt = TokenText([r[1] for r in rows])
        ents = []
        for s, e, typ in decode_tags([r[2] for r in rows], "iob2", path, lines, report, split):
            if typ not in NER_LABELS:
                raise SourceFormatError(path, lines[s], f"unknown entity type {typ!r}; expected {sorted(NER_LABELS)}")
            ents.append({"type": NER_LABELS[typ], **tt.mention(s, e)})
        rid = f"{name}.{split}.{n}"
        rec = unified_record(rid, instruction, {"ent": list(NER_SCHEMA)}, tt.text, {"ent": ents})
        image = _image(rid, image_dir, [f"{img}.jpg"])
        if image is not None:
            rec["image"] = image
        yield rec


def _twitter_reader(name: str) -> Any:
    def read_splits(src_dir: Path, instruction: str = MNER_INSTRUCTION, report: ConversionReport | None = None,
                    image_dir: str | Path | None = None) -> dict[str, Iterator[dict[str, Any]]]:
        rep = report or ConversionReport(name)
        return read_split_files(src_dir, TWITTER_FILES,
                                lambda path, split: _twitter_records(name, path, split, instruction, rep, image_dir), rep)

    read_splits.__doc__ = f"``{{split: records}}`` for {name} (UMT ``{{train,valid,test}}.txt`` in ``src_dir``)."
    return read_splits


# ------------------------------------------------------------------------------------------------------------------
# MNRE
# ------------------------------------------------------------------------------------------------------------------


def parse_mnre_line(line: str, path: Path, lineno: int) -> dict[str, Any]:
    """One MNRE line (Python dict repr) -> the dict, checked. Raises :class:`SourceFormatError`."""
    try:
        d = ast.literal_eval(line.strip())
    except (ValueError, SyntaxError) as exc:
        raise SourceFormatError(path, lineno, f"not a Python dict literal: {exc}") from None
    if not isinstance(d, dict) or not all(k in d for k in ("token", "h", "t", "img_id", "relation")):
        raise SourceFormatError(path, lineno, "expected a dict with token, h, t, img_id, relation")
    tokens = d["token"]
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
        raise SourceFormatError(path, lineno, "'token' must be a non-empty list of non-empty strings")
    for k in ("h", "t"):
        ent = d[k]
        pos = ent.get("pos") if isinstance(ent, dict) else None
        if (not isinstance(pos, list) or len(pos) != 2 or not all(isinstance(x, int) for x in pos)
                or not 0 <= pos[0] < pos[1] <= len(tokens)):
            raise SourceFormatError(path, lineno, f"'{k}.pos' must be [start, end) inside the {len(tokens)} tokens")
        if " ".join(tokens[pos[0]:pos[1]]) != ent.get("name"):
            raise SourceFormatError(path, lineno, f"'{k}.name' {ent.get('name')!r} != tokens {pos} "
                                                  f"{' '.join(tokens[pos[0]:pos[1]])!r}")
    if d["relation"] != MNRE_NONE and d["relation"] not in MNRE_RELATIONS:
        raise SourceFormatError(path, lineno, f"unknown relation {d['relation']!r}")
    if not isinstance(d["img_id"], str) or not d["img_id"]:
        raise SourceFormatError(path, lineno, "'img_id' must be a non-empty string")
    return d


def _mnre_records(path: Path, split: str, instruction: str, image_dir: str | Path | None, raw_labels: bool
                  ) -> Iterator[dict[str, Any]]:
    schema = mnre_schema(raw_labels)
    n = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            d = parse_mnre_line(line, path, lineno)
            tt = TokenText(d["token"])
            rels = []
            if d["relation"] != MNRE_NONE:
                rels.append({
                    "relation": d["relation"] if raw_labels else short_relation(d["relation"]),
                    "head": tt.mention(*d["h"]["pos"]),
                    "tail": tt.mention(*d["t"]["pos"]),
                })
            rid = f"mnre.{split}.{n}"
            rec = unified_record(rid, instruction, {"rel": list(schema)}, tt.text, {"rel": rels})
            image = _image(rid, image_dir, [d["img_id"], f"{MNRE_IMAGE_SUBDIRS[split]}/{d['img_id']}"])
            if image is not None:
                rec["image"] = image
            yield rec
            n += 1


def read_mnre(src_dir: Path, instruction: str = MRE_INSTRUCTION, report: ConversionReport | None = None,
              image_dir: str | Path | None = None, raw_labels: bool = False) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for MNRE v2 (``mnre_{train,val,test}.txt`` in ``src_dir``; ``mnre_val .txt`` accepted)."""
    rep = report or ConversionReport("mnre")
    raw_labels = as_bool(raw_labels, "raw_labels")
    out = {}
    for split, fname in MNRE_FILES.items():
        path = Path(src_dir) / fname
        if not path.is_file() and split == "dev":
            alt = Path(src_dir) / "mnre_val .txt"  # the upstream file name has a space before ".txt"
            path = alt if alt.is_file() else path
        if path.is_file():
            out[split] = _mnre_records(path, split, instruction, image_dir, raw_labels)
        else:
            rep.missing(split, path)
    return out


_IMAGE_OPT = ("folder with the images; each record gets 'image' = its file path (a missing file raises "
              "FileNotFoundError naming the record id and path); omitted = text-only records")

for _name, _year in (("twitter2015", "2015"), ("twitter2017", "2017")):
    register(
        Benchmark(
            name=_name,
            task="mner",
            read_splits=_twitter_reader(_name),
            instruction=MNER_INSTRUCTION,
            source=f"jefferyYu/UMT @ f478ee65 data/twitter{_year}/{{train,valid,test}}.txt (IMGID + token<TAB>BIO)",
            status="real",
            shared_subdir=_name,
            options={"image_dir": _IMAGE_OPT + " (<image_dir>/<IMGID>.jpg)"},
        )
    )

register(
    Benchmark(
        name="mnre",
        task="mre",
        read_splits=read_mnre,
        instruction=MRE_INSTRUCTION,
        source="thecharm/MNRE @ 354211ed mnre_txt/mnre_{train,val,test}.txt (v2, Python-dict lines)",
        status="real",
        shared_subdir="mnre",
        options={
            "image_dir": _IMAGE_OPT + " (<image_dir>/<img_id> or <image_dir>/{train,val,test}/<img_id>)",
            "raw_labels": "keep upstream relation names (/per/org/member_of) instead of LDNet's (member of)",
        },
    )
)
