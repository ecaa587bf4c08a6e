"""CrossNER (5 domains) and MIT Movie / MIT Restaurant -> unified NER records. Fixture-tested (data not staged).

Source formats (CoNLL-style, one token a line, blank line between sentences, BIO = IOB2 tags):

* CrossNER (Liu et al. 2021; https://github.com/zliucr/CrossNER ``ner_data/{ai,literature,music,politics,science}/
  {train,dev,test}.txt``): ``token<TAB>tag``, e.g. ``Wales<TAB>B-country``.
* MIT Movie (``engtrain.bio`` / ``engtest.bio``) and MIT Restaurant (``restauranttrain.bio`` /
  ``restauranttest.bio``) from https://groups.csail.mit.edu/sls/downloads/ : the original files put the tag first,
  ``B-ACTOR<TAB>steve``; re-distributed copies often use ``token<TAB>tag`` with ``train.txt`` / ``dev.txt`` /
  ``test.txt``. The column order is detected per file (the column whose every value is a BIO tag). The originals
  have no dev split (reported as missing).

Labels are made human-readable with :data:`READABLE` (CrossNER's concatenated names such as ``politicalparty`` ->
``political party``, ``misc`` -> ``miscellaneous``) or, for other names, lower-casing and ``_`` -> space
(``RATINGS_AVERAGE`` -> ``ratings average``, ``Restaurant_Name`` -> ``restaurant name``). ``schema.ent`` = the
domain's label list (:data:`DOMAIN_LABELS`, CrossNER paper order) followed by any other type found in the files,
sorted. An ``I-X`` tag that does not continue an ``X`` entity starts one (conlleval behaviour; noted in the report).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION

from .conll03 import decode_tags, iter_blocks
from .convert import ConversionReport, TokenText, source_folder, unified_record
from .registry import Benchmark, SourceFormatError, register

READABLE = {
    "misc": "miscellaneous",
    "politicalparty": "political party",
    "chemicalelement": "chemical element",
    "chemicalcompound": "chemical compound",
    "astronomicalobject": "astronomical object",
    "academicjournal": "academic journal",
    "musicgenre": "music genre",
    "musicalartist": "musical artist",
    "musicalinstrument": "musical instrument",
    "literarygenre": "literary genre",
    "programlang": "programming language",
}

DOMAIN_LABELS: dict[str, list[str]] = {
    "ai": ["algorithm", "conference", "country", "field", "location", "metrics", "organisation", "person", "product",
           "programlang", "researcher", "task", "university", "misc"],
    "literature": ["award", "book", "country", "event", "literarygenre", "location", "magazine", "organisation",
                   "person", "poem", "writer", "misc"],
    "music": ["album", "award", "band", "country", "event", "location", "musicalartist", "musicalinstrument",
              "musicgenre", "organisation", "person", "song", "misc"],
    "politics": ["country", "election", "event", "location", "organisation", "person", "politicalparty",
                 "politician", "misc"],
    "science": ["academicjournal", "astronomicalobject", "award", "chemicalcompound", "chemicalelement", "country",
                "discipline", "enzyme", "event", "location", "organisation", "person", "protein", "scientist",
                "theory", "university", "misc"],
    "mit-movie": ["ACTOR", "CHARACTER", "DIRECTOR", "GENRE", "PLOT", "RATING", "RATINGS_AVERAGE", "REVIEW", "SONG",
                  "TITLE", "TRAILER", "YEAR"],
    "mit-restaurant": ["Amenity", "Cuisine", "Dish", "Hours", "Location", "Price", "Rating", "Restaurant_Name"],
}

CROSSNER_FILES = {"train": ("train.txt",), "dev": ("dev.txt",), "test": ("test.txt",)}
MIT_FILES = {
    "mit-movie": {"train": ("engtrain.bio", "train.txt"), "dev": ("dev.txt",), "test": ("engtest.bio", "test.txt")},
    "mit-restaurant": {
        "train": ("restauranttrain.bio", "train.txt"),
        "dev": ("dev.txt",),
        "test": ("restauranttest.bio", "test.txt"),
    },
}

_TAG = re.compile(r"^(O|[BI]-\S.*)$")


def readable(label: str) -> str:
    """Human-readable entity type."""
    return READABLE.get(label, label.lower().replace("_", " ").replace("-", " ").strip())


def _two_columns(path: Path) -> list[list[tuple[int, str, str]]]:
    """Read a 2-column BIO file -> sentences of ``(line, token, tag)``, detecting the column order."""
    blocks = list(iter_blocks(path))
    for block in blocks:
        for lineno, cols in block:
            if len(cols) != 2:
                raise SourceFormatError(path, lineno, f"expected 2 columns (token and tag), got {len(cols)}")
    rows = [(ln, cols) for block in blocks for ln, cols in block]
    tag_first = not all(_TAG.match(c[1]) for _, c in rows) and all(_TAG.match(c[0]) for _, c in rows)
    if not tag_first:
        bad = next(((ln, c) for ln, c in rows if not _TAG.match(c[1])), None)
        if bad is not None:
            raise SourceFormatError(path, bad[0], f"invalid tag {bad[1][1]!r} (expected O, B-TYPE or I-TYPE)")
    tok_i, tag_i = (1, 0) if tag_first else (0, 1)
    return [[(ln, cols[tok_i], cols[tag_i]) for ln, cols in block] for block in blocks]


def _reader(dataset: str, domain: str, files: dict[str, tuple[str, ...]]):
    def read_splits(
        src_dir: Path, instruction: str = NER_INSTRUCTION, report: ConversionReport | None = None
    ) -> dict[str, Iterator[dict[str, Any]]]:
        """``{split: records}``; ``src_dir`` = the folder with the domain's files (or its parent ``ner_data``)."""
        report = report or ConversionReport(dataset)
        src = source_folder(src_dir, domain)
        paths = {}
        for split, names in files.items():
            path = next((src / f for f in names if (src / f).is_file()), None)
            if path is None:
                report.missing(split, src / names[0])
            else:
                paths[split] = path
        # first pass: the label inventory over every split (fixed order: domain table, then others sorted)
        sentences = {split: _two_columns(path) for split, path in paths.items()}
        found = set()
        for sents in sentences.values():
            for sent in sents:
                found.update(tag[2:] for _, _, tag in sent if tag != "O")
        raw_labels = DOMAIN_LABELS.get(domain, []) + sorted(found - set(DOMAIN_LABELS.get(domain, [])))
        labels = [readable(lab) for lab in raw_labels]
        if len(set(labels)) != len(labels):
            raise ValueError(f"{dataset}: entity types collide after renaming: {raw_labels}")
        to_readable = dict(zip(raw_labels, labels))

        def gen(split: str) -> Iterator[dict[str, Any]]:
            path = paths[split]
            for n, sent in enumerate(sentences[split]):
                tt = TokenText([tok for _, tok, _ in sent])
                lines = [ln for ln, _, _ in sent]
                ents = [
                    {"type": to_readable[typ], **tt.mention(s, e)}
                    for s, e, typ in decode_tags([tag for _, _, tag in sent], "iob2", path, lines, report, split)
                ]
                yield unified_record(f"{dataset}.{split}.{n}", instruction, {"ent": labels}, tt.text, {"ent": ents})

        return {split: gen(split) for split in paths}

    return read_splits


