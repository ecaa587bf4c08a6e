"""The shared conversion driver: upstream files -> validated unified records -> ``DatasetDict`` (+ jsonl / parquet).

Flow (``convert_benchmark``):

1. ``BENCHMARKS[name].read_splits(src_dir, instruction=..., report=..., **options)`` returns
   ``{split: iterator of SPEC-form records}`` (see ``processing.registry``). Readers are lazy; a split whose source
   file is absent is left out of the dict and announced with :meth:`ConversionReport.missing`.
2. Every record goes through :func:`modeling_ldnet.schema.validate_record`. A failing record raises
   :class:`~modeling_ldnet.schema.RecordError` (record id + field); nothing is silently dropped.
3. Records are stored with ``Dataset.from_generator(..., features=UNIFIED_FEATURES)`` (Arrow form, see
   ``processing.features``) and counted into a :class:`ConversionReport`.
4. With ``out_dir``: ``OUT/{split}.jsonl`` (SPEC form, one record a line, via ``to_spec_record``) or
   ``OUT/{split}.parquet`` (Arrow form).

How a converter reports what it could not convert: the driver passes ``report=`` (a :class:`ConversionReport`) to
every ``read_splits`` whose signature accepts it. The reader then calls

* ``report.drop(split, reason, detail)`` for an annotation item it cannot express (e.g. an NYT entity string not
  found in the text, a duplicate triple) -- one call per dropped item, the *reason* is a short fixed phrase;
* ``report.note(split, reason, detail)`` for a quirk that was repaired without losing anything (e.g. an ambiguous
  mention resolved to its first occurrence);
* ``report.missing(split, path)`` for a split whose source file does not exist.

:func:`load_unified` reads such an output folder back (``{split}.jsonl`` or ``{split}.parquet``).

This module also holds small helpers shared by the token-based converters (:class:`TokenText`).
"""

from __future__ import annotations

import inspect
import itertools
import json
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeling_ldnet.schema import RecordError, validate_record
from modeling_ldnet.vocabulary_ldnet import ANS_FIELDS

from .registry import BENCHMARKS, Benchmark, SourceFormatError, register

# `datasets` (and .features, built on it) are imported inside the functions that build or read datasets: every
# converter module imports this one for its helpers, and registering benchmarks (`python -m processing list`)
# must not pay for datasets' start-up
if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset, DatasetDict

FORMATS = ("jsonl", "parquet")
SPLIT_ORDER = ("train", "dev", "validation", "test")

# item kinds counted per split, in the order the summary table shows them
#: what a conversion report counts: every ``ans`` field, plus the qualifiers / arguments after their facts / events
ITEM_KINDS = tuple(k for f in ANS_FIELDS for k in (f, {"hyper_rel": "qualifiers", "event": "args"}.get(f)) if k)


# ----------------------------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class SplitStats:
    """Counts for one split: records, answer items per kind, records without any answer."""

    records: int = 0
    items: Counter = field(default_factory=Counter)
    empty: int = 0

    def add(self, record: dict[str, Any]) -> None:
        """Count one canonical (``validate_record``-ed) SPEC-form record."""
        self.records += 1
        ans = record.get("ans") or {}
        if not any(ans.values()):
            self.empty += 1
        for kind in ANS_FIELDS:
            self.items[kind] += len(ans.get(kind) or [])
        self.items["qualifiers"] += sum(len(h.get("qualifiers") or []) for h in ans.get("hyper_rel") or [])
        self.items["args"] += sum(len(e.get("args") or []) for e in ans.get("event") or [])


