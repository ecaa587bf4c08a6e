"""The benchmark registry: ``processing.BENCHMARKS[name]`` -> :class:`Benchmark`.

A converter module defines one or more ``Benchmark`` objects and calls :func:`register` on each at import time.
``read_splits(src_dir, **options)`` returns ``{split_name: iterator of SPEC-form records}``; records are validated
and counted by the shared driver (``processing.convert``), never by the converter itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Record = dict[str, Any]
SplitReader = Callable[..., dict[str, Iterator[Record]]]


@dataclass
class Benchmark:
    """One benchmark (or benchmark family member).

    Attributes:
        name: registry key, e.g. ``"conll04"``, ``"aste-14res"``.
        task: ``ner | re | ee | absa | discontinuous_ner | hyper_re | cls | mrc | mner | mre``.
        read_splits: ``read_splits(src_dir: Path, instruction: str, **options) -> {split: records}``.
        instruction: the default (paper-style) instruction; the CLI's ``--instruction`` overrides it.
        source: upstream repository/format the converter reads (cited in its docstring too).
        status: ``"real"`` (tested on ``shared/data``) or ``"fixture"`` (format-only test, data not staged).
        shared_subdir: folder under ``shared/data`` holding the real data (``None`` for fixture-only sets).
        how_to_obtain: for fixture-only sets, how a user gets the data.
        options: extra keyword options ``read_splits`` accepts (e.g. ``image_dir``), with their meaning.
    """

    name: str
    task: str
    read_splits: SplitReader
    instruction: str
    source: str
    status: str = "real"
    shared_subdir: str | None = None
    how_to_obtain: str = ""
    options: dict[str, str] = field(default_factory=dict)


BENCHMARKS: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    if benchmark.name in BENCHMARKS:
        raise ValueError(f"benchmark {benchmark.name!r} registered twice")
    if benchmark.status not in ("real", "fixture"):
        raise ValueError(f"benchmark {benchmark.name!r}: status must be 'real' or 'fixture'")
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


class SourceFormatError(ValueError):
    """A malformed line in an upstream file; the message names the file and the 1-based line."""

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}")
