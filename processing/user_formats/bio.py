"""CoNLL / BIO column files (any tag set) -> unified NER records.

Format: one token a line, columns separated by whitespace (or ``separator``); a blank line ends a sentence;
``-DOCSTART-`` lines (CoNLL-2003 document separators) are skipped. The token is column ``token_column`` (default
0), the tag column ``tag_column`` (default -1, the last). Tags are ``O`` or ``P-TYPE`` with any ``TYPE``.

Tagging scheme (``scheme="auto"``, decided once per file and shown in the report as a note):

* **BIOES / BILOU** when any tag starts with ``E-``, ``S-``, ``L-`` or ``U-`` (``L`` = ``E``, ``U`` = ``S``);
* **IOB2** (BIO) when every entity starts with ``B-``;
* **IOB1** (CoNLL-2003) when entities start with ``I-`` and ``B-`` only separates two adjacent same-type entities;
* otherwise IOB2 with stray ``I-`` tags (each noted). IOB1 and IOB2 decode identically: ``B-X`` always opens an
  entity, ``I-X`` continues an open ``X`` entity and otherwise opens one (conlleval's rule).

In BIOES an ``I-``/``E-`` without an open entity of its type opens one, and an entity that ends without ``E-`` is
closed at the last of its tokens; each such repair is noted (nothing is dropped). A tag that is not ``O`` /
``P-TYPE`` raises :class:`~processing.registry.SourceFormatError` naming the file and line.

Record: ``text`` = tokens joined by single spaces (offsets exact), ``schema.ent`` = the sorted types of all splits
(after ``label_map``), id ``<file stem>.<sentence index>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..convert import ConversionReport, TokenText
from ..registry import SourceFormatError
from ._common import AUTO_INSTRUCTION, Labels, discover_files, pick_instruction

SUFFIXES = (".conll", ".conll03", ".bio", ".iob", ".iob1", ".iob2", ".bioes", ".bilou", ".tsv", ".txt", ".tags")
SCHEMES = ("auto", "iob1", "iob2", "bioes")

Sentence = tuple[list[int], list[str], list[str]]  # (1-based line numbers, tokens, tags)


def read_sentences(path: Path, separator: str | None = None, comment_prefix: str | None = None,
                   token_column: int = 0, tag_column: int = -1) -> Iterator[Sentence]:
    """Blank-line separated sentences of a column file as ``(line numbers, tokens, tags)``; ``-DOCSTART-`` lines
    and ``comment_prefix`` lines are skipped. A line without both columns raises SourceFormatError.

    Streams the file and keeps no per-token lists (a CoNLL file has ~10^5 lines: a list per token makes the
    garbage collector, not the parsing, dominate the run time)."""
    lines: list[int] = []
    tokens: list[str] = []
    tags: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if comment_prefix and line.startswith(comment_prefix):
                continue
            if not line.strip():
                if tokens:
                    yield lines, tokens, tags
                lines, tokens, tags = [], [], []
                continue
            cols = line.split(separator) if separator else line.split()
            if cols[0] == "-DOCSTART-":
                if tokens:  # a DOCSTART line without a blank line before it still ends the sentence
                    yield lines, tokens, tags
                lines, tokens, tags = [], [], []
                continue
            ti, gi = (c if c >= 0 else len(cols) + c for c in (token_column, tag_column))
            if not (0 <= ti < len(cols) and 0 <= gi < len(cols)) or ti == gi:
                raise SourceFormatError(path, lineno, f"expected a token column {token_column} and a tag column "
                                                      f"{tag_column}, got {len(cols)} column(s): {cols!r}")
            lines.append(lineno)
            tokens.append(cols[ti])
            tags.append(cols[gi])
    if tokens:
        yield lines, tokens, tags


def split_tag(tag: str, path: Path, line: int) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``; anything else -> SourceFormatError."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIESLU":
        return {"L": "E", "U": "S"}.get(tag[0], tag[0]), tag[2:]
    raise SourceFormatError(path, line, f"invalid tag {tag!r} (expected O or B-/I-/E-/S-/L-/U- followed by a type)")


class SchemeDetector:
    """Counts, over the sentences of one file, the facts that tell IOB1 / IOB2 / BIOES apart (see module doc)."""

    def __init__(self) -> None:
        self.bioes = False
        self.i_starts = self.b_after_other = 0

    def add(self, tags: list[tuple[str, str]]) -> None:
        prev = ("O", "")
        for p, t in tags:
            if p in ("E", "S"):
                self.bioes = True
            elif p in ("B", "I") and (prev[0] == "O" or prev[1] != t):
                if p == "I":
                    self.i_starts += 1
                else:
                    self.b_after_other += 1
            prev = (p, t)

    @property
    def scheme(self) -> str:
        if self.bioes:
            return "bioes"
        return "iob1" if self.i_starts and not self.b_after_other else "iob2"


def detect_scheme(sentences: list[list[tuple[str, str]]]) -> str:
    """``"bioes"``, ``"iob1"`` or ``"iob2"`` for the (prefix, type) tag sequences of one file (see module doc)."""
    det = SchemeDetector()
    for tags in sentences:
        det.add(tags)
    return det.scheme


def decode(tags: list[tuple[str, str]], scheme: str, note: Any) -> list[tuple[int, int, str]]:
    """(prefix, type) tags -> ``[(start, end_exclusive, type)]``; ``note(reason, i)`` is called for each repair."""
    spans: list[tuple[int, int, str]] = []
    start, cur = -1, ""

    def close(end: int) -> None:
        nonlocal cur
        if cur:
            spans.append((start, end, cur))
            cur = ""

    for i, (p, t) in enumerate(tags):
        if scheme == "bioes":
            if p == "O":
                if cur:
                    note("entity not closed with E- (closed at its last token)", i)
                close(i)
            elif p in ("B", "S"):
                if cur:
                    note("entity not closed with E- (closed at its last token)", i)
                close(i)
                start, cur = i, t
                if p == "S":
                    close(i + 1)
            else:  # I or E
                if cur != t:
                    if cur:
                        note("entity not closed with E- (closed at its last token)", i)
                    close(i)
                    note(f"{p}- tag without an open entity (opens one)", i)
                    start, cur = i, t
                if p == "E":
                    close(i + 1)
        else:
            if p == "O":
                close(i)
                continue
            if p == "I" and cur == t:
                continue
            close(i)
            if p == "I" and scheme == "iob2":
                note("I- tag without B- (treated as entity start)", i)
            start, cur = i, t
    if cur:
        if scheme == "bioes":
            note("entity not closed with E- (closed at its last token)", len(tags) - 1)
        close(len(tags))
    return spans


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"bio: option {name} must be an integer, got {value!r}") from None


def read_splits(
    src_dir: Path,
    instruction: str = AUTO_INSTRUCTION,
    report: ConversionReport | None = None,
    token_column: Any = 0,
    tag_column: Any = -1,
    separator: str | None = None,
    scheme: str = "auto",
    comment_prefix: str | None = None,
    label_map: Any = None,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for one column file or a folder of them (``train``/``dev``/``test`` in the names)."""
    report = report or ConversionReport("bio")
    tok_col, tag_col = _int(token_column, "token_column"), _int(tag_column, "tag_column")
    if scheme not in SCHEMES:
        raise ValueError(f"bio: scheme must be one of {SCHEMES}, got {scheme!r}")
    sep = {"tab": "\t", "\\t": "\t", "space": " "}.get(separator or "", separator) or None
    labels = Labels(label_map)
    files = discover_files(Path(src_dir), SUFFIXES, report)
    # pass 1 (streaming): each file's tagging scheme and the label inventory of all splits (the shared schema)
    schemes: dict[Path, str] = {}
    for split, paths in files.items():
        for path in paths:
            det = SchemeDetector()
            for lines, _, tags in read_sentences(path, sep, comment_prefix, tok_col, tag_col):
                parsed_tags = [split_tag(t, path, ln) for ln, t in zip(lines, tags)]
                det.add(parsed_tags)
                for p, t in parsed_tags:
                    if p != "O":
                        labels("ent", t)
            schemes[path] = det.scheme if scheme == "auto" else scheme
            if scheme == "auto":
                report.note(split, f"tagging scheme {det.scheme.upper()} (auto-detected)", path.name)
            elif scheme != "bioes" and det.bioes:
                raise SourceFormatError(path, 1, f"scheme={scheme!r} but the file has E-/S-/L-/U- tags (BIOES)")
    schema = labels.schema()
    inst = pick_instruction(instruction, schema)

    # pass 2 (lazy): the records
    def gen(split: str, paths: list[Path]) -> Iterator[dict[str, Any]]:
        for path in paths:
            for n, (lines, tokens, tags) in enumerate(read_sentences(path, sep, comment_prefix, tok_col, tag_col)):
                def note(reason: str, i: int, lines: list[int] = lines) -> None:
                    report.note(split, reason, f"{path.name}:{lines[i]}")

                parsed_tags = [split_tag(t, path, ln) for ln, t in zip(lines, tags)]
                tt = TokenText(tokens)
                ents = [{"type": labels.map.get(typ, typ), **tt.mention(s, e)}
                        for s, e, typ in decode(parsed_tags, schemes[path], note)]
                yield {"id": f"{path.stem}.{n}", "instruction": inst, "schema": schema, "text": tt.text, "bg": "",
                       "ans": {"ent": ents} if ents else {}}

    return {split: gen(split, paths) for split, paths in files.items()}