@dataclass
class ConversionReport:
    """What a conversion produced and what it had to leave out.

    ``drops[split][reason]`` / ``notes[split][reason]`` count items; ``examples`` keeps the first detail string of
    every (split, reason) so the summary can show one instance.
    """

    benchmark: str
    splits: dict[str, SplitStats] = field(default_factory=dict)
    drops: dict[str, Counter] = field(default_factory=dict)
    notes: dict[str, Counter] = field(default_factory=dict)
    missing_splits: dict[str, str] = field(default_factory=dict)
    examples: dict[tuple[str, str, str], str] = field(default_factory=dict)

    # -- called by converters -----------------------------------------------------------------------------------
    def drop(self, split: str, reason: str, detail: str = "") -> None:
        """One annotation item of ``split`` could not be converted (``reason``: short fixed phrase)."""
        self.drops.setdefault(split, Counter())[reason] += 1
        self.examples.setdefault(("drop", split, reason), detail)

    def note(self, split: str, reason: str, detail: str = "") -> None:
        """A source quirk was repaired without losing the item (e.g. an ambiguous mention, first one used)."""
        self.notes.setdefault(split, Counter())[reason] += 1
        self.examples.setdefault(("note", split, reason), detail)

    def missing(self, split: str, path: str | Path) -> None:
        """The source file of ``split`` does not exist; the split is left out of the output."""
        self.missing_splits[split] = str(path)

    # -- called by the driver -----------------------------------------------------------------------------------
    def count(self, split: str, record: dict[str, Any]) -> None:
        self.splits.setdefault(split, SplitStats()).add(record)

    # -- queries ------------------------------------------------------------------------------------------------
    def dropped(self, split: str | None = None, reason: str | None = None) -> int:
        """Number of dropped items, optionally restricted to one split and/or one reason."""
        total = 0
        for sp, counter in self.drops.items():
            if split is not None and sp != split:
                continue
            total += counter[reason] if reason is not None else sum(counter.values())
        return total

    def summary(self) -> str:
        """A Markdown summary: per-split records and items, dropped items and notes with reasons, missing splits."""
        lines = [f"## {self.benchmark}", ""]
        kinds = [k for k in ITEM_KINDS if any(s.items[k] for s in self.splits.values())]
        header = ["split", "records", "no answer", *kinds]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for sp in ordered_splits(self.splits):
            st = self.splits[sp]
            row = [sp, str(st.records), str(st.empty), *(str(st.items[k]) for k in kinds)]
            lines.append("| " + " | ".join(row) + " |")
        for title, table, kind in (("dropped items", self.drops, "drop"), ("notes (nothing lost)", self.notes, "note")):
            rows = [(sp, r, n) for sp in ordered_splits(table) for r, n in sorted(table[sp].items())]
            if not rows:
                if kind == "drop":
                    lines += ["", "dropped items: none"]
                continue
            lines += ["", f"{title}:", "", "| split | reason | count | first example |", "|---|---|---|---|"]
            for sp, reason, n in rows:
                ex = self.examples.get((kind, sp, reason), "").replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {sp} | {reason} | {n} | {ex[:120]} |")
        for sp, path in self.missing_splits.items():
            lines += ["", f"MISSING split {sp!r}: {path} does not exist (left out)"]
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.summary()


def read_split_files(
    src_dir: str | Path, files: dict[str, str], reader: Any, report: ConversionReport
) -> dict[str, Any]:
    """``{split: reader(path, split)}`` for every ``files[split]`` under ``src_dir`` that exists; a missing file is
    reported with ``report.missing`` (not fatal)."""
    out: dict[str, Any] = {}
    for split, fname in files.items():
        path = Path(src_dir) / fname
        if path.is_file():
            out[split] = reader(path, split)
        else:
            report.missing(split, path)
    return out


# ----------------------------------------------------------------------------------------------------------------
# the converters' shared prologue (reading upstream JSON) and registration tail
# ----------------------------------------------------------------------------------------------------------------


def read_json_file(path: Path, kind: type, expected: str) -> Any:
    """The whole JSON document of ``path``; invalid JSON or a top level that is not a ``kind`` (``list`` / ``dict``)
    raises :class:`SourceFormatError` naming the file and line (``expected`` describes the format)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceFormatError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, kind):
        raise SourceFormatError(path, 1, expected)
    return data


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON-lines file; invalid JSON raises
    :class:`SourceFormatError` naming the file and line."""
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceFormatError(path, lineno, f"invalid JSON: {exc.msg}") from None