for _domain in ("ai", "literature", "music", "politics", "science"):
    register(
        Benchmark(
            name=f"crossner-{_domain}",
            task="ner",
            read_splits=_reader(f"crossner-{_domain}", _domain, CROSSNER_FILES),
            instruction=NER_INSTRUCTION,
            source=f"CrossNER ner_data/{_domain}/{{train,dev,test}}.txt (token<TAB>BIO tag), zliucr/CrossNER",
            status="fixture",
            how_to_obtain=f"git clone https://github.com/zliucr/CrossNER and pass ner_data/{_domain} (MIT license)",
        )
    )
for _name in ("mit-movie", "mit-restaurant"):
    register(
        Benchmark(
            name=_name,
            task="ner",
            read_splits=_reader(_name, _name, MIT_FILES[_name]),
            instruction=NER_INSTRUCTION,
            source="MIT {} corpus {} (BIO, tag<TAB>token or token<TAB>tag)".format(
                _name.split("-")[1], "eng{train,test}.bio" if _name == "mit-movie" else "restaurant{train,test}.bio"
            ),
            status="fixture",
            how_to_obtain=(
                "download "
                + ("engtrain.bio and engtest.bio" if _name == "mit-movie" else "restauranttrain.bio and restauranttest.bio")
                + " from https://groups.csail.mit.edu/sls/downloads/"
                + ("movie/" if _name == "mit-movie" else "restaurant/")
            ),
        )
    )