def source_folder(src_dir: str | Path, subdir: str) -> Path:
    """``src_dir/subdir`` when it exists (the user passed the parent folder), else ``src_dir``."""
    src = Path(src_dir)
    return src / subdir if (src / subdir).is_dir() else src


def load_jsonl_objects(path: Path, required: str, expected: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank JSON line; a line that is not JSON or not an object holding a
    list under ``required`` raises :class:`SourceFormatError` (``expected`` describes the format)."""
    rows = []
    for lineno, obj in iter_json_lines(path):
        if not isinstance(obj, dict) or not isinstance(obj.get(required), list):
            raise SourceFormatError(path, lineno, expected)
        rows.append((lineno, obj))
    return rows


def unified_record(record_id: str, instruction: str, schema: dict[str, Any], text: str, ans: dict[str, Any],
                   bg: str = "") -> dict[str, Any]:
    """A SPEC-form unified record (SPEC §1) — the one place the converters spell its layout."""
    return {"id": record_id, "instruction": instruction, "schema": schema, "text": text, "bg": bg, "ans": ans}


_TRUE, _FALSE = ("1", "true", "yes", "y", "on"), ("0", "false", "no", "n", "off", "")


def as_bool(value: Any, option: str = "option") -> bool:
    """A converter option that may arrive from the command line as a string: ``1/true/yes/y/on`` -> True,
    ``0/false/no/n/off/""`` -> False (case-insensitive); any other string raises ``ValueError`` naming ``option``."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
        raise ValueError(f"{option}: expected a boolean (true/false, yes/no, 1/0), got {value!r}")
    return bool(value)


def register_split_files(
    name: str,
    task: str,
    files: dict[str, str],
    reader: Callable[[Path, str, str, ConversionReport], Iterator[dict[str, Any]]],
    instruction: str,
    source: str,
    **benchmark: Any,
) -> Benchmark:
    """Register a benchmark whose splits are files ``files[split]`` under the source folder, each read by
    ``reader(path, split, instruction, report)``; a missing file is reported, not fatal. ``benchmark``: the other
    :class:`Benchmark` fields (``status``, ``shared_subdir``, ``how_to_obtain``, ``options``). Returns the
    :class:`Benchmark` (its ``read_splits`` is the module's public reader)."""

    def read_splits(src_dir: Path, instruction: str = instruction, report: ConversionReport | None = None
                    ) -> dict[str, Iterator[dict[str, Any]]]:
        report = report or ConversionReport(name)
        return read_split_files(src_dir, files, lambda path, split: reader(path, split, instruction, report), report)

    read_splits.__doc__ = f"``{{split: records}}`` of {name} from ``src_dir/{{{','.join(files.values())}}}``."
    return register(Benchmark(name=name, task=task, read_splits=read_splits, instruction=instruction, source=source,
                              **benchmark))


def ordered_splits(splits: Iterable[str]) -> list[str]:
    """Split names in train, dev, test order, then the others alphabetically."""
    splits = list(splits)
    known = [s for s in SPLIT_ORDER if s in splits]
    return known + sorted(s for s in splits if s not in SPLIT_ORDER)


# ----------------------------------------------------------------------------------------------------------------
# the driver
# ----------------------------------------------------------------------------------------------------------------


def accepts_report(fn: Any) -> bool:
    """Whether a ``read_splits`` function takes ``report=`` (or ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    return any(p.name == "report" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _validated(records: Iterable[dict[str, Any]], split: str, report: ConversionReport, box: dict[str, BaseException],
               progress: bool) -> Iterator[dict[str, Any]]:
    """Validate, count and convert records to Arrow form; remember the first exception (datasets wraps it)."""
    from tqdm.auto import tqdm

    from .features import to_arrow_record

    bar = tqdm(desc=f"{report.benchmark}/{split}", unit=" rec", disable=not progress)
    try:
        for rec in records:
            canon = validate_record(rec)
            report.count(split, canon)
            bar.update(1)
            yield to_arrow_record(canon)
    except BaseException as exc:  # re-raised unwrapped by _build_split
        box["error"] = exc
        raise
    finally:
        bar.close()


def _build_split(records: Iterable[dict[str, Any]], split: str, report: ConversionReport, progress: bool) -> Dataset:
    import datasets
    from datasets import Dataset

    from .features import UNIFIED_FEATURES

    it = iter(records)
    try:
        first = next(it)
    except StopIteration:  # datasets cannot build a split from an empty generator
        report.splits.setdefault(split, SplitStats())
        return _from_rows([], split)
    records = itertools.chain([first], it)
    box: dict[str, BaseException] = {}
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # our own tqdm bar counts records
    try:
        with tempfile.TemporaryDirectory(prefix="ldnet-convert-") as cache:
            # a fresh cache dir + explicit fingerprint: the generator always runs (the report stays complete) and
            # datasets never tries to hash the (unpicklable) record iterator
            return Dataset.from_generator(
                _validated,
                features=UNIFIED_FEATURES,
                cache_dir=cache,
                keep_in_memory=True,
                gen_kwargs={"records": records, "split": split, "report": report, "box": box, "progress": progress},
                fingerprint=uuid.uuid4().hex,
                split=datasets.NamedSplit(split),
            )
    except Exception as exc:
        err = box.get("error")
        if err is not None and err is not exc:
            raise err from None
        raise
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def convert_benchmark(
    name: str,
    src_dir: str | Path,
    out_dir: str | Path | None = None,
    fmt: str = "jsonl",
    instruction: str | None = None,
    progress: bool = True,
    **options: Any,
) -> tuple[DatasetDict, ConversionReport]:
    """Convert one registered benchmark.

    Args:
        name: registry key (``processing.BENCHMARKS``).
        src_dir: folder with the upstream files (e.g. ``shared/data/conll04``).
        out_dir: if given, write ``OUT/{split}.jsonl`` (SPEC form) or ``OUT/{split}.parquet`` (Arrow form).
        fmt: ``"jsonl"`` or ``"parquet"``.
        instruction: overrides the benchmark's default instruction (``""`` = the "w/o Inst." setting).
        progress: show a tqdm bar per split.
        **options: converter options declared in ``Benchmark.options`` (e.g. ``with_entities=True``).

    Returns:
        ``(DatasetDict with UNIFIED_FEATURES, ConversionReport)``.

    Raises:
        KeyError: unknown benchmark. ValueError: bad format / undeclared option. FileNotFoundError: no split found.
        RecordError: a produced record is invalid (message names record id and field).
        SourceFormatError: a malformed upstream line (message names file and line).
    """
    from datasets import DatasetDict

    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; registered: {sorted(BENCHMARKS)}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    bench = BENCHMARKS[name]
    options = {k: v for k, v in options.items() if v is not None}
    unknown = set(options) - set(bench.options)
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {sorted(unknown)}; accepted: {sorted(bench.options) or 'none'}")
    src = Path(src_dir)
    if not src.exists():
        raise FileNotFoundError(f"{name}: source folder {src} does not exist")
    report = ConversionReport(name)
    kwargs: dict[str, Any] = dict(options)
    if accepts_report(bench.read_splits):
        kwargs["report"] = report
    inst = bench.instruction if instruction is None else instruction
    readers = bench.read_splits(src, instruction=inst, **kwargs)
    if not readers:
        missing = ", ".join(f"{s}: {p}" for s, p in report.missing_splits.items())
        raise FileNotFoundError(f"{name}: no split found under {src}" + (f" ({missing})" if missing else ""))
    dd = DatasetDict()
    for split in ordered_splits(readers):
        dd[split] = _build_split(readers[split], split, report, progress)
    if out_dir is not None:
        write_unified(dd, out_dir, fmt)
    return dd, report


# ----------------------------------------------------------------------------------------------------------------
# writing / reading converted folders
# ----------------------------------------------------------------------------------------------------------------


def write_unified(dd: DatasetDict, out_dir: str | Path, fmt: str = "jsonl") -> list[Path]:
    """Write each split to ``out_dir/{split}.jsonl`` (SPEC form) or ``out_dir/{split}.parquet`` (Arrow form)."""
    from .features import to_spec_record

    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, ds in dd.items():
        path = out / f"{split}.{fmt}"
        if fmt == "jsonl":
            with path.open("w", encoding="utf-8") as fh:
                for row in ds:
                    fh.write(json.dumps(to_spec_record(row), ensure_ascii=False) + "\n")
        else:
            ds.to_parquet(str(path))
        written.append(path)
    return written


def _from_rows(rows: list[dict[str, Any]], split: str) -> Dataset:
    """Arrow-form rows -> Dataset with UNIFIED_FEATURES (works for zero rows, unlike ``from_list([])``)."""
    import datasets
    from datasets import Dataset

    from .features import UNIFIED_FEATURES

    columns = {key: [row[key] for row in rows] for key in UNIFIED_FEATURES}
    return Dataset.from_dict(columns, features=UNIFIED_FEATURES, split=datasets.NamedSplit(split))


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    from .features import to_arrow_record

    for _lineno, rec in iter_json_lines(path):
        yield to_arrow_record(validate_record(rec))


def _read_parquet(path: Path) -> Dataset:
    import pyarrow.parquet as pq
    from datasets import Dataset
    from datasets.table import InMemoryTable

    from .features import UNIFIED_FEATURES

    ds = Dataset(InMemoryTable(pq.read_table(path)))
    if ds.features != UNIFIED_FEATURES:
        ds = ds.cast(UNIFIED_FEATURES)
    return ds


def load_unified(path: str | Path) -> DatasetDict:
    """Read a converted folder (``{split}.jsonl`` or ``{split}.parquet`` files) into a ``DatasetDict``.

    ``path`` may also be a single ``.jsonl`` / ``.parquet`` file (its stem names the split). Records read from
    jsonl are validated (a bad one raises ``RecordError``); every split has exactly :data:`UNIFIED_FEATURES`.
    """
    p = Path(path)
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.suffix in (".jsonl", ".parquet"))
    if not files:
        raise FileNotFoundError(f"no .jsonl or .parquet split files under {p}")
    from datasets import DatasetDict

    stems = Counter(f.stem for f in files)
    dup = [s for s, n in stems.items() if n > 1]
    if dup:
        raise ValueError(f"{p}: split(s) {dup} present both as jsonl and parquet")
    dd = DatasetDict()
    for f in sorted(files, key=lambda f: ordered_splits(stems).index(f.stem)):
        if f.suffix == ".parquet":
            dd[f.stem] = _read_parquet(f)
        else:
            dd[f.stem] = _from_rows(list(_read_jsonl(f)), f.stem)
    return dd


# ----------------------------------------------------------------------------------------------------------------
# helpers shared by token-based converters
# ----------------------------------------------------------------------------------------------------------------


class TokenText:
    """Tokens joined by single spaces, with exact character offsets.

    ``TokenText(["EU", "rejects", "German"]).text == "EU rejects German"``; ``mention(2, 3)`` (token ``end``
    exclusive) returns ``{"text": "German", "span": [11, 17]}`` with ``text[11:17] == "German"``.
    """

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = list(tokens)
        self.starts: list[int] = []
        pos = 0
        for tok in self.tokens:
            self.starts.append(pos)
            pos += len(tok) + 1
        self.text = " ".join(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def char_span(self, start: int, end: int) -> list[int]:
        """Token span ``[start, end)`` -> char span ``[s, e)``; raises ``IndexError`` if out of range or empty."""
        if not 0 <= start < end <= len(self.tokens):
            raise IndexError(f"token span [{start}, {end}) outside 0..{len(self.tokens)} (or empty)")
        return [self.starts[start], self.starts[end - 1] + len(self.tokens[end - 1])]

    def mention(self, start: int, end: int) -> dict[str, Any]:
        """``{"text", "span"}`` for token span ``[start, end)``."""
        s, e = self.char_span(start, end)
        return {"text": self.text[s:e], "span": [s, e]}


__all__ = [
    "ConversionReport",
    "RecordError",
    "SourceFormatError",
    "SplitStats",
    "TokenText",
    "convert_benchmark",
    "load_unified",
    "write_unified",
]
